//! `voxd say "text" [--voice V] [--out reply.wav]`: speak text through the
//! daemon; returns once it has been spoken (or written).

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::json;

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The text to speak; `-` reads it from standard input.
    text: String,
    /// Voice: a model id from the store or a path to a Piper `.onnx` voice.
    #[arg(long)]
    voice: Option<String>,
    /// Write the speech to this WAV file instead of playing it.
    #[arg(long, value_name = "FILE.wav")]
    out: Option<PathBuf>,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let text = if args.text == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the text from standard input")?;
        text
    } else {
        args.text
    };
    let mut request = json!({ "text": text });
    if let Some(voice) = args.voice {
        request["voice"] = json!(voice);
    }
    if let Some(out) = &args.out {
        let out = std::path::absolute(out)
            .with_context(|| format!("cannot resolve {}", out.display()))?;
        request["out"] = json!(out);
    }
    let reply = Client::connect(config)?.call("say", request)?;
    let rate = reply["sample_rate"].as_u64().unwrap_or(0).max(1);
    let seconds = reply["samples"].as_u64().unwrap_or(0) as f64 / rate as f64;
    let what = if reply["interrupted"] == json!(true) {
        "interrupted after"
    } else {
        "spoke"
    };
    match &args.out {
        Some(out) => println!(
            "{what} {} sentence(s), {seconds:.2} s of audio, into {}",
            reply["chunks"],
            out.display()
        ),
        None => println!(
            "{what} {} sentence(s), {seconds:.2} s of audio",
            reply["chunks"]
        ),
    }
    Ok(())
}
