//! `engine`: start (preload) or stop (free the memory of) one engine worker.

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::api::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineCmd {
    /// The engine: `stt` or `llm`.
    pub name: String,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Spawn the worker now and wait until it is ready; clears `failed`.
    Start,
    /// Stop the worker once its request in flight has finished.
    Stop,
}

impl EngineCmd {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        let result = match self.action {
            Action::Start => ctx.assistant.engines.start(&self.name).await,
            Action::Stop => ctx.assistant.engines.stop(&self.name).await,
        };
        result?;
        let status = ctx
            .assistant
            .engines
            .status()
            .into_iter()
            .find(|e| e.name == self.name);
        Ok(json!({ "engine": status }))
    }
}
