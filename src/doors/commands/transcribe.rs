//! `transcribe`: speech to text of a WAV file the daemon can read.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::protocol::Message;
use super::Context;
use super::Peer;
use crate::api::{ApiError, ErrorCode};
use crate::assistant::Transcribed;
use crate::stt::Pace;

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
    /// Streams `transcript.partial` events for this request (realtime only)
    /// and replies with the transcript and its real-time factor.
    pub async fn apply(self, ctx: &Context, peer: &Peer, id: &Value) -> Result<Value, ApiError> {
        if !self.path.is_absolute() {
            return Err(ApiError::new(
                ErrorCode::InvalidParams,
                format!("`path` must be absolute, not {}", self.path.display()),
            ));
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let out = peer.out.clone();
        let request_id = id.clone();
        let forwarder = tokio::spawn(async move {
            while let Some(partial) = rx.recv().await {
                let msg = Message::Event {
                    id: request_id.clone(),
                    event: "transcript.partial".into(),
                    data: json!(partial),
                };
                let _ = out.send(msg).await;
            }
        });
        let pace = if self.realtime {
            Pace::Realtime
        } else {
            Pace::Batch
        };
        let result = ctx.assistant.transcribe(&self.path, pace, tx).await;
        let _ = forwarder.await;
        let Transcribed {
            transcript,
            source_rate,
            source_channels,
            elapsed,
        } = result?;
        let elapsed = elapsed.as_secs_f64();
        Ok(json!({
            "text": transcript.text,
            "segments": transcript.segments,
            "audio_secs": transcript.audio_secs,
            "decode_ms": transcript.decode_ms,
            "elapsed_ms": (elapsed * 1000.0).round() as u64,
            "rtf": if transcript.audio_secs > 0.0 { elapsed / transcript.audio_secs } else { 0.0 },
            "source": { "rate": source_rate, "channels": source_channels },
        }))
    }
}
