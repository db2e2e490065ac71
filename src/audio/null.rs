//! The `null` sink: speech is synthesised and discarded (benchmarks, tests
//! of the queue itself).

use std::sync::Arc;

use super::{AudioError, Interrupter, Sink, SinkOptions};

pub struct NullSink;

pub fn open(_: &SinkOptions) -> Result<Box<dyn Sink>, AudioError> {
    Ok(Box::new(NullSink))
}

impl Sink for NullSink {
    fn write(&mut self, _: &[f32], _: u32) -> Result<(), AudioError> {
        Ok(())
    }

    fn drain(&mut self, _: &dyn Fn() -> bool) -> Result<(), AudioError> {
        Ok(())
    }

    fn interrupter(&self) -> Interrupter {
        Arc::new(|| {})
    }
}
