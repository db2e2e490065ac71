//! `rag`: switch answering from the notes on or off for every request, or
//! report whether it is on (`action`: `on` | `off` | `status`).

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RagCmd {
    #[serde(default = "status")]
    pub action: RagAction,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RagAction {
    On,
    Off,
    Status,
}

fn status() -> RagAction {
    RagAction::Status
}

impl RagCmd {
    pub fn apply(self, ctx: &Context) -> Value {
        match self.action {
            RagAction::On => ctx.assistant.rag.set_enabled(true),
            RagAction::Off => ctx.assistant.rag.set_enabled(false),
            RagAction::Status => {}
        }
        json!({ "enabled": ctx.assistant.rag.enabled() })
    }
}
