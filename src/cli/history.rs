//! `voxd history [SESSION]` and `voxd forget SESSION`.

use serde_json::json;

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A session to show; without it, the list of sessions.
    session: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ForgetArgs {
    /// The session whose history is deleted.
    session: String,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let mut client = Client::connect(config)?;
    match args.session {
        None => {
            let r = client.call("history", json!({}))?;
            for s in r["sessions"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{} turns",
                    s["session"].as_str().unwrap_or(""),
                    s["turns"]
                );
            }
        }
        Some(session) => {
            let r = client.call("history", json!({ "session": session }))?;
            for t in r["turns"].as_array().into_iter().flatten() {
                println!("Q: {}", t["question"].as_str().unwrap_or(""));
                println!("A: {}", t["answer"].as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}

pub fn forget(args: ForgetArgs, config: &Loaded) -> anyhow::Result<()> {
    let r = Client::connect(config)?.call("forget", json!({ "session": args.session }))?;
    println!(
        "forgot {} turn(s) of {}",
        r["forgotten_turns"], args.session
    );
    Ok(())
}
