//! `ping`: liveness and protocol version.

use serde::Deserialize;
use serde_json::{json, Value};

use super::protocol::PROTOCOL_VERSION;
use crate::api::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ping {}

impl Ping {
    pub fn apply(self) -> Result<Value, ApiError> {
        Ok(json!({ "pong": true, "protocol": PROTOCOL_VERSION }))
    }
}
