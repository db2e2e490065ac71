//! The daemon's voice: [`Speaker`], the cheap handle to the speech thread
//! (`thread`). Utterances are opened, written as text arrives (an
//! [`Utterance`], or by id for the socket's streaming `say`) and spoken one
//! after another. [`Speaker::stop`] is the one cancel API (`voxd stop` now,
//! barge-in later): it drops the audio not yet played, the chunks not yet
//! synthesised and every queued utterance.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use serde::Serialize;
use tokio::sync::oneshot;

use super::split::Splitter;
use super::thread::{self, Job, Task};
use super::{Hold, SpeakError};
use crate::audio::Interrupter;
use crate::config::Config;
use crate::events::Events;
use crate::metrics::Pipeline;

/// How one utterance is to be spoken.
#[derive(Debug, Clone, Default)]
pub struct SayOptions {
    /// A voice (model id or path); empty means `tts.voice`, then `models.tts`.
    pub voice: String,
    /// Write this utterance to a WAV file instead of the daemon's output.
    pub out: Option<PathBuf>,
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

pub(super) struct Shared {
    pub(super) epoch: AtomicU64,
    /// Utterances queued or being spoken; a held one counts once released.
    pub(super) active: AtomicUsize,
    pub(super) interrupter: Mutex<Option<Interrupter>>,
    next_id: AtomicU64,
    /// Utterances opened over the socket and still receiving text.
    open: Mutex<HashMap<u64, Utterance>>,
    /// The voice loaded, if any.
    pub(super) voice: Mutex<Option<PathBuf>>,
}

/// The daemon's voice: a handle to the speech thread. Cheap to clone.
#[derive(Clone)]
pub struct Speaker {
    jobs: mpsc::Sender<Task>,
    shared: Arc<Shared>,
    max_text_bytes: usize,
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
}

impl Utterance {
    pub fn id(&self) -> u64 {
        self.id
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
            open: Mutex::new(HashMap::new()),
            voice: Mutex::new(None),
        });
        thread::spawn(config.clone(), events, metrics, shared.clone(), rx);
        Speaker {
            jobs,
            shared,
            max_text_bytes: config.tts.max_text_bytes,
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
        // A held utterance is silent: the listener's echo gate must stay
        // open while the question it answers is still being heard.
        let audible = options.hold.is_none();
        if audible {
            self.shared.active.fetch_add(1, Ordering::SeqCst);
        }
        let job = Job {
            id,
            epoch: self.shared.epoch.load(Ordering::SeqCst),
            options,
            chunks: chunks_rx,
            done: done_tx,
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

    /// Opens an utterance that later calls extend by id (the socket's
    /// streaming `say`).
    pub fn open_stream(&self, options: SayOptions) -> Result<u64, SpeakError> {
        let utterance = self.open(options)?;
        let id = utterance.id;
        self.lock_open().insert(id, utterance);
        Ok(id)
    }

    /// Adds text to an open streaming utterance.
    pub fn append(&self, id: u64, text: &str) -> Result<(), SpeakError> {
        let mut open = self.lock_open();
        let utterance = open.get_mut(&id).ok_or(SpeakError::NoUtterance(id))?;
        let result = utterance.push(text);
        if result.is_err() {
            open.remove(&id); // too long: end it with what it has
        }
        result
    }

    /// Ends an open streaming utterance and waits until it has been spoken.
    pub async fn close(&self, id: u64) -> Result<SayOutcome, SpeakError> {
        let utterance = self
            .lock_open()
            .remove(&id)
            .ok_or(SpeakError::NoUtterance(id))?;
        utterance.finish().await
    }

    /// Ends an open streaming utterance without waiting (its client left).
    pub fn abandon(&self, id: u64) {
        self.lock_open().remove(&id);
    }

    fn lock_open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Utterance>> {
        self.shared.open.lock().unwrap_or_else(|e| e.into_inner())
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
        self.lock_open().clear();
        self.shared.active.load(Ordering::SeqCst) > 0
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
