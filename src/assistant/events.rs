//! What the daemon and its assistant publish on the observers' bus.

use std::path::PathBuf;

use serde::Serialize;

use super::Reply;
use crate::events::Observed;
use crate::stt::Partial;

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum AssistantEvent {
    /// `daemon.ready`: every door is open.
    Ready { pid: u32 },
    /// `daemon.shutdown`: the doors close now; the last event.
    Shutdown { reason: String },
    /// `assistant.reply`: a turn was answered.
    Reply(Box<Reply>),
    /// `assistant.interrupted`: a reply was stopped (barge-in).
    Interrupted { reason: String },
    /// `assistant.error`: a spoken turn failed (and says so aloud).
    Error {
        code: &'static str,
        message: String,
        utterance: u64,
    },
    /// `transcript.partial`: of a file being transcribed in real time.
    Partial(Partial),
    /// `transcript.final`: a file was transcribed.
    Transcribed {
        text: String,
        path: PathBuf,
        audio_secs: f64,
    },
}

impl Observed for AssistantEvent {
    fn name(&self) -> &'static str {
        match self {
            AssistantEvent::Ready { .. } => "daemon.ready",
            AssistantEvent::Shutdown { .. } => "daemon.shutdown",
            AssistantEvent::Reply(_) => "assistant.reply",
            AssistantEvent::Interrupted { .. } => "assistant.interrupted",
            AssistantEvent::Error { .. } => "assistant.error",
            AssistantEvent::Partial(_) => "transcript.partial",
            AssistantEvent::Transcribed { .. } => "transcript.final",
        }
    }
}
