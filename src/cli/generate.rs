//! `voxd generate "PROMPT"`: raw generation; text goes to stdout as it is
//! produced, the figures to stderr.

use std::io::Write;

use anyhow::bail;
use serde_json::{json, Value};

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The text to continue (a completion prompt).
    prompt: String,
    /// Most tokens to generate (capped by engines.llm.max_tokens).
    #[arg(long)]
    max_tokens: Option<u32>,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Stop before this string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// Conversation id, for KV cache reuse across turns.
    #[arg(long)]
    session: Option<String>,
    /// Print the figures (tokens, tokens/s, cache reuse) to stderr.
    #[arg(long)]
    stats: bool,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let mut client = Client::connect(config)?;
    let id = client.send(
        "generate",
        json!({
            "prompt": args.prompt,
            "max_tokens": args.max_tokens,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "stop": args.stop,
            "seed": args.seed,
            "session": args.session,
        }),
    )?;
    let mut stdout = std::io::stdout().lock();
    while let Some(msg) = client.next_message()? {
        if msg.get("id") != Some(&id) {
            continue;
        }
        if msg["event"] == "llm.token" {
            stdout.write_all(msg["data"]["text"].as_str().unwrap_or("").as_bytes())?;
            stdout.flush()?;
            continue;
        }
        if msg["ok"] != json!(true) {
            let error = &msg["error"];
            bail!(
                "{}: {}",
                error["code"].as_str().unwrap_or("error"),
                error["message"].as_str().unwrap_or("(no message)")
            );
        }
        writeln!(stdout)?;
        if args.stats {
            print_stats(&msg["result"]["stats"]);
        }
        return Ok(());
    }
    bail!("voxd closed the connection before replying")
}

fn print_stats(s: &Value) {
    eprintln!(
        "{} tokens ({}), {:.1} tokens/s, first token in {:.0} ms; prompt {} tokens, {} from the cache",
        s["generated_tokens"],
        s["finish"].as_str().unwrap_or("?"),
        s["tokens_per_sec"].as_f64().unwrap_or(0.0),
        s["first_token_ms"].as_f64().unwrap_or(0.0),
        s["prompt_tokens"],
        s["cached_tokens"],
    );
}
