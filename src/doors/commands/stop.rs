//! `stop`: stop speaking now and clear the speech queue.

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::api::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stop {}

impl Stop {
    pub fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        Ok(json!({ "stopped": ctx.assistant.speaker.stop() }))
    }
}
