//! The `socket` sink: speech goes to the socket clients that subscribed to
//! `speech.audio`, each through its own channel ([`Tap::subscribe`]), one
//! [`Pcm`] per synthesised chunk; a client plays or stores it itself.
//!
//! Audio does not ride the observers' bus: a subscriber's audio is its own
//! bounded queue, so a flood of it can neither push events out of the bus
//! nor be lost for another subscriber.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::{AudioError, Interrupter, Pcm, Sink, SinkOptions};

/// Chunks (sentences) a subscriber may fall behind by before it loses
/// audio: minutes of speech.
const QUEUE: usize = 256;

/// Speech audio for whoever subscribes to it; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Tap(Arc<Mutex<Vec<mpsc::Sender<Pcm>>>>);

impl Tap {
    /// A channel of every chunk written to the `socket` sink from now on,
    /// until the receiver is dropped.
    pub fn subscribe(&self) -> mpsc::Receiver<Pcm> {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.subscribers().push(tx);
        rx
    }

    fn subscribers(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::Sender<Pcm>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `pcm` to every subscriber; one that went away is forgotten,
    /// one that is `QUEUE` chunks behind loses this chunk.
    fn send(&self, pcm: &Pcm) {
        self.subscribers().retain(|tx| match tx.try_send(pcm.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("a speech.audio subscriber is {QUEUE} chunks behind; a chunk dropped for it");
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }
}

pub struct SocketSink {
    tap: Tap,
}

pub fn open(options: &SinkOptions) -> Result<Box<dyn Sink>, AudioError> {
    Ok(Box::new(SocketSink {
        tap: options.tap.clone(),
    }))
}

impl Sink for SocketSink {
    fn write(&mut self, samples: &[f32], rate: u32) -> Result<(), AudioError> {
        self.tap.send(&Pcm {
            samples: samples.to_vec(),
            rate,
        });
        Ok(())
    }

    fn drain(&mut self, _: &dyn Fn() -> bool) -> Result<(), AudioError> {
        Ok(())
    }

    fn interrupter(&self) -> Interrupter {
        Arc::new(|| {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_subscriber_gets_every_chunk_and_a_gone_one_is_forgotten() {
        let tap = Tap::default();
        let mut first = tap.subscribe();
        let second = tap.subscribe();
        drop(second);
        let mut sink = SocketSink { tap: tap.clone() };
        sink.write(&[0.5, -0.5], 22050).unwrap();
        assert_eq!(
            first.try_recv().unwrap(),
            Pcm {
                samples: vec![0.5, -0.5],
                rate: 22050
            }
        );
        assert_eq!(tap.subscribers().len(), 1);
    }

    #[test]
    fn a_subscriber_that_falls_behind_loses_only_its_own_audio() {
        let tap = Tap::default();
        let mut slow = tap.subscribe();
        let mut fast = tap.subscribe();
        let mut sink = SocketSink { tap };
        for i in 0..QUEUE + 10 {
            sink.write(&[0.0], i as u32).unwrap();
            assert_eq!(fast.try_recv().unwrap().rate, i as u32);
        }
        let kept = std::iter::from_fn(|| slow.try_recv().ok()).count();
        assert_eq!(kept, QUEUE);
    }
}
