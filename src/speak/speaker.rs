//! The daemon's voice: [`Speaker`], the cheap handle to the speech thread
//! (`thread`). Utterances are opened, written as text arrives (an
//! [`Utterance`]) and spoken one after another, each to its [`Target`]. [`Speaker::stop`] is the one cancel API (`voxd stop` now,
//! barge-in later): it drops the audio not yet played, the chunks not yet
//! synthesised and every queued utterance.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::oneshot;

use super::split::Splitter;
use super::thread::{self, Job, Task};
use super::{Hold, SpeakError, Target};
use crate::audio::{Interrupter, Pcm, Tap};
use crate::config::Config;
use crate::events::Events;
use crate::metrics::Pipeline;

/// How one utterance is to be spoken.
#[derive(Debug, Clone, Default)]
pub struct SayOptions {
    /// A voice (model id or path); empty means `tts.voice`, then `models.tts`.
    pub voice: String,
    /// Where it is heard: the daemon's output (default), a WAV file, or
    /// the caller's channel.
    pub target: Target,
    /// Play nothing until this is confirmed.
    pub hold: Option<Hold>,
}

/// What happened to an utterance.
#[derive(Debug, Clone, Serialize)]
pub struct SayOutcome {
    pub utterance: u64,
    /// Chunks (sentences) synthesised and queued.
    pub chunks: usize,
    /// Audio produced, in samples at `sample_rate`, silences included.
    pub samples: u64,
    pub sample_rate: u32,
    /// Stopped before the end.
    pub interrupted: bool,
    /// Held, then withdrawn: nothing was heard.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
}

/// When an utterance's first chunk (sentence) was queued for playback.
#[derive(Debug, Clone, Copy)]
pub struct FirstAudio {
    pub at: Instant,
    /// How long that chunk took to synthesise.
    pub synth_ms: u64,
    /// How long a held utterance waited for its verdict first.
    pub held_ms: Option<u64>,
}

pub(super) struct Shared {
    pub(super) epoch: AtomicU64,
    /// Utterances queued or being spoken; a held one counts once released.
    pub(super) active: AtomicUsize,
    pub(super) interrupter: Mutex<Option<Interrupter>>,
    next_id: AtomicU64,
    /// The voice loaded, if any.
    pub(super) voice: Mutex<Option<PathBuf>>,
}

/// The daemon's voice: a handle to the speech thread. Cheap to clone.
#[derive(Clone)]
pub struct Speaker {
    jobs: mpsc::Sender<Task>,
    shared: Arc<Shared>,
    max_text_bytes: usize,
    /// Speech audio for socket subscribers (`audio.output = "socket"`).
    tap: Tap,
}

/// An utterance being written: push text as it arrives, then finish.
/// Dropping it without `finish` ends the text (what was pushed is spoken).
pub struct Utterance {
    id: u64,
    splitter: Splitter,
    chunks: mpsc::Sender<String>,
    bytes: usize,
    max_bytes: usize,
    done: oneshot::Receiver<Result<SayOutcome, SpeakError>>,
    first: Option<oneshot::Receiver<FirstAudio>>,
    /// The speaker's epoch when it was opened: [`Speaker::stop`] moves it on.
    epoch: u64,
    shared: Arc<Shared>,
}

impl Utterance {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether [`Speaker::stop`] stopped it: text pushed now is dropped.
    pub fn stopped(&self) -> bool {
        self.shared.epoch.load(Ordering::SeqCst) != self.epoch
    }

    /// Adds text (e.g. one LLM token); complete sentences go to synthesis now.
    pub fn push(&mut self, text: &str) -> Result<(), SpeakError> {
        self.bytes += text.len();
        if self.bytes > self.max_bytes {
            return Err(SpeakError::TooLong {
                bytes: self.bytes,
                max: self.max_bytes,
            });
        }
        for chunk in self.splitter.push(text) {
            // A closed channel means the utterance was stopped: drop the text.
            let _ = self.chunks.send(chunk);
        }
        Ok(())
    }

    /// When its first chunk's audio is queued for playback: `None` if it
    /// ends (or is stopped) with none. Only the first call gets it.
    pub fn first_audio(&mut self) -> impl Future<Output = Option<FirstAudio>> + Send + 'static {
        let first = self.first.take();
        async move { first?.await.ok() }
    }

    /// Ends the text and waits until it has been spoken (or stopped).
    pub async fn finish(mut self) -> Result<SayOutcome, SpeakError> {
        for chunk in self.splitter.finish() {
            let _ = self.chunks.send(chunk);
        }
        drop(self.chunks);
        self.done.await.map_err(|_| SpeakError::Stopped)?
    }
}

impl Speaker {
    /// Starts the speech thread. Nothing is loaded until the first utterance
    /// (or [`Speaker::warm`]).
    pub fn new(config: &Config, events: Events, metrics: Pipeline) -> Speaker {
        let (jobs, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            interrupter: Mutex::new(None),
            next_id: AtomicU64::new(1),
            voice: Mutex::new(None),
        });
        let tap = Tap::default();
        thread::spawn(
            config.clone(),
            events,
            metrics,
            tap.clone(),
            shared.clone(),
            rx,
        );
        Speaker {
            jobs,
            shared,
            max_text_bytes: config.tts.max_text_bytes,
            tap,
        }
    }

    /// Loads the default voice now, if it is not loaded yet, on the speech
    /// thread (after what is queued there): a reply is coming, and its
    /// first sentence should not wait for the voice (~0.4 s on a small
    /// board, which would also compete with the model for the CPU).
    pub fn warm(&self) {
        let _ = self.jobs.send(Task::Warm);
    }

    /// Queues a new utterance and returns its writer.
    pub fn open(&self, options: SayOptions) -> Result<Utterance, SpeakError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (chunks, chunks_rx) = mpsc::channel();
        let (done_tx, done) = oneshot::channel();
        let (first_tx, first) = oneshot::channel();
        // A held utterance is silent: the listener's echo gate must stay
        // open while the question it answers is still being heard.
        let audible = options.hold.is_none();
        if audible {
            self.shared.active.fetch_add(1, Ordering::SeqCst);
        }
        let epoch = self.shared.epoch.load(Ordering::SeqCst);
        let job = Job {
            id,
            epoch,
            options,
            chunks: chunks_rx,
            done: done_tx,
            first: Some(first_tx),
        };
        if self.jobs.send(Task::Say(job)).is_err() {
            if audible {
                self.shared.active.fetch_sub(1, Ordering::SeqCst);
            }
            return Err(SpeakError::Stopped);
        }
        Ok(Utterance {
            id,
            splitter: Splitter::new(),
            chunks,
            bytes: 0,
            max_bytes: self.max_text_bytes,
            done,
            first: Some(first),
            epoch,
            shared: self.shared.clone(),
        })
    }

    /// Speaks a whole text and waits until it has been spoken.
    pub async fn say(&self, text: &str, options: SayOptions) -> Result<SayOutcome, SpeakError> {
        if text.len() > self.max_text_bytes {
            return Err(SpeakError::TooLong {
                bytes: text.len(),
                max: self.max_text_bytes,
            });
        }
        if super::split::split(text).is_empty() {
            return Err(SpeakError::NothingToSay);
        }
        let mut utterance = self.open(options)?;
        utterance.push(text)?;
        utterance.finish().await
    }

    /// Stops speaking now: the audio being played (within one device
    /// buffer), the chunks not yet synthesised and every queued utterance.
    /// Returns whether anything was queued or speaking.
    pub fn stop(&self) -> bool {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        let interrupter = self
            .shared
            .interrupter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(interrupt) = interrupter {
            interrupt();
        }
        self.shared.active.load(Ordering::SeqCst) > 0
    }

    /// The audio written to the `socket` output from now on, one [`Pcm`]
    /// per chunk, until the receiver is dropped.
    pub fn audio(&self) -> tokio::sync::mpsc::Receiver<Pcm> {
        self.tap.subscribe()
    }

    /// Utterances queued or being spoken (a held one once released).
    pub fn active(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// The voice loaded (its model directory or file), if any yet.
    pub fn voice(&self) -> Option<PathBuf> {
        self.shared
            .voice
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
