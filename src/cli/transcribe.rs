//! `voxd transcribe FILE.wav`: prints the transcript of a WAV file.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::json;

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// WAV file (any sample rate, channel count, 8–32-bit integer or float PCM).
    file: PathBuf,
    /// Print the whole reply (text, segments, timing) as JSON.
    #[arg(long)]
    json: bool,
    /// Feed the audio at its real pace and print partial transcripts to stderr.
    #[arg(long)]
    realtime: bool,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let path = std::path::absolute(&args.file)
        .with_context(|| format!("cannot resolve {}", args.file.display()))?;
    let mut client = Client::connect(config)?;
    let id = client.send(
        "transcribe",
        json!({ "path": path, "realtime": args.realtime }),
    )?;
    let result = client.reply_with_events(&id, |event, data| {
        if event == "transcript.partial" {
            eprintln!("… {}", data["text"].as_str().unwrap_or(""));
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("{}", result["text"].as_str().unwrap_or(""));
    }
    Ok(())
}
