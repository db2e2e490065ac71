//! Speech to text: the [`Stt`] contract, WAV input ([`wav`]) and the local
//! backend ([`LocalStt`]) that runs whisper.cpp in the `voxd-stt` worker
//! through the engine host.
//!
//! This module reads audio files and the model store (to find, and if needed
//! import, the ggml model); it reaches the worker only through
//! [`engine::Host::request`]. It never links whisper.cpp itself.

pub mod upload;
pub mod wav;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use voxd_proto::Frame;

use crate::config::{Config, SttConfig};
use crate::engine::{self, EngineError};
use crate::error::{ErrorKind, Kind};
use crate::models::{self, import, Manifest, Role, Store};
pub use wav::{Audio16k, WavError};

/// The engine name of the local worker.
pub const ENGINE: &str = "stt";

/// Samples per `audio-chunk` frame sent to the worker (1 s).
const CHUNK_SAMPLES: usize = wav::RATE as usize;

/// One stretch of the transcript, in seconds from the start of the audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// A finished transcription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The whole text.
    pub text: String,
    /// Timed segments.
    pub segments: Vec<Segment>,
    /// Length of the audio.
    pub audio_secs: f64,
    /// Time the engine spent decoding (after the last audio arrived).
    pub decode_ms: u64,
}

/// What the engine has recognised so far of audio still arriving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    pub text: String,
    /// Audio decoded for this partial.
    pub audio_secs: f64,
}

/// How the audio is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pace {
    /// All at once (a file): no partial transcripts.
    #[default]
    Batch,
    /// In real time, as a live source would deliver it; partial
    /// transcripts come every `stt.partial_interval_ms` of new audio.
    Realtime,
}

/// Why a transcription failed.
#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error(transparent)]
    Audio(#[from] WavError),
    #[error("no speech-to-text model is installed (models.stt = {candidates:?}); run `voxd models pull {}`", candidates.first().map(String::as_str).unwrap_or("whisper-tiny.en"))]
    NoModel { candidates: Vec<String> },
    #[error("stt.model = {model:?}: no file {}", path.display())]
    ModelMissing { model: String, path: PathBuf },
    #[error(transparent)]
    Models(#[from] models::ModelsError),
    #[error("cannot import {} for whisper.cpp: {source}", dir.display())]
    Import {
        dir: PathBuf,
        #[source]
        source: import::ImportError,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the speech-to-text worker sent an unexpected reply: {0}")]
    Protocol(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Kind for SttError {
    fn kind(&self) -> ErrorKind {
        match self {
            SttError::Audio(_) => ErrorKind::BadAudio,
            SttError::NoModel { .. } | SttError::ModelMissing { .. } => ErrorKind::NoModel,
            SttError::Engine(e) => e.kind(),
            _ => ErrorKind::Internal,
        }
    }
}

/// A speech-to-text engine.
#[async_trait]
pub trait Stt: Send + Sync {
    /// Transcribes 16 kHz mono audio. With [`Pace::Realtime`], partial
    /// transcripts go to `partials` while the audio is being delivered.
    async fn transcribe(
        &self,
        audio: &Audio16k,
        pace: Pace,
        partials: Option<mpsc::UnboundedSender<Partial>>,
    ) -> Result<Transcript, SttError>;
}

/// whisper.cpp in the `voxd-stt` worker, supervised by the engine host.
pub struct LocalStt {
    host: engine::Host,
    config: Config,
}

impl LocalStt {
    pub fn new(host: engine::Host, config: Config) -> LocalStt {
        LocalStt { host, config }
    }

    /// The `transcribe` frame's parameters (model resolved, imported if needed).
    async fn request_data(&self) -> Result<Value, SttError> {
        let config = self.config.clone();
        let model = tokio::task::spawn_blocking(move || model_path(&config))
            .await
            .map_err(|e| SttError::Internal(e.to_string()))??;
        let stt: &SttConfig = &self.config.stt;
        Ok(json!({
            "model": model,
            "language": stt.language,
            "initial_prompt": stt.initial_prompt,
            "threads": self.config.engines.stt.threads,
            "fit_audio_ctx": stt.fit_audio_ctx,
            "audio_ctx_margin_ms": stt.audio_ctx_margin_ms,
            "audio_ctx_min_ms": stt.audio_ctx_min_ms,
        }))
    }
}

/// The model `config` selects: a store id, or the path of a ggml file.
#[derive(Debug, Clone, PartialEq)]
pub enum Selected {
    Id(String),
    File(PathBuf),
}

impl Selected {
    /// Its name for a client: the id, or the file's name without `.bin`.
    pub fn name(&self) -> String {
        match self {
            Selected::Id(id) => id.clone(),
            Selected::File(path) => path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

/// The model `config` selects (`stt.model`, else the first installed of
/// `models.stt`), without loading or importing it.
pub fn selected_model(config: &Config) -> Result<Selected, SttError> {
    let store = Store::from_config(&config.models)?;
    match config.stt.model.as_str() {
        "" => {
            let manifest = Manifest::load(&config.models)?;
            models::resolve(Role::Stt, &config.models, &manifest, &store)
                .map(Selected::Id)
                .ok_or_else(|| SttError::NoModel {
                    candidates: config.models.stt.clone(),
                })
        }
        m if m.contains('/') || m.ends_with(".bin") => Ok(Selected::File(PathBuf::from(m))),
        id => Ok(Selected::Id(id.to_owned())),
    }
}

/// The languages Whisper's multilingual models transcribe (ISO 639-1,
/// plus `haw` and `yue`), in Whisper's own order.
pub const WHISPER_LANGUAGES: &[&str] = &[
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it",
    "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur",
    "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn",
    "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si",
    "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo",
    "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln",
    "ha", "ba", "jw", "su", "yue",
];

/// The languages `model` transcribes as `config` runs it: English for an
/// English-only model (`*.en`), `stt.language` when it names one, else
/// every [`WHISPER_LANGUAGES`] entry.
pub fn languages(config: &Config, model: &Selected) -> Vec<String> {
    let language = config.stt.language.as_str();
    if model.name().ends_with(".en") {
        vec!["en".to_owned()]
    } else if language != "auto" && !language.is_empty() {
        vec![language.to_owned()]
    } else {
        WHISPER_LANGUAGES.iter().map(|l| l.to_string()).collect()
    }
}

/// The ggml model file `config` selects; a CTranslate2 model in the store
/// without its ggml file is imported first (blocking).
pub fn model_path(config: &Config) -> Result<PathBuf, SttError> {
    let store = Store::from_config(&config.models)?;
    let id = match selected_model(config)? {
        Selected::File(path) => {
            return if path.is_file() {
                Ok(path)
            } else {
                Err(SttError::ModelMissing {
                    model: path.display().to_string(),
                    path,
                })
            };
        }
        Selected::Id(id) => id,
    };
    let path = import::ggml_path(&store, &id);
    if path.is_file() {
        return Ok(path);
    }
    let dir = store.model_dir(&id);
    if !import::is_ct2_dir(&dir) {
        return Err(SttError::ModelMissing { model: id, path });
    }
    tracing::info!(model = %id, "importing the CTranslate2 model for whisper.cpp");
    import::import_ct2(&dir, &path, &mut models::NoProgress)
        .map_err(|source| SttError::Import { dir, source })?;
    Ok(path)
}

#[async_trait]
impl Stt for LocalStt {
    async fn transcribe(
        &self,
        audio: &Audio16k,
        pace: Pace,
        partials: Option<mpsc::UnboundedSender<Partial>>,
    ) -> Result<Transcript, SttError> {
        let mut data = self.request_data().await?;
        let interval = match pace {
            Pace::Batch => 0,
            Pace::Realtime => self.config.stt.partial_interval_ms,
        };
        data["partial_interval_ms"] = json!(interval);
        let mut reply = self
            .host
            .request(ENGINE, Frame::new("transcribe").with_data(data))
            .await?;
        let format = json!({ "rate": wav::RATE, "width": 2, "channels": 1 });
        let chunk_len = match pace {
            Pace::Batch => CHUNK_SAMPLES,
            // 100 ms chunks, like a capture device.
            Pace::Realtime => CHUNK_SAMPLES / 10,
        };
        let started = tokio::time::Instant::now();
        let mut partial_frames = Vec::new();
        for (i, chunk) in audio.samples.chunks(chunk_len).enumerate() {
            if pace == Pace::Realtime {
                let due = started + std::time::Duration::from_millis(i as u64 * 100);
                // Forward partials while waiting for the chunk's time.
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(due) => break,
                        frame = reply.next() => match frame {
                            Some(Ok(f)) => partial_frames.push(f),
                            Some(Err(e)) => return Err(e.into()),
                            None => return Err(SttError::Protocol("the reply ended before the audio did".into())),
                        },
                    }
                    forward(&mut partial_frames, partials.as_ref())?;
                }
            }
            let frame = Frame::new("audio-chunk")
                .with_data(format.clone())
                .with_payload(Audio16k::to_s16le(chunk));
            reply.send(&frame).await?;
        }
        reply.send(&Frame::new("audio-stop")).await?;
        let mut transcript = None;
        while let Some(frame) = reply.next().await {
            let frame = frame?;
            if frame.kind == "transcript" {
                transcript = Some(
                    serde_json::from_value::<Transcript>(frame.data.clone())
                        .map_err(|e| SttError::Protocol(format!("bad `transcript`: {e}")))?,
                );
            } else {
                partial_frames.push(frame);
                forward(&mut partial_frames, partials.as_ref())?;
            }
        }
        transcript.ok_or_else(|| SttError::Protocol("no `transcript` before `done`".into()))
    }
}

/// Passes `transcript-partial` frames on; anything else is a protocol error.
fn forward(
    frames: &mut Vec<Frame>,
    partials: Option<&mpsc::UnboundedSender<Partial>>,
) -> Result<(), SttError> {
    for frame in frames.drain(..) {
        if frame.kind != "transcript-partial" {
            return Err(SttError::Protocol(format!(
                "unexpected `{}` frame during transcription",
                frame.kind
            )));
        }
        let partial: Partial = serde_json::from_value(frame.data)
            .map_err(|e| SttError::Protocol(format!("bad `transcript-partial`: {e}")))?;
        if let Some(tx) = partials {
            let _ = tx.send(partial);
        }
    }
    Ok(())
}

/// Reads `path` on a blocking thread.
pub async fn read_wav(path: &Path) -> Result<Audio16k, SttError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || wav::read(&path))
        .await
        .map_err(|e| SttError::Internal(e.to_string()))?
        .map_err(SttError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_s_languages_follow_its_name_and_stt_language() {
        let mut config = Config::builtin();
        let english = Selected::Id("whisper-tiny.en".into());
        let multi = Selected::File(PathBuf::from("/m/ggml-base.bin"));
        assert_eq!(multi.name(), "ggml-base");
        config.stt.language = "de".into();
        assert_eq!(languages(&config, &english), ["en"]);
        assert_eq!(languages(&config, &multi), ["de"]);
        config.stt.language = "auto".into();
        let all = languages(&config, &multi);
        assert_eq!(all.len(), WHISPER_LANGUAGES.len());
        assert!(all.contains(&"yue".to_string()));
    }
}
