//! `stop`: stop speaking now and clear the speech queue.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::control::protocol::ControlError;
use crate::control::Context;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stop {}

impl Stop {
    pub fn apply(self, ctx: &Context) -> Result<Value, ControlError> {
        Ok(json!({ "stopped": ctx.speaker.stop() }))
    }
}
