//! `voxd subscribe [EVENT...]`: prints events as JSON lines.

use std::io::Write;

use serde_json::json;

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Event names or prefixes to receive (e.g. `engine.`); all when none.
    events: Vec<String>,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let mut client = Client::connect(config)?;
    client.call("subscribe", json!({ "events": args.events }))?;
    let mut stdout = std::io::stdout().lock();
    while let Some(msg) = client.next_message()? {
        let event = json!({ "event": msg["event"], "data": msg["data"] });
        writeln!(stdout, "{event}")?;
        stdout.flush()?;
    }
    Ok(())
}
