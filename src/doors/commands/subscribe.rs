//! `subscribe`: stream daemon events on this connection until it closes.

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::protocol::Message;
use super::Context;
use super::{Outcome, Peer};

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
    pub async fn apply(self, ctx: &Context, peer: &Peer, id: &Value) -> Outcome {
        let mut rx = ctx.assistant.events.subscribe();
        let reply = Message::ok(id.clone(), json!({ "subscribed": self.events }));
        if peer.out.send(reply).await.is_err() {
            return Ok(None);
        }
        let out = peer.out.clone();
        let closed = peer.closed.clone();
        let id = id.clone();
        tokio::spawn(async move {
            loop {
                // Pending events first, so `daemon.shutdown` (published
                // before the connection closes) still goes out.
                let event = tokio::select! {
                    biased;
                    event = rx.recv() => event,
                    _ = closed.cancelled() => break,
                };
                let msg = match event {
                    Ok(event) if self.wants(&event.event) => Message::Event {
                        id: id.clone(),
                        event: event.event,
                        data: event.data,
                    },
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => Message::Event {
                        id: id.clone(),
                        event: "events.lagged".into(),
                        data: json!({ "missed": missed }),
                    },
                    Err(RecvError::Closed) => break,
                };
                if out.send(msg).await.is_err() {
                    break;
                }
            }
        });
        Ok(None)
    }
}
