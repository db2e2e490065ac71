//! `voxd caption FILE…`: captions images now (through the daemon's
//! captioner) and prints one line per file.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use serde_json::json;

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image files (JPEG, PNG, WebP, GIF, BMP).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Continue this prompt, e.g. "a photo of" (default: `vision.prompt`).
    #[arg(long)]
    prompt: Option<String>,
    /// Print the daemon's JSON result instead of `FILE: caption` lines.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let paths = args
        .files
        .iter()
        .map(|f| std::path::absolute(f).with_context(|| format!("{}", f.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut request = json!({ "paths": paths });
    if let Some(prompt) = &args.prompt {
        request["prompt"] = json!(prompt);
    }
    let reply = Client::connect(config)?.call("caption", request)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
    }
    let mut failed = 0;
    for (file, result) in args
        .files
        .iter()
        .zip(reply["captions"].as_array().into_iter().flatten())
    {
        if result["ok"] == json!(true) {
            if !args.json {
                println!(
                    "{}: {}",
                    file.display(),
                    result["caption"].as_str().unwrap_or("")
                );
            }
        } else {
            failed += 1;
            eprintln!(
                "voxd: {}: {}",
                file.display(),
                result["reason"].as_str().unwrap_or("failed")
            );
        }
    }
    if failed > 0 {
        bail!("{failed} of {} image(s) not captioned", args.files.len());
    }
    Ok(())
}
