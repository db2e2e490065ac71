//! `voxd status [--json]`

use serde_json::{json, Value};

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the raw JSON reply.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let status = Client::connect(config)?.call("status", json!({}))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(())
}

fn render(s: &Value) -> String {
    let uptime = s["uptime_secs"].as_f64().unwrap_or(0.0) as u64;
    format!(
        "voxd {} (protocol {}), pid {}, up {}h{:02}m{:02}s\nprofile: {}\nsocket: {}\nrequests in flight: {}, connections: {}\n",
        s["version"].as_str().unwrap_or("?"),
        s["protocol"],
        s["pid"],
        uptime / 3600,
        uptime / 60 % 60,
        uptime % 60,
        s["profile"].as_str().unwrap_or("?"),
        s["socket"].as_str().unwrap_or("?"),
        s["queue_depth"],
        s["connections"],
    )
}
