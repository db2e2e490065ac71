//! `commands`: the user's commands (`commands.toml`): `list` them, `test`
//! what a text would run without running it, or `reload` the file (a file
//! that cannot be used is an error naming its line, and the commands in
//! use stay).

use std::time::Instant;

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::api::{ApiError, ErrorCode};
use crate::assistant::commands::Outcome;

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum CommandsCmd {
    /// The commands in use, the lists, and the file's error if it has one.
    List,
    /// Which command `text` would run, with which slots and action.
    Test { text: String },
    /// Read the file again.
    Reload,
}

impl CommandsCmd {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        let commands = ctx.assistant.commands().clone();
        match self {
            CommandsCmd::List => {
                let set = commands.current();
                let listed: Vec<Value> = set
                    .commands
                    .iter()
                    .map(|c| {
                        json!({
                            "name": c.name,
                            "line": c.line,
                            "sentences": c.sentences.iter().map(|t| &t.source).collect::<Vec<_>>(),
                            "run": c.action.run,
                            "http": c.action.http.as_ref().map(|h| json!({ "method": h.method, "url": h.url })),
                            "say": c.say,
                            "timeout_secs": c.action.timeout.as_secs_f64(),
                        })
                    })
                    .collect();
                let lists: serde_json::Map<String, Value> = set
                    .lists
                    .iter()
                    .map(|(name, list)| {
                        let mut values: Vec<&str> =
                            list.entries.iter().map(|e| e.value.as_str()).collect();
                        values.dedup();
                        (name.clone(), json!(values))
                    })
                    .collect();
                Ok(json!({
                    "path": commands.path(),
                    "error": commands.error(),
                    "commands": listed,
                    "lists": lists,
                }))
            }
            CommandsCmd::Test { text } => {
                if text.trim().is_empty() {
                    return Err(ApiError::new(
                        ErrorCode::InvalidParams,
                        "commands test: `text` is empty",
                    ));
                }
                let started = Instant::now();
                let found = commands.find(&text);
                // How long matching took (bench/commands.py reports it).
                let match_us = started.elapsed().as_micros() as u64;
                let Some(matched) = found else {
                    return Ok(json!({ "matched": false, "match_us": match_us }));
                };
                Ok(json!({
                    "matched": true,
                    "match_us": match_us,
                    "name": matched.command.name,
                    "template": matched.template,
                    "slots": matched.slots,
                    "heard": matched.heard,
                    "action": matched.prepare(),
                    "say": matched.reply(Outcome::Ok),
                    "say_failed": matched.reply(Outcome::Failed),
                }))
            }
            CommandsCmd::Reload => {
                let set = tokio::task::spawn_blocking(move || commands.reload())
                    .await
                    .map_err(ApiError::internal)??;
                Ok(json!({ "path": set.path, "commands": set.commands.len() }))
            }
        }
    }
}
