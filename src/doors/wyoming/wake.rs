//! Wake words: `detect{names}` (all installed words when it names none, as
//! older Home Assistant sends no `detect`), then audio; each word that
//! fires is answered at once with `detection{name, timestamp}` (ms from
//! the start of the audio), and `audio-stop` with `not-detected` when none
//! did. The openWakeWord models of the listener run here with its
//! threshold and refractory period, off the async runtime. A wake-word
//! stream keeps no audio, so it may last any time (a satellite's does):
//! `wyoming.max_audio_secs` is for transcriptions.

use serde_json::json;
use voxd_proto::Frame;

use super::audio::Incoming;
use super::kind;
use super::WyomingError;
use crate::api::ApiError;
use crate::assistant::Assistant;
use crate::listen::{self, wake::WakeWords};
use crate::stt::wav::RATE;

/// Audio arriving for wake-word detection.
pub struct Detection {
    incoming: Incoming,
    /// Samples at the stream's rate not scored yet: audio at 16 kHz is
    /// scored chunk by chunk, other rates a second at a time (see
    /// [`Incoming::to_16k`]).
    pending: Vec<f32>,
    /// `None` only while a chunk is being scored.
    words: Option<WakeWords>,
    detected: bool,
}

impl Detection {
    /// Loads the detector for `names` on `audio-start`.
    pub async fn start(
        start: &Frame,
        names: &[String],
        assistant: &Assistant,
    ) -> Result<Detection, WyomingError> {
        let incoming = Incoming::start(start)?;
        let config = assistant.config.config.clone();
        let names = names.to_vec();
        let words = tokio::task::spawn_blocking(move || listen::wake_detector(&config, &names))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)?;
        Ok(Detection {
            incoming,
            pending: Vec::new(),
            words: Some(words),
            detected: false,
        })
    }

    /// Scores an `audio-chunk`; returns a `detection` for each word that fired.
    pub async fn chunk(&mut self, chunk: &Frame) -> Result<Vec<Frame>, WyomingError> {
        let samples = self.incoming.chunk(chunk)?;
        self.pending.extend(samples);
        let format = self.incoming.format();
        if format.rate != RATE && self.pending.len() < format.rate as usize {
            return Ok(Vec::new());
        }
        self.score().await
    }

    /// On `audio-stop`: the words in the audio not scored yet, then
    /// `not-detected` when no word fired.
    pub async fn finish(mut self) -> Result<Vec<Frame>, WyomingError> {
        let mut events = self.score().await?;
        if !self.detected {
            events.push(Frame::new(kind::NOT_DETECTED));
        }
        Ok(events)
    }

    /// Scores the pending audio.
    async fn score(&mut self) -> Result<Vec<Frame>, WyomingError> {
        let samples = self.incoming.to_16k(&std::mem::take(&mut self.pending))?;
        let mut words = self.words.take().ok_or_else(|| {
            ApiError::internal("the wake-word detector was lost after an earlier failure")
        })?;
        let (words, fired) = tokio::task::spawn_blocking(move || {
            let fired = words.push(&samples);
            (words, fired)
        })
        .await
        .map_err(ApiError::internal)?;
        self.words = Some(words);
        let fired = fired.map_err(ApiError::from)?;
        self.detected |= !fired.is_empty();
        Ok(fired
            .into_iter()
            .map(|d| {
                tracing::debug!(word = %d.name, score = d.score, "wyoming: wake word detected");
                Frame::new(kind::DETECTION).with_data(json!({
                    "name": d.name,
                    "timestamp": (d.time * 1000.0).round() as u64,
                }))
            })
            .collect())
    }
}
