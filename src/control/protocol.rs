//! The control protocol's one message type, version and limits. The wire
//! format is documented with examples in `docs/protocol.md`.
//!
//! Clients send one JSON object per line: `{"id": ..., "cmd": "...", ...}`.
//! voxd answers each with one reply line carrying the same `id`, and streams
//! events for that `id` afterwards when the command subscribes to them.

use serde::Serialize;
use serde_json::Value;

/// Bumped on every incompatible change of the wire format.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line accepted; a longer one closes the connection.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line is not JSON.
    ParseError,
    /// JSON, but not a request object with an `id` and a `cmd`.
    InvalidRequest,
    /// `cmd` names no command.
    UnknownCommand,
    /// The command's arguments are missing or of the wrong type.
    InvalidParams,
    /// The line is longer than [`MAX_LINE_BYTES`]; the connection is closed.
    LineTooLong,
    /// The daemon is shutting down and takes no new work.
    ShuttingDown,
    /// Audio input that cannot be used (unreadable, truncated, corrupt, empty).
    BadAudio,
    /// A model the request needs is not installed.
    NoModel,
    /// An engine worker failed (crashed, hung, could not start).
    EngineFailed,
    /// A chat prompt for a model with no chat template.
    NoChatTemplate,
    /// The model file could not be loaded (missing, not GGUF, corrupt).
    ModelLoadFailed,
    /// The language model failed on this request (e.g. prompt too long).
    ModelFailed,
    /// Something voxd did not expect; the message says what.
    Internal,
}

impl ErrorCode {
    /// The code as the wire spells it (`engine_failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "parse_error",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::InvalidParams => "invalid_params",
            ErrorCode::LineTooLong => "line_too_long",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::BadAudio => "bad_audio",
            ErrorCode::NoModel => "no_model",
            ErrorCode::EngineFailed => "engine_failed",
            ErrorCode::NoChatTemplate => "no_chat_template",
            ErrorCode::ModelLoadFailed => "model_load_failed",
            ErrorCode::ModelFailed => "model_failed",
            ErrorCode::Internal => "internal",
        }
    }
}

/// An error reply's payload.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    pub code: ErrorCode,
    pub message: String,
}

impl ControlError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ControlError {
        ControlError {
            code,
            message: message.into(),
        }
    }
}

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
        error: ControlError,
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

    pub fn err(id: Value, error: ControlError) -> Message {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_wire_spelling() {
        for code in [
            ErrorCode::ParseError,
            ErrorCode::InvalidRequest,
            ErrorCode::UnknownCommand,
            ErrorCode::InvalidParams,
            ErrorCode::LineTooLong,
            ErrorCode::ShuttingDown,
            ErrorCode::EngineFailed,
            ErrorCode::Internal,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
