//! What the engines publish on the observers' bus.

use serde::Serialize;

use super::EngineState;
use crate::events::Observed;

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum EngineEvent {
    /// `engine.state`: an engine moved to `state`; `error` says why it
    /// failed or went into backoff.
    State {
        engine: String,
        state: EngineState,
        pid: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

impl Observed for EngineEvent {
    fn name(&self) -> &'static str {
        match self {
            EngineEvent::State { .. } => "engine.state",
        }
    }
}
