//! `Assistant::transcribe`: speech to text of a WAV file, for the doors'
//! `transcribe` requests (the voice loop's speech comes from the listener).

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Assistant, AssistantEvent};
use crate::stt::{self, Pace, Partial, SttError, Transcript};

/// A WAV file's transcript, and what it took.
#[derive(Debug, Clone)]
pub struct Transcribed {
    pub transcript: Transcript,
    /// The file's own rate and channels (it was converted to 16 kHz mono).
    pub source_rate: u32,
    pub source_channels: u16,
    /// From the audio in hand (read, resampled) to the last word.
    pub elapsed: Duration,
}

impl Assistant {
    /// Transcribes the WAV file at `path` (any rate, channels, PCM format).
    /// With [`Pace::Realtime`] the audio is delivered at its real pace and
    /// partial transcripts go to `partials` meanwhile. Publishes
    /// `transcript.partial` and `transcript.final`.
    pub async fn transcribe(
        &self,
        path: &Path,
        pace: Pace,
        partials: mpsc::UnboundedSender<Partial>,
    ) -> Result<Transcribed, SttError> {
        let audio = stt::read_wav(path).await?;
        self.transcribe_audio(audio, path, pace, partials).await
    }

    /// Transcribes `audio` (read from `path`, or an upload called so);
    /// as [`Assistant::transcribe`] otherwise.
    pub async fn transcribe_audio(
        &self,
        audio: stt::wav::Audio16k,
        path: &Path,
        pace: Pace,
        partials: mpsc::UnboundedSender<Partial>,
    ) -> Result<Transcribed, SttError> {
        let started = Instant::now();
        let (tx, mut rx) = mpsc::unbounded_channel::<Partial>();
        let events = self.events.clone();
        let forwarder = tokio::spawn(async move {
            while let Some(partial) = rx.recv().await {
                events.publish(AssistantEvent::Partial(partial.clone()));
                let _ = partials.send(partial);
            }
        });
        let result = self.stt.transcribe(&audio, pace, Some(tx)).await;
        let _ = forwarder.await;
        let transcript = result?;
        let elapsed = started.elapsed();
        self.metrics.pipeline.observe_stt(
            transcript.audio_secs,
            elapsed,
            Duration::from_millis(transcript.decode_ms),
        );
        self.events.publish(AssistantEvent::Transcribed {
            text: transcript.text.clone(),
            path: path.to_path_buf(),
            audio_secs: transcript.audio_secs,
        });
        Ok(Transcribed {
            transcript,
            source_rate: audio.source_rate,
            source_channels: audio.source_channels,
            elapsed,
        })
    }
}
