//! `voxd listen`: start listening to the microphone (or `--file`), `--stop`,
//! `--status`, `--mute`/`--unmute`.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stop listening.
    #[arg(long, conflicts_with_all = ["status", "input", "device", "file"])]
    stop: bool,
    /// Show what the listener is doing.
    #[arg(long, conflicts_with_all = ["input", "device", "file"])]
    status: bool,
    /// Mute (only wake words are heard) or unmute.
    #[arg(long, conflicts_with_all = ["stop", "status", "unmute"])]
    mute: bool,
    #[arg(long, conflicts_with_all = ["stop", "status"])]
    unmute: bool,
    /// Audio input: cpal (a capture device), wav or socket (default: listen.input).
    #[arg(long)]
    input: Option<String>,
    /// Capture device name, as `voxd audio devices` lists it.
    #[arg(long)]
    device: Option<String>,
    /// Listen to this WAV file at real pace instead (input wav).
    #[arg(long, value_name = "FILE.wav")]
    file: Option<PathBuf>,
    /// Print the reply as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let mut client = Client::connect(config)?;
    let result = if args.mute || args.unmute {
        let action = if args.mute { "mute" } else { "unmute" };
        client.call("listen", json!({ "action": action }))?
    } else if args.stop {
        client.call("listen", json!({ "action": "stop" }))?
    } else if args.status {
        client.call("listen", json!({ "action": "status" }))?
    } else {
        let mut request = json!({ "action": "start" });
        if let Some(input) = &args.input {
            request["input"] = json!(input);
        }
        if let Some(device) = &args.device {
            request["device"] = json!(device);
        }
        if let Some(file) = &args.file {
            let file = std::path::absolute(file)
                .with_context(|| format!("cannot resolve {}", file.display()))?;
            request["file"] = json!(file);
        }
        client.call("listen", request)?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_human(&result);
    }
    Ok(())
}

fn print_human(result: &Value) {
    if let Some(stopped) = result["stopped"].as_bool() {
        println!(
            "{}",
            if stopped {
                "stopped listening"
            } else {
                "was not listening"
            }
        );
        return;
    }
    let Some(listening) = result["listening"].as_bool() else {
        // mute / unmute
        let muted = result["muted"].as_bool() == Some(true);
        println!("{}", if muted { "muted" } else { "unmuted" });
        return;
    };
    if listening {
        let words: Vec<&str> = result["wake_words"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "listening to {} ({}), wake words: {}; heard {:.1} s, {} wake(s), {} utterance(s){}",
            result["input"].as_str().unwrap_or("?"),
            result["state"].as_str().unwrap_or("?"),
            words.join(", "),
            result["heard_secs"].as_f64().unwrap_or(0.0),
            result["wakes"],
            result["utterances"],
            if result["muted"].as_bool() == Some(true) {
                ", muted"
            } else {
                ""
            },
        );
    } else {
        match result["error"].as_str() {
            Some(e) => println!("not listening (stopped: {e})"),
            None => println!("not listening"),
        }
    }
}
