//! `config`: the daemon's effective configuration and where each value came from.

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::api::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigCmd {}

impl ConfigCmd {
    pub fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        let origins: serde_json::Map<String, Value> = ctx
            .assistant
            .config
            .origins
            .iter()
            .map(|(k, o)| Ok((k.clone(), serde_json::to_value(o)?)))
            .collect::<Result<_, serde_json::Error>>()
            .map_err(ApiError::internal)?;
        Ok(json!({
            "config": serde_json::to_value(&ctx.assistant.config.config).map_err(ApiError::internal)?,
            "origins": origins,
        }))
    }
}
