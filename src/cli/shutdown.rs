//! `voxd shutdown`: asks the daemon to stop and waits until it has.

use serde_json::json;

use super::client::Client;
use crate::config::Loaded;

pub fn run(config: &Loaded) -> anyhow::Result<()> {
    let mut client = Client::connect(config)?;
    client.call("shutdown", json!({}))?;
    // The daemon closes every connection once it has finished shutting down.
    while client.next_message()?.is_some() {}
    println!("voxd stopped");
    Ok(())
}
