//! `voxd ask "…" [--session S] [--no-rag] [--mode M] [--json]`: streams the
//! answer's text to stdout as it is produced, then prints the citations,
//! one per line, after an empty line:
//!
//! ```text
//! From home.md: "The wifi password is kettle-47-moon."
//!
//! [1] /home/me/notes/home.md:4-5
//! ```
//!
//! Citation lines are exactly `[N] PATH:START-END` (absolute path, 1-based
//! inclusive line range); scripts rely on this. Notes on the answer
//! (abstained, replaced, no model) go to stderr.

use std::io::Write;

use anyhow::bail;
use serde_json::{json, Value};

use super::client::Client;
use crate::api::ask::Ask;
use crate::config::{AnswerMode, Loaded};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The question.
    question: String,
    /// Conversation session: earlier turns are remembered.
    #[arg(long)]
    session: Option<String>,
    /// Answer without the notes.
    #[arg(long)]
    no_rag: bool,
    /// Answer mode: generative, extractive or auto (default: rag.answer_mode).
    #[arg(long, value_parser = parse_mode)]
    mode: Option<AnswerMode>,
    /// Print the final reply as one JSON object instead.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let mut client = Client::connect(config)?;
    let request = Ask {
        session: args.session,
        no_rag: args.no_rag,
        mode: args.mode,
        ..Ask::new(args.question)
    };
    let id = client.send("ask", serde_json::to_value(&request)?)?;
    let mut stdout = std::io::stdout().lock();
    while let Some(msg) = client.next_message()? {
        if msg.get("id") != Some(&id) {
            continue;
        }
        match msg.get("event").and_then(Value::as_str) {
            Some("ask.token") if !args.json => {
                write!(stdout, "{}", msg["data"]["text"].as_str().unwrap_or(""))?;
                stdout.flush()?;
            }
            Some("ask.reset") if !args.json => {
                writeln!(stdout)?;
                let why = msg["data"]["reason"].as_str().unwrap_or("replaced");
                eprintln!("voxd: the answer above was withdrawn ({why}); instead:");
            }
            Some(_) => {}
            None => {
                if msg["ok"] != json!(true) {
                    let e = &msg["error"];
                    bail!(
                        "{}: {}",
                        e["code"].as_str().unwrap_or("error"),
                        e["message"].as_str().unwrap_or("(no message)")
                    );
                }
                let result = &msg["result"];
                if args.json {
                    writeln!(stdout, "{result}")?;
                    return Ok(());
                }
                writeln!(stdout)?;
                if let Some(citations) = result["citations"].as_array().filter(|c| !c.is_empty()) {
                    writeln!(stdout)?;
                    for c in citations {
                        writeln!(stdout, "{}", citation_line(c))?;
                    }
                }
                for flag in result["flags"].as_array().into_iter().flatten() {
                    if let Some(note) = flag.as_str().and_then(describe) {
                        eprintln!("voxd: {note}");
                    }
                }
                return Ok(());
            }
        }
    }
    bail!("voxd closed the connection before answering")
}

/// An answer mode as the config spells it.
fn parse_mode(mode: &str) -> Result<AnswerMode, String> {
    serde_json::from_value(json!(mode))
        .map_err(|_| format!("{mode:?} is not a mode: use generative, extractive or auto"))
}

/// `[N] PATH:START-END`.
pub fn citation_line(c: &Value) -> String {
    format!(
        "[{}] {}:{}-{}",
        c["n"],
        c["path"].as_str().unwrap_or(""),
        c["line_start"],
        c["line_end"]
    )
}

fn describe(flag: &str) -> Option<&'static str> {
    Some(match flag {
        "unsupported_replaced" => {
            "the generated answer was not supported by your notes; this is the quoted source instead"
        }
        "llm_unavailable" => "no language model available; the answer is quoted from your notes",
        "newer_content_wins" => "an older statement in your notes was superseded by a newer one",
        _ => return None,
    })
}
