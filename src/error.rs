//! The domain's error vocabulary: what *kind* of failure an error is, in
//! terms a caller can act on. Every service error (`EngineError`,
//! `SttError`, `LlmError`, `SpeakError`, ...) says its [`ErrorKind`]
//! through [`Kind`]; the doors turn a kind into their wire code in one
//! place (`crate::api::ErrorCode`). Nothing here knows a transport.

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller's input cannot be used (empty, too long, unknown name).
    InvalidParams,
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
    /// The caller stopped the request (went away, barge-in).
    Cancelled,
    /// What the request names is not voxd's to show (a file outside the
    /// notes folders).
    Forbidden,
    /// What the request names does not exist.
    NotFound,
    /// Something voxd did not expect; the message says what.
    Internal,
}

impl ErrorKind {
    /// The kind's name in snake case (`engine_failed`), as events and the
    /// wire spell it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidParams => "invalid_params",
            ErrorKind::ShuttingDown => "shutting_down",
            ErrorKind::BadAudio => "bad_audio",
            ErrorKind::NoModel => "no_model",
            ErrorKind::EngineFailed => "engine_failed",
            ErrorKind::NoChatTemplate => "no_chat_template",
            ErrorKind::ModelLoadFailed => "model_load_failed",
            ErrorKind::ModelFailed => "model_failed",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Internal => "internal",
        }
    }
}

/// An error that knows its [`ErrorKind`].
pub trait Kind: std::error::Error {
    fn kind(&self) -> ErrorKind;
}
