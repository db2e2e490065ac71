//! What the speech thread publishes on the observers' bus.

use std::path::PathBuf;

use serde::Serialize;

use crate::events::Observed;

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SpeechEvent {
    /// `speech.started`: an utterance is heard from now on (a held one
    /// once confirmed).
    Started {
        utterance: u64,
        voice: PathBuf,
        sample_rate: u32,
    },
    /// `speech.chunk`: a chunk's (sentence's) audio is queued for playback.
    Chunk {
        utterance: u64,
        index: usize,
        text: String,
        samples: u64,
        sample_rate: u32,
        audio_ms: u64,
        synth_ms: u64,
        /// How long a held utterance's first chunk waited for its verdict.
        #[serde(skip_serializing_if = "Option::is_none")]
        held_ms: Option<u64>,
    },
    /// `speech.finished`: spoken to the end.
    Finished {
        utterance: u64,
        chunks: usize,
        audio_ms: u64,
    },
    /// `speech.interrupted`: stopped before the end.
    Interrupted { utterance: u64, chunks: usize },
    /// `speech.failed`.
    Failed { utterance: u64, error: String },
    /// `speech.withdrawn`: a held utterance dropped unheard.
    Withdrawn { utterance: u64 },
}

impl Observed for SpeechEvent {
    fn name(&self) -> &'static str {
        match self {
            SpeechEvent::Started { .. } => "speech.started",
            SpeechEvent::Chunk { .. } => "speech.chunk",
            SpeechEvent::Finished { .. } => "speech.finished",
            SpeechEvent::Interrupted { .. } => "speech.interrupted",
            SpeechEvent::Failed { .. } => "speech.failed",
            SpeechEvent::Withdrawn { .. } => "speech.withdrawn",
        }
    }
}
