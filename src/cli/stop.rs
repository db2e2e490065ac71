//! `voxd stop`: stop speaking and clear the speech queue.

use serde_json::json;

use super::client::Client;
use crate::config::Loaded;

pub fn run(config: &Loaded) -> anyhow::Result<()> {
    let reply = Client::connect(config)?.call("stop", json!({}))?;
    if reply["stopped"] == json!(true) {
        println!("stopped");
    } else {
        println!("nothing was being spoken");
    }
    Ok(())
}
