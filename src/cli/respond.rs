//! `voxd respond "text" [--quiet] [--session S] [--json]`: one assistant
//! turn on text, as if it had been spoken after the wake word. Prints the
//! reply, then its citations (`[N] PATH:START-END`, as `voxd ask` does) and
//! where the time went; the reply is also spoken unless `--quiet`.

use serde_json::json;

use super::ask::citation_line;
use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What the user says.
    text: String,
    /// Do not speak the reply; only print it.
    #[arg(long)]
    quiet: bool,
    /// Conversation session (default: assistant.session).
    #[arg(long)]
    session: Option<String>,
    /// Print the reply as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let mut request = json!({ "text": args.text, "speak": !args.quiet });
    if let Some(s) = &args.session {
        request["session"] = json!(s);
    }
    let reply = Client::connect(config)?.call("respond", request)?;
    if args.json {
        println!("{reply}");
        return Ok(());
    }
    println!("{}", reply["text"].as_str().unwrap_or(""));
    if let Some(citations) = reply["citations"].as_array().filter(|c| !c.is_empty()) {
        println!();
        for c in citations {
            println!("{}", citation_line(c));
        }
    }
    let t = &reply["timings"];
    eprintln!(
        "voxd: {} turn, first text {} ms, first audio {} ms, total {} ms",
        reply["intent"].as_str().unwrap_or("?"),
        t["first_token_ms"],
        t["first_audio_ms"],
        t["total_ms"]
    );
    Ok(())
}
