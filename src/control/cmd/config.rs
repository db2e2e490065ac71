//! `config`: the daemon's effective configuration and where each value came from.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::control::protocol::{ControlError, ErrorCode};
use crate::control::Context;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigCmd {}

impl ConfigCmd {
    pub fn apply(self, ctx: &Context) -> Result<Value, ControlError> {
        let internal = |e: serde_json::Error| ControlError::new(ErrorCode::Internal, e.to_string());
        let origins: serde_json::Map<String, Value> = ctx
            .config
            .origins
            .iter()
            .map(|(k, o)| Ok((k.clone(), serde_json::to_value(o)?)))
            .collect::<Result<_, serde_json::Error>>()
            .map_err(internal)?;
        Ok(json!({
            "config": serde_json::to_value(&ctx.config.config).map_err(internal)?,
            "origins": origins,
        }))
    }
}
