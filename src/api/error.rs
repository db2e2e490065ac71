//! The wire error: a machine-readable [`ErrorCode`] and a message that
//! says what to do. Every domain error becomes one here, through its
//! [`ErrorKind`]: this is the only place that maps the two.

use serde::Serialize;

use crate::error::{ErrorKind, Kind};

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
    /// The line is longer than the protocol's limit; the connection is closed.
    LineTooLong,
    /// The daemon is shutting down and takes no new work.
    ShuttingDown,
    /// `daemon.max_connections` clients are connected; the connection is closed.
    TooManyConnections,
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
    /// The request was stopped before it finished (the caller went away).
    Cancelled,
    /// What the request names is not voxd's to show.
    Forbidden,
    /// What the request names does not exist.
    NotFound,
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
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::BadAudio => "bad_audio",
            ErrorCode::NoModel => "no_model",
            ErrorCode::EngineFailed => "engine_failed",
            ErrorCode::NoChatTemplate => "no_chat_template",
            ErrorCode::ModelLoadFailed => "model_load_failed",
            ErrorCode::ModelFailed => "model_failed",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Internal => "internal",
        }
    }
}

impl From<ErrorKind> for ErrorCode {
    fn from(kind: ErrorKind) -> ErrorCode {
        match kind {
            ErrorKind::InvalidParams => ErrorCode::InvalidParams,
            ErrorKind::ShuttingDown => ErrorCode::ShuttingDown,
            ErrorKind::BadAudio => ErrorCode::BadAudio,
            ErrorKind::NoModel => ErrorCode::NoModel,
            ErrorKind::EngineFailed => ErrorCode::EngineFailed,
            ErrorKind::NoChatTemplate => ErrorCode::NoChatTemplate,
            ErrorKind::ModelLoadFailed => ErrorCode::ModelLoadFailed,
            ErrorKind::ModelFailed => ErrorCode::ModelFailed,
            ErrorKind::Cancelled => ErrorCode::Cancelled,
            ErrorKind::Forbidden => ErrorCode::Forbidden,
            ErrorKind::NotFound => ErrorCode::NotFound,
            ErrorKind::Internal => ErrorCode::Internal,
        }
    }
}

/// An error reply's payload.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// An unexpected failure, with what went wrong as its message.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(ErrorCode::Internal, e.to_string())
    }

    /// Bad arguments: the message says which and what is expected.
    pub fn invalid_params(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidParams, message)
    }
}

/// Every domain error becomes a wire error by its kind, with its message.
impl<E: Kind> From<E> for ApiError {
    fn from(e: E) -> ApiError {
        ApiError::new(e.kind().into(), e.to_string())
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
            ErrorCode::TooManyConnections,
            ErrorCode::EngineFailed,
            ErrorCode::Cancelled,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::Internal,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn every_kind_keeps_its_name_on_the_wire() {
        for kind in [
            ErrorKind::InvalidParams,
            ErrorKind::ShuttingDown,
            ErrorKind::BadAudio,
            ErrorKind::NoModel,
            ErrorKind::EngineFailed,
            ErrorKind::NoChatTemplate,
            ErrorKind::ModelLoadFailed,
            ErrorKind::ModelFailed,
            ErrorKind::Cancelled,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::Internal,
        ] {
            assert_eq!(ErrorCode::from(kind).as_str(), kind.name());
        }
    }
}
