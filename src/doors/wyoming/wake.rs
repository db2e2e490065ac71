//! Wake words: `detect{names}` (all installed words when it names none, as
//! older Home Assistant sends no `detect`), then audio; each word that
//! fires is answered at once with `detection{name, timestamp}` (ms from
//! the start of the audio), and `audio-stop` with `not-detected` when none
//! did. The openWakeWord models of the listener run here with its
//! threshold and refractory period, off the async runtime.

use serde_json::json;
use voxd_proto::Frame;

use super::audio::Incoming;
use super::kind;
use super::WyomingError;
use crate::api::ApiError;
use crate::assistant::Assistant;
use crate::listen::{self, wake::WakeWords};

/// Audio arriving for wake-word detection.
pub struct Detection {
    incoming: Incoming,
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
        max_secs: u64,
    ) -> Result<Detection, WyomingError> {
        let incoming = Incoming::start(start, max_secs)?;
        let config = assistant.config.config.clone();
        let names = names.to_vec();
        let words = tokio::task::spawn_blocking(move || listen::wake_detector(&config, &names))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)?;
        Ok(Detection {
            incoming,
            words: Some(words),
            detected: false,
        })
    }

    /// Scores an `audio-chunk`; returns a `detection` for each word that fired.
    pub async fn chunk(&mut self, chunk: &Frame) -> Result<Vec<Frame>, WyomingError> {
        let samples = self.incoming.chunk(chunk)?;
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

    /// On `audio-stop`: `not-detected` when no word fired.
    pub fn finish(self) -> Option<Frame> {
        (!self.detected).then(|| Frame::new(kind::NOT_DETECTED))
    }
}
