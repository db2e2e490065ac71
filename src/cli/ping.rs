//! `voxd ping`

use serde_json::json;

use super::client::Client;
use crate::config::Loaded;

pub fn run(config: &Loaded) -> anyhow::Result<()> {
    let reply = Client::connect(config)?.call("ping", json!({}))?;
    println!("pong (protocol {})", reply["protocol"]);
    Ok(())
}
