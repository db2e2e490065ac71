//! `shutdown`: stop the daemon gracefully, as SIGTERM does.

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::api::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shutdown {}

impl Shutdown {
    pub fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        ctx.assistant.begin_shutdown("shutdown command");
        Ok(json!({ "shutting_down": true }))
    }
}
