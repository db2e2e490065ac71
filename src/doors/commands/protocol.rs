//! The control protocol's one message type, version and limits. The wire
//! format is documented with examples in `docs/protocol.md`.
//!
//! Clients send one JSON object per line: `{"id": ..., "cmd": "...", ...}`.
//! voxd answers each with one reply line carrying the same `id`, and streams
//! events for that `id` afterwards when the command subscribes to them.

use serde::Serialize;
use serde_json::Value;

use crate::api::ApiError;

/// Bumped on every incompatible change of the wire format.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line accepted; a longer one closes the connection.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Everything voxd writes to a client: a reply or an event, one per line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Message {
    /// The success reply to request `id`.
    Ok { id: Value, ok: bool, result: Value },
    /// The error reply to request `id` (`null` when the request had none).
    Err {
        id: Value,
        ok: bool,
        error: ApiError,
    },
    /// An event streamed for request `id` (a `subscribe`).
    Event {
        id: Value,
        event: String,
        data: Value,
    },
}

impl Message {
    pub fn ok(id: Value, result: Value) -> Message {
        Message::Ok {
            id,
            ok: true,
            result,
        }
    }

    pub fn err(id: Value, error: ApiError) -> Message {
        Message::Err {
            id,
            ok: false,
            error,
        }
    }

    /// One line of the wire format, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("messages always serialise")
    }
}
