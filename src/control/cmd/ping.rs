//! `ping`: liveness and protocol version.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::control::protocol::{ControlError, PROTOCOL_VERSION};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ping {}

impl Ping {
    pub fn apply(self) -> Result<Value, ControlError> {
        Ok(json!({ "pong": true, "protocol": PROTOCOL_VERSION }))
    }
}
