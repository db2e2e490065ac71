//! `engine`: start (preload) or stop (free the memory of) one engine worker.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::control::protocol::ControlError;
use crate::control::Context;
use crate::engine::EngineError;

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
    pub async fn apply(self, ctx: &Context) -> Result<Value, ControlError> {
        let result = match self.action {
            Action::Start => ctx.engines.start(&self.name).await,
            Action::Stop => ctx.engines.stop(&self.name).await,
        };
        result.map_err(engine_error)?;
        let status = ctx
            .engines
            .status()
            .into_iter()
            .find(|e| e.name == self.name);
        Ok(json!({ "engine": status }))
    }
}

/// How engine failures look on the socket.
pub fn engine_error(e: EngineError) -> ControlError {
    ControlError::new(e.code(), e.to_string())
}
