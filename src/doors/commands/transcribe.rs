//! `transcribe`: speech to text of a WAV file the daemon can read.

use std::path::PathBuf;
use std::time::Instant;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::protocol::Message;
use super::Context;
use super::Peer;
use crate::api::{ApiError, ErrorCode};
use crate::events::Event;
use crate::stt::{self, Pace};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcribe {
    /// Absolute path of a WAV file (any rate, channels, PCM format).
    pub path: PathBuf,
    /// Deliver the audio at its real pace, as a live source would, and
    /// stream `transcript.partial` events meanwhile.
    #[serde(default)]
    pub realtime: bool,
}

impl Transcribe {
    /// Streams `transcript.partial` events for this request (realtime only),
    /// publishes `transcript.final` on the event bus, and replies with the
    /// transcript and its real-time factor.
    pub async fn apply(self, ctx: &Context, peer: &Peer, id: &Value) -> Result<Value, ApiError> {
        if !self.path.is_absolute() {
            return Err(ApiError::new(
                ErrorCode::InvalidParams,
                format!("`path` must be absolute, not {}", self.path.display()),
            ));
        }
        let started = Instant::now();
        let audio = stt::read_wav(&self.path).await?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let out = peer.out.clone();
        let request_id = id.clone();
        let events = ctx.assistant.events.clone();
        let forwarder = tokio::spawn(async move {
            while let Some(partial) = rx.recv().await {
                let data = json!(partial);
                events.publish(Event::new("transcript.partial", data.clone()));
                let msg = Message::Event {
                    id: request_id.clone(),
                    event: "transcript.partial".into(),
                    data,
                };
                let _ = out.send(msg).await;
            }
        });
        let pace = if self.realtime {
            Pace::Realtime
        } else {
            Pace::Batch
        };
        let result = ctx.assistant.stt.transcribe(&audio, pace, Some(tx)).await;
        let _ = forwarder.await;
        let transcript = result?;
        ctx.assistant.metrics.pipeline.observe_stt(
            transcript.audio_secs,
            started.elapsed(),
            std::time::Duration::from_millis(transcript.decode_ms),
        );
        let elapsed = started.elapsed().as_secs_f64();
        let reply = json!({
            "text": transcript.text,
            "segments": transcript.segments,
            "audio_secs": transcript.audio_secs,
            "decode_ms": transcript.decode_ms,
            "elapsed_ms": (elapsed * 1000.0).round() as u64,
            "rtf": if transcript.audio_secs > 0.0 { elapsed / transcript.audio_secs } else { 0.0 },
            "source": { "rate": audio.source_rate, "channels": audio.source_channels },
        });
        ctx.assistant.events.publish(Event::new(
            "transcript.final",
            json!({ "text": reply["text"], "path": self.path, "audio_secs": reply["audio_secs"] }),
        ));
        Ok(reply)
    }
}
