//! Why the assistant could not do what it was asked: a domain error with a
//! [`Kind`], never a wire code (the doors map kinds to codes in
//! `crate::api`).

use crate::error::{ErrorKind, Kind};
use crate::llm::LlmError;
use crate::rag::RagError;
use crate::speak::SpeakError;

/// A failed assistant request.
#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    /// The request itself cannot be answered (an empty question); the
    /// text says what to change.
    #[error("{0}")]
    Invalid(String),
    /// The model failed (a cancelled generation is [`AssistantError::Cancelled`]).
    #[error(transparent)]
    Llm(LlmError),
    #[error(transparent)]
    Notes(#[from] RagError),
    #[error(transparent)]
    Speak(#[from] SpeakError),
    /// A file the reply reads (a note, the image store) could not be read.
    #[error("{0}")]
    Read(String),
    /// The caller stopped the request (went away, barge-in).
    #[error("the request was cancelled")]
    Cancelled,
    /// A speculative answer whose question was withdrawn before it was heard.
    #[error("the question was withdrawn before its answer was heard")]
    Withdrawn,
}

/// A cancelled generation is the request's cancellation, whichever step
/// ran the model.
impl From<LlmError> for AssistantError {
    fn from(e: LlmError) -> AssistantError {
        match e {
            LlmError::Cancelled => AssistantError::Cancelled,
            e => AssistantError::Llm(e),
        }
    }
}

impl Kind for AssistantError {
    fn kind(&self) -> ErrorKind {
        match self {
            AssistantError::Invalid(_) => ErrorKind::InvalidParams,
            AssistantError::Llm(e) => e.kind(),
            AssistantError::Speak(e) => e.kind(),
            AssistantError::Cancelled | AssistantError::Withdrawn => ErrorKind::Cancelled,
            AssistantError::Notes(e) => e.kind(),
            AssistantError::Read(_) => ErrorKind::Internal,
        }
    }
}
