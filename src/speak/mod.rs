//! Spoken replies: text (whole, or streamed token by token from the LLM)
//! is split into sentences ([`split`]), each synthesised as soon as it is
//! complete by a [`Tts`] engine ([`piper`], phonemes from [`espeak`]) and
//! queued for playback on an audio sink ([`crate::audio`]), a WAV file or
//! the caller's own channel ([`Target`]) by the [`Speaker`] (`speaker`) on
//! the speech thread (`thread`); the
//! [`Speaker`] also owns interruption (`voxd stop`, later barge-in), and a
//! reply may be held until a [`Gate`] confirms it (`hold`).
//!
//! This module may touch: the model store (read), espeak-ng's data, ONNX
//! Runtime (through [`crate::onnx`]), the audio sinks, and the event bus
//! (`speech.*` events). Synthesis and playback run on one dedicated thread,
//! never on the async runtime.

pub mod espeak;
mod events;
mod hold;
pub mod piper;
mod speaker;
pub mod split;
mod target;
mod thread;

use std::path::{Path, PathBuf};

pub use crate::audio::Pcm;
pub use events::SpeechEvent;
pub use hold::{hold, Gate, Hold, Verdict};
pub use speaker::{FirstAudio, SayOptions, SayOutcome, Speaker, Utterance};
pub use target::Target;

use crate::audio::AudioError;
use crate::config::ModelsConfig;
use crate::error::{ErrorKind, Kind};
use crate::models::{self, Manifest, Role, Store};

/// A text-to-speech engine: text in, mono audio out.
pub trait Tts {
    /// Sample rate of the audio [`Tts::synthesize`] returns.
    fn sample_rate(&self) -> u32;
    /// Speaks `text` (one chunk: a sentence or a few) as samples in [-1, 1].
    fn synthesize(&mut self, text: &str) -> Result<Vec<f32>, SpeakError>;
    /// Told before each chunk whether more text is already waiting after
    /// it: an engine may keep its working memory through a backlog and give
    /// it back once the queue has drained. Ignored by default.
    fn backlog(&mut self, _waiting: bool) {}
}

#[derive(Debug, thiserror::Error)]
pub enum SpeakError {
    #[error("voice {path}: {message}")]
    Voice { path: PathBuf, message: String },
    #[error(
        "no TTS voice is installed (models.tts: {wanted}); install one with `voxd models pull`"
    )]
    NoVoice { wanted: String },
    #[error(transparent)]
    Espeak(#[from] espeak::EspeakError),
    #[error("speech synthesis failed: {0}")]
    Inference(String),
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("{0}")]
    Settings(String),
    #[error("text is {bytes} bytes; at most {max} (tts.max_text_bytes) can be spoken at once")]
    TooLong { bytes: usize, max: usize },
    #[error("nothing to say: the text has no words")]
    NothingToSay,
    #[error("no open utterance {0}")]
    NoUtterance(u64),
    #[error("the speech thread has stopped")]
    Stopped,
}

impl Kind for SpeakError {
    fn kind(&self) -> ErrorKind {
        match self {
            SpeakError::TooLong { .. }
            | SpeakError::NothingToSay
            | SpeakError::NoUtterance(_)
            | SpeakError::NoVoice { .. }
            | SpeakError::Voice { .. } => ErrorKind::InvalidParams,
            _ => ErrorKind::EngineFailed,
        }
    }
}

/// A voice as a client may choose it, read from its config without
/// loading it.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceInfo {
    /// The voice's model id in the store, or its file's name.
    pub name: String,
    /// What it speaks (`en_US`), when its config says.
    pub language: Option<String>,
    /// Its speakers' names (none for a single-speaker voice).
    pub speakers: Vec<String>,
}

/// The voice that `voice` names (empty: `tts.voice`, then `models.tts`; see
/// [`voice_path`]), described.
pub fn describe_voice(voice: &str, models_config: &ModelsConfig) -> Result<VoiceInfo, SpeakError> {
    let path = voice_path(voice, models_config)?;
    let (model, json) = piper::voice_files(&path)?;
    let config = piper::VoiceConfig::read(&json)?;
    let name = if path.is_dir() {
        path.file_name()
    } else {
        model.file_stem()
    }
    .map(|n| n.to_string_lossy().into_owned())
    .unwrap_or_default();
    let mut speakers: Vec<(i64, String)> = config
        .speaker_id_map
        .into_iter()
        .map(|(name, id)| (id, name))
        .collect();
    speakers.sort();
    Ok(VoiceInfo {
        name,
        language: config.language.map(|l| l.code),
        speakers: speakers.into_iter().map(|(_, name)| name).collect(),
    })
}

/// The voice files for `voice`: a path to a voice (directory or `.onnx`),
/// a model id in the store, or, when empty, the first installed `models.tts`.
pub fn voice_path(voice: &str, models_config: &ModelsConfig) -> Result<PathBuf, SpeakError> {
    let as_path = Path::new(voice);
    if voice.contains('/') || voice.ends_with(".onnx") {
        return Ok(as_path.to_path_buf());
    }
    let store = Store::from_config(models_config).map_err(|e| SpeakError::Voice {
        path: PathBuf::from(voice),
        message: e.to_string(),
    })?;
    if !voice.is_empty() {
        return Ok(store.model_dir(voice));
    }
    let manifest = Manifest::load(models_config).map_err(|e| SpeakError::Voice {
        path: PathBuf::from("(manifest)"),
        message: e.to_string(),
    })?;
    models::resolve(Role::Tts, models_config, &manifest, &store)
        .map(|id| store.model_dir(&id))
        .ok_or_else(|| SpeakError::NoVoice {
            wanted: models_config.tts.join(", "),
        })
}
