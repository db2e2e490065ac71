//! `voxd commands list | test "TEXT" | reload`: the user's commands
//! (`commands.toml`, see docs/commands.md), as the daemon has them.

use std::io::Write;

use anyhow::bail;
use serde_json::{json, Value};

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The commands in use: name, sentences and action, one command a paragraph.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Which command a text would run (name, template, slot values, action),
    /// without running it.
    Test {
        /// What the user says.
        text: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read commands.toml again (it is also read whenever it changes).
    Reload,
}

pub fn run(cmd: Command, config: &Loaded) -> anyhow::Result<()> {
    let mut client = Client::connect(config)?;
    let mut out = std::io::stdout().lock();
    match cmd {
        Command::List { json } => {
            let reply = client.call("commands", json!({ "action": "list" }))?;
            if json {
                writeln!(out, "{reply}")?;
                return Ok(());
            }
            writeln!(out, "# {}", reply["path"].as_str().unwrap_or("?"))?;
            if let Some(error) = reply["error"].as_str() {
                writeln!(out, "# not in use, the previous commands are: {error}")?;
            }
            for c in reply["commands"].as_array().into_iter().flatten() {
                writeln!(out, "\n{} (line {})", text(&c["name"]), c["line"])?;
                for sentence in c["sentences"].as_array().into_iter().flatten() {
                    writeln!(out, "  \"{}\"", text(sentence))?;
                }
                if let Some(action) = action_line(&c["run"], &c["http"]) {
                    writeln!(out, "  {action}")?;
                }
                if !text(&c["say"]).is_empty() {
                    writeln!(out, "  say: {}", text(&c["say"]))?;
                }
            }
            for (name, values) in reply["lists"].as_object().into_iter().flatten() {
                let values: Vec<&str> = values
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                writeln!(out, "\nlist {name}: {}", values.join(", "))?;
            }
        }
        Command::Test { text: said, json } => {
            let reply = client.call("commands", json!({ "action": "test", "text": said }))?;
            if json {
                writeln!(out, "{reply}")?;
                return Ok(());
            }
            if reply["matched"] != true {
                bail!("no command matches {said:?} (it would go to the built-in intents or `ask`)");
            }
            writeln!(out, "command:  {}", text(&reply["name"]))?;
            writeln!(out, "template: {}", text(&reply["template"]))?;
            for (name, value) in reply["slots"].as_object().into_iter().flatten() {
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string);
                writeln!(
                    out,
                    "slot:     {name} = {value} (heard \"{}\")",
                    text(&reply["heard"][name])
                )?;
            }
            let action = &reply["action"];
            match action_line(&action["run"], &action["http"]) {
                Some(line) => writeln!(out, "would:    {line}")?,
                None => writeln!(out, "would:    only reply")?,
            }
            if let Some(body) = action["http"]["body"].as_str() {
                writeln!(out, "body:     {body}")?;
            }
            writeln!(out, "say:      {}", text(&reply["say"]))?;
        }
        Command::Reload => {
            let reply = client.call("commands", json!({ "action": "reload" }))?;
            writeln!(
                out,
                "{} commands from {}",
                reply["commands"],
                text(&reply["path"])
            )?;
        }
    }
    Ok(())
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// `run ARGV…` and/or `METHOD URL`, or `None` for a reply-only command.
fn action_line(run: &Value, http: &Value) -> Option<String> {
    let argv: Vec<String> = run
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| format!("{:?}", text(a)))
        .collect();
    let mut parts = Vec::new();
    if !argv.is_empty() {
        parts.push(format!("run {}", argv.join(" ")));
    }
    if http.is_object() {
        parts.push(format!("{} {}", text(&http["method"]), text(&http["url"])));
    }
    (!parts.is_empty()).then(|| parts.join(", then "))
}
