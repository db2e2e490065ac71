//! Where an utterance's audio goes ([`Target`]): the daemon's own output
//! (`audio.output`: a device, a file, socket subscribers), a WAV file, or
//! the caller's own channel of PCM chunks, for a door that streams speech
//! to its client (an HTTP response, a Wyoming connection).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::audio::{AudioError, Interrupter, Pcm, Sink};

/// Where an utterance is heard.
#[derive(Debug, Clone, Default)]
pub enum Target {
    /// The daemon's own output, where [`super::Speaker::stop`] interrupts it.
    #[default]
    Output,
    /// A WAV file (an absolute path), written whole.
    Wav(PathBuf),
    /// The caller's channel: each sentence's audio as it is synthesised,
    /// at the voice's own rate. Dropping the receiver stops the utterance.
    Channel(mpsc::UnboundedSender<Pcm>),
}

impl Target {
    /// The caller of a [`Target::Channel`] went away: nobody hears it.
    pub(super) fn abandoned(&self) -> bool {
        matches!(self, Target::Channel(tx) if tx.is_closed())
    }
}

/// The sink behind [`Target::Channel`].
pub(super) struct ChannelSink(pub(super) mpsc::UnboundedSender<Pcm>);

impl Sink for ChannelSink {
    fn write(&mut self, samples: &[f32], rate: u32) -> Result<(), AudioError> {
        // A closed channel is a caller that left: the utterance stops at
        // its next check, not with an error.
        let _ = self.0.send(Pcm {
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
