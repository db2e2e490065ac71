//! `voxd rag on|off|status`: answer from the notes, or not, for every request.

use serde_json::json;

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_parser = ["on", "off", "status"], default_value = "status")]
    action: String,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let r = Client::connect(config)?.call("rag", json!({ "action": args.action }))?;
    println!(
        "rag: {}",
        if r["enabled"] == json!(true) {
            "on"
        } else {
            "off"
        }
    );
    Ok(())
}
