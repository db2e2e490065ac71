//! `voxd subscribe [EVENT...] [--count N]`: prints events as JSON lines
//! (all of them, or the first N, then exits).

use std::io::Write;

use serde_json::json;

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Event names or prefixes to receive (e.g. `engine.`); all when none.
    events: Vec<String>,
    /// Exit after this many events.
    #[arg(long, value_name = "N")]
    count: Option<usize>,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let mut client = Client::connect(config)?;
    client.call("subscribe", json!({ "events": args.events }))?;
    let mut stdout = std::io::stdout().lock();
    let mut left = args.count;
    while left != Some(0) {
        let Some(msg) = client.next_message()? else {
            break;
        };
        left = left.map(|n| n - 1);
        let event = json!({ "event": msg["event"], "data": msg["data"] });
        writeln!(stdout, "{event}")?;
        stdout.flush()?;
    }
    Ok(())
}
