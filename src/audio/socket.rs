//! The `socket` sink: speech goes to socket clients as `speech.audio`
//! events (`{"rate", "channels": 1, "format": "s16le", "pcm": base64}`), one
//! per synthesised chunk; a client plays or stores them itself.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::json;

use super::{AudioError, Interrupter, Sink, SinkOptions};
use crate::events::{Event, Events};

pub struct SocketSink {
    events: Events,
}

pub fn open(options: &SinkOptions) -> Result<Box<dyn Sink>, AudioError> {
    Ok(Box::new(SocketSink {
        events: options.events.clone(),
    }))
}

impl Sink for SocketSink {
    fn write(&mut self, samples: &[f32], rate: u32) -> Result<(), AudioError> {
        let bytes: Vec<u8> = super::to_i16(samples).flat_map(i16::to_le_bytes).collect();
        self.events.publish(Event::new(
            "speech.audio",
            json!({
                "rate": rate,
                "channels": 1,
                "format": "s16le",
                "samples": samples.len(),
                "pcm": base64::engine::general_purpose::STANDARD.encode(bytes),
            }),
        ));
        Ok(())
    }

    fn drain(&mut self, _: &dyn Fn() -> bool) -> Result<(), AudioError> {
        Ok(())
    }

    fn interrupter(&self) -> Interrupter {
        Arc::new(|| {})
    }
}
