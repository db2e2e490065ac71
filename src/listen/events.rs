//! What the listener publishes on the observers' bus. The voice loop does
//! not read these: it has its own lossless channel ([`super::Heard`]).

use serde::Serialize;

use crate::events::Observed;
use crate::stt::Segment;

/// The `source` of the listener's transcripts (`transcribe`'s have none).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Listen,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ListenEvent {
    /// `listen.started`.
    Started {
        input: String,
        wake_words: Vec<String>,
        wake_phrases: Vec<String>,
    },
    /// `listen.stopped`: `reason` is `stopped`, or the error that stopped it.
    Stopped { reason: String },
    /// `listen.error`: of one utterance, of a stage (`wake_phrase`), or of
    /// the listener itself (neither).
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        utterance: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        stage: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<&'static str>,
        error: String,
    },
    /// `wake.detected`: by the wake-word `model`, or a wake `phrase` (with
    /// the `text` it was heard in).
    Wake {
        name: String,
        score: f32,
        time: f64,
        source: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// `speech.start`: an utterance starts, after a wake word or as a
    /// follow-up.
    SpeechStart {
        utterance: u64,
        time: f64,
        trigger: &'static str,
        wake_word: Option<String>,
    },
    /// `speech.end`: it ended (`cut` at the length limit), or was
    /// `discarded` for `reason`.
    SpeechEnd {
        utterance: u64,
        time: f64,
        duration: f64,
        cut: bool,
        discarded: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `transcript.early`: the utterance's text at a pause, before it ends.
    Early {
        utterance: u64,
        text: String,
        time: f64,
        audio_secs: f64,
        decode_ms: u64,
        source: Source,
    },
    /// `transcript.partial`: the text so far, while it is said.
    Partial {
        utterance: u64,
        text: String,
        audio_secs: f64,
        source: Source,
    },
    /// `transcript.final`: the utterance's text (`early` when the early
    /// transcript stood), after its wake phrase if one woke voxd.
    Final {
        utterance: u64,
        text: String,
        segments: Vec<Segment>,
        audio_secs: f64,
        decode_ms: u64,
        early: bool,
        source: Source,
        #[serde(skip_serializing_if = "Option::is_none")]
        wake_phrase: Option<String>,
    },
    /// `transcript.withdrawn`: an early transcript was voided.
    Withdrawn {
        utterance: u64,
        reason: String,
        source: Source,
    },
}

impl Observed for ListenEvent {
    fn name(&self) -> &'static str {
        match self {
            ListenEvent::Started { .. } => "listen.started",
            ListenEvent::Stopped { .. } => "listen.stopped",
            ListenEvent::Error { .. } => "listen.error",
            ListenEvent::Wake { .. } => "wake.detected",
            ListenEvent::SpeechStart { .. } => "speech.start",
            ListenEvent::SpeechEnd { .. } => "speech.end",
            ListenEvent::Early { .. } => "transcript.early",
            ListenEvent::Partial { .. } => "transcript.partial",
            ListenEvent::Final { .. } => "transcript.final",
            ListenEvent::Withdrawn { .. } => "transcript.withdrawn",
        }
    }
}
