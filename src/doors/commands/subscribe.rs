//! `subscribe`: stream daemon events on this connection until it closes.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::protocol::Message;
use super::Context;
use super::{Outcome, Peer};
use crate::audio::{to_i16, Pcm};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    /// Event names or prefixes (`"engine."`); empty means every event.
    #[serde(default)]
    pub events: Vec<String>,
}

impl Subscribe {
    fn wants(&self, event: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| event.starts_with(e.as_str()))
    }

    /// Replies at once, then forwards matching events tagged with this
    /// request's `id` until the connection closes or the daemon stops.
    /// `speech.audio` comes from the speaker's own channel, not the bus.
    pub async fn apply(self, ctx: &Context, peer: &Peer, id: &Value) -> Outcome {
        let mut rx = ctx.assistant.events.subscribe();
        let mut audio = self.wants(AUDIO).then(|| ctx.assistant.speaker.audio());
        let reply = Message::ok(id.clone(), json!({ "subscribed": self.events }));
        if peer.out.send(reply).await.is_err() {
            return Ok(None);
        }
        let out = peer.out.clone();
        let closed = peer.closed.clone();
        let id = id.clone();
        tokio::spawn(async move {
            loop {
                // Audio first: a chunk's audio is handed over before its
                // `speech.chunk`, and comes out in that order. Pending
                // events before closing, so `daemon.shutdown` (published
                // before the connection closes) still goes out.
                let (event, data) = tokio::select! {
                    biased;
                    Some(pcm) = recv(&mut audio) => (AUDIO, audio_data(&pcm)),
                    event = rx.recv() => match event {
                        Ok(event) if self.wants(event.name()) => {
                            (event.name(), json!(event.data()))
                        }
                        Ok(_) => continue,
                        Err(RecvError::Lagged(missed)) => {
                            ("events.lagged", json!({ "missed": missed }))
                        }
                        Err(RecvError::Closed) => break,
                    },
                    _ = closed.cancelled() => break,
                };
                let msg = Message::Event {
                    id: id.clone(),
                    event: event.into(),
                    data,
                };
                if out.send(msg).await.is_err() {
                    break;
                }
            }
        });
        Ok(None)
    }
}

/// The event that carries speech audio (`audio.output = "socket"`).
const AUDIO: &str = "speech.audio";

/// The next chunk of audio, if this subscriber asked for it; otherwise
/// never.
async fn recv(audio: &mut Option<mpsc::Receiver<Pcm>>) -> Option<Pcm> {
    match audio {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// `speech.audio`'s data: 16-bit little-endian PCM, base64.
fn audio_data(pcm: &Pcm) -> Value {
    let bytes: Vec<u8> = to_i16(&pcm.samples).flat_map(i16::to_le_bytes).collect();
    json!({
        "rate": pcm.rate,
        "channels": 1,
        "format": "s16le",
        "samples": pcm.samples.len(),
        "pcm": base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}
