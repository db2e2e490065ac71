//! The daemon's event bus: every subsystem publishes [`Event`]s here and the
//! control socket (and later D-Bus) streams them to subscribers.

use serde::Serialize;
use tokio::sync::broadcast;

/// Something that happened inside the daemon, e.g. `engine.state`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Dotted event name: `<subsystem>.<what>`.
    pub event: String,
    /// Event-specific fields.
    pub data: serde_json::Value,
}

impl Event {
    pub fn new(event: impl Into<String>, data: serde_json::Value) -> Event {
        Event {
            event: event.into(),
            data,
        }
    }
}

/// Publishing side of the bus; cheap to clone.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Events {
    /// A bus that keeps up to `capacity` events for slow subscribers; a
    /// subscriber that falls further behind is told how many it missed.
    pub fn new(capacity: usize) -> Events {
        let (tx, _) = broadcast::channel(capacity);
        Events { tx }
    }

    /// Publishes an event; having no subscribers is not an error.
    pub fn publish(&self, event: Event) {
        tracing::debug!(event = %event.event, data = %event.data, "event");
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
