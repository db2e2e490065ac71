//! `voxd reload [GGUF]`: load the language model afresh, or switch to a GGUF file.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::json;

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A GGUF file to use from now on; default: the configured model, looked up again.
    model: Option<PathBuf>,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let model = match args.model {
        Some(path) => Some(
            std::fs::canonicalize(&path)
                .with_context(|| format!("cannot find {}", path.display()))?,
        ),
        None => None,
    };
    let reply = Client::connect(config)?.call("reload", json!({ "model": model }))?;
    let m = &reply["model"];
    println!(
        "loaded {} ({}), prompt format {}",
        m["name"].as_str().unwrap_or("?"),
        m["path"].as_str().unwrap_or("?"),
        m["prompt_format"].as_str().unwrap_or("?")
    );
    Ok(())
}
