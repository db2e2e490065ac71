//! The observers' bus: subsystems publish what happened here, and the doors
//! (socket `subscribe`, D-Bus signals) stream it to whoever watches.
//!
//! Each subsystem declares its own events as a typed enum next to the code
//! that publishes them (`engine::EngineEvent`, `speak::SpeechEvent`,
//! `listen::ListenEvent`, …) and implements [`Observed`] for it: the wire
//! name (`<subsystem>.<what>`) and, through `serde`, the data. The bus
//! carries them as [`Event`]s without knowing any of them, so that this
//! foundation imports no layer above it; a door reads an event back as its
//! type ([`Event::get`]) or serialises its data, and only the doors know
//! JSON. One enum for the whole daemon would have to import every layer
//! that publishes (the assistant's reply included), or copy their types.
//!
//! The bus is for observers only. Nothing inside the daemon depends on
//! seeing an event: control flow has its own typed channels (the listener's
//! `Heard`, an utterance's first audio, speech audio to socket subscribers),
//! so a subscriber that falls behind (and is told how many it missed) costs
//! nothing but its own view. See `docs/architecture.md`.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use tokio::sync::broadcast;

/// An event a subsystem publishes: its wire name and (as `Serialize`) its
/// data.
pub trait Observed: erased_serde::Serialize + Any + Debug + Send + Sync {
    /// The dotted wire name: `<subsystem>.<what>`.
    fn name(&self) -> &'static str;
}

erased_serde::serialize_trait_object!(Observed);

/// Something that happened inside the daemon: one subsystem's typed event,
/// cheap to clone for every subscriber.
#[derive(Debug, Clone)]
pub struct Event(Arc<dyn Observed>);

impl Event {
    /// The wire name, e.g. `engine.state`.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The event's data, for a door to serialise.
    pub fn data(&self) -> &dyn Observed {
        &*self.0
    }

    /// The event as its subsystem's type, if it is one of `T`.
    pub fn get<T: Observed>(&self) -> Option<&T> {
        let any: &dyn Any = &*self.0;
        any.downcast_ref()
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
    pub fn publish(&self, event: impl Observed) {
        tracing::debug!(event = event.name(), data = ?event, "event");
        let _ = self.tx.send(Event(Arc::new(event)));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    #[derive(Debug, Serialize)]
    #[serde(untagged)]
    enum Probe {
        Seen { what: &'static str },
    }

    impl Observed for Probe {
        fn name(&self) -> &'static str {
            "probe.seen"
        }
    }

    #[test]
    fn an_event_keeps_its_type_and_its_wire_form() {
        let events = Events::new(4);
        let mut rx = events.subscribe();
        events.publish(Probe::Seen { what: "it" });
        let event = rx.try_recv().unwrap();
        assert_eq!(event.name(), "probe.seen");
        assert!(matches!(
            event.get::<Probe>(),
            Some(Probe::Seen { what: "it" })
        ));
        assert_eq!(
            serde_json::to_value(event.data()).unwrap(),
            serde_json::json!({ "what": "it" })
        );
    }
}
