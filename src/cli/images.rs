//! `voxd images list [--since WHEN]` and `voxd images forget PATH`: the
//! captions the watcher recorded.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _};
use serde_json::{json, Value};

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Captioned images, newest first.
    List {
        /// Only images added since then: a duration ago ("2h", "1day"),
        /// an RFC 3339 time ("2026-11-23T08:00:00Z") or unix seconds.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget an image: its record and its caption in the index.
    Forget {
        /// The image file.
        path: PathBuf,
    },
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    match args.command {
        Command::List { since, json } => {
            let mut request = json!({ "action": "list" });
            if let Some(since) = since {
                request["since"] = json!(parse_since(&since, SystemTime::now())?);
            }
            let reply = Client::connect(config)?.call("images", request)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reply["images"])?);
            } else {
                for image in reply["images"].as_array().into_iter().flatten() {
                    println!("{}", describe(image));
                }
            }
        }
        Command::Forget { path } => {
            let path = std::path::absolute(&path).with_context(|| format!("{}", path.display()))?;
            let reply = Client::connect(config)?
                .call("images", json!({ "action": "forget", "path": path }))?;
            if reply["forgotten"] == json!(true) {
                println!("forgot {}", path.display());
            } else {
                println!("{} was not recorded", path.display());
            }
        }
    }
    Ok(())
}

fn describe(image: &Value) -> String {
    let added = image["added_at"]
        .as_u64()
        .map(|s| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string())
        .unwrap_or_default();
    format!(
        "{added}  {}  {}×{}  {}",
        image["path"].as_str().unwrap_or("?"),
        image["width"],
        image["height"],
        image["caption"].as_str().unwrap_or("")
    )
}

/// `--since`: unix seconds, an RFC 3339 time, or a duration before `now`.
fn parse_since(text: &str, now: SystemTime) -> anyhow::Result<i64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs);
    }
    let at = match humantime::parse_rfc3339_weak(text) {
        Ok(at) => at,
        Err(_) => {
            let ago = humantime::parse_duration(text).map_err(|_| {
                anyhow!(
                    "--since {text:?}: give a duration (\"2h\"), an RFC 3339 time or unix seconds"
                )
            })?;
            now.checked_sub(ago).unwrap_or(UNIX_EPOCH)
        }
    };
    Ok(at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_times_and_seconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_since("2h", now).unwrap(), 1_000_000 - 7200);
        assert_eq!(parse_since("1700000000", now).unwrap(), 1_700_000_000);
        assert_eq!(parse_since("1970-01-02T00:00:00Z", now).unwrap(), 86_400);
        assert!(parse_since("yesterday-ish", now).is_err());
    }
}
