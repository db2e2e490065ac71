//! `voxd metrics`: every metric in the Prometheus/OpenMetrics text format.

use serde_json::json;

use super::client::Client;
use crate::config::Loaded;

pub fn run(config: &Loaded) -> anyhow::Result<()> {
    let reply = Client::connect(config)?.call("metrics", json!({}))?;
    print!("{}", reply["text"].as_str().unwrap_or_default());
    Ok(())
}
