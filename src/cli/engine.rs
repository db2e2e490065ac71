//! `voxd engine start|stop NAME`: preload an engine, or free its memory.

use serde_json::json;

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// start (spawn now and wait until ready) or stop.
    #[arg(value_parser = ["start", "stop"])]
    action: String,
    /// The engine: stt or llm.
    name: String,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let reply = Client::connect(config)?.call(
        "engine",
        json!({ "name": args.name, "action": args.action }),
    )?;
    let engine = &reply["engine"];
    println!(
        "{}: {} (pid {})",
        args.name,
        engine["state"].as_str().unwrap_or("?"),
        engine["pid"]
    );
    Ok(())
}
