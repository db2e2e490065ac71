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
    /// `wyoming.max_audio_secs`.
    max_secs: u64,
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
            incoming: Incoming::start(start)?,
            samples: Vec::new(),
            max_secs,
            language,
        })
    }

    /// Adds an `audio-chunk`; the audio may be at most `max_secs` long.
    pub fn chunk(&mut self, chunk: &Frame) -> Result<(), WyomingError> {
        let samples = self.incoming.chunk(chunk)?;
        let max = self.max_secs * u64::from(self.incoming.format().rate);
        if (self.samples.len() + samples.len()) as u64 > max {
            return Err(WyomingError::AudioTooLong {
                max_secs: self.max_secs,
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcription_is_at_most_max_audio_secs_long() {
        let format = json!({"rate": 8000, "width": 2, "channels": 1});
        let start = Frame::new(kind::AUDIO_START).with_data(format.clone());
        let mut t = Transcription::start(&start, None, 1).unwrap();
        let second = Frame::new(kind::AUDIO_CHUNK)
            .with_data(format)
            .with_payload(vec![0; 2 * 8000]);
        t.chunk(&second).unwrap();
        assert!(matches!(
            t.chunk(&second),
            Err(WyomingError::AudioTooLong { max_secs: 1 })
        ));
        assert_eq!(t.audio().unwrap().samples.len(), 16_000);
    }
}
