//! Speech to text: `transcribe{language}` (optional), then `audio-start`,
//! `audio-chunk`s in any rate, width and channel count, and `audio-stop`,
//! answered with `transcript{text, language}`. The audio becomes mono as
//! it arrives, and 16 kHz for Whisper at the end; it is transcribed by
//! `Assistant::transcribe_audio`, through the engine queue and memory
//! budget, with the events and STT metrics of the socket's `transcribe`.
//! Whisper transcribes in `stt.language`; the request's language is
//! echoed.

use std::path::Path;

use serde_json::json;
use tokio::sync::mpsc;
use voxd_proto::Frame;

use super::audio::Incoming;
use super::kind;
use super::WyomingError;
use crate::api::ApiError;
use crate::assistant::Assistant;
use crate::stt::{Audio16k, Pace};

/// What the daemon's transcript events call Wyoming audio (they name a
/// file).
const SOURCE: &str = "wyoming";

/// Audio arriving for one transcription.
pub struct Transcription {
    incoming: Incoming,
    /// Mono, at the stream's rate.
    samples: Vec<f32>,
    language: Option<String>,
}

impl Transcription {
    /// Starts on `audio-start`.
    pub fn start(
        start: &Frame,
        language: Option<String>,
        max_secs: u64,
    ) -> Result<Transcription, WyomingError> {
        Ok(Transcription {
            incoming: Incoming::start(start, max_secs)?,
            samples: Vec::new(),
            language,
        })
    }

    /// Adds an `audio-chunk`.
    pub fn chunk(&mut self, chunk: &Frame) -> Result<(), WyomingError> {
        let samples = self.incoming.chunk(chunk)?;
        self.samples.extend(samples);
        Ok(())
    }

    /// The audio received, for Whisper.
    pub fn audio(&self) -> Result<Audio16k, WyomingError> {
        let format = self.incoming.format();
        Ok(Audio16k {
            samples: self.incoming.to_16k(&self.samples)?,
            source_rate: format.rate,
            source_channels: format.channels as u16,
        })
    }

    /// The `transcript` of `audio` (empty for no audio).
    pub async fn finish(self, audio: Audio16k, assistant: &Assistant) -> Result<Frame, ApiError> {
        let text = if audio.samples.is_empty() {
            String::new()
        } else {
            // Partial transcripts are not streamed (Batch has none).
            let (partials, _) = mpsc::unbounded_channel();
            assistant
                .transcribe_audio(audio, Path::new(SOURCE), Pace::Batch, partials)
                .await?
                .transcript
                .text
        };
        let language = self
            .language
            .unwrap_or_else(|| assistant.config.config.stt.language.clone());
        Ok(Frame::new(kind::TRANSCRIPT)
            .with_data(json!({ "text": text.trim(), "language": language })))
    }
}
