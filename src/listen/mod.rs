//! voxd's ear: the listening loop. Audio from a [`crate::audio::input`]
//! source is cut into 32 ms frames and goes through the stages, one module
//! each:
//!
//! - [`wake`]: openWakeWord wake words (80 ms steps), always running, even
//!   while voxd speaks (barge-in);
//! - [`phrase`]: wake phrases configured as text, matched in the
//!   transcripts of speech heard while asleep;
//! - [`vad`]: Silero VAD speech probability per frame;
//! - [`endpoint`]: speech segments from the probabilities (threshold,
//!   hysteresis, minimum speech, end-of-speech hangover);
//! - `run`: the small state machine (sleeping → armed by a wake word or a
//!   follow-up → utterance → sleeping) on the listening thread, with the
//!   echo gate;
//! - `transcribe`: the async task that sends each utterance to the
//!   [`Stt`] engine: partial transcripts about every `stt.partial_interval_ms`
//!   of speech, the final one when the utterance ends.
//!
//! [`Listener`] is the handle the doors (and the voice loop) hold:
//! start/stop/status, follow-ups, muting, the PCM feed of the socket
//! source, and [`Listener::heard`], the typed channel of what is heard
//! ([`Heard`]) that the voice loop follows.
//!
//! Events: `listen.started`, `listen.stopped`, `listen.device`,
//! `listen.error`, `wake.detected`, `speech.start`, `speech.end`,
//! `transcript.partial`, `transcript.final` (fields in docs/protocol.md).
//!
//! This module may touch: audio sources, ONNX Runtime (through
//! [`crate::onnx`]), the model store (read), the STT engine through the
//! [`Stt`] trait, the speaker's activity (read, for the echo gate), and the
//! event bus.

pub mod endpoint;
mod events;
mod heard;
pub mod phrase;
mod run;
mod transcribe;
pub mod vad;
pub mod wake;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::audio::input::{PcmChunk, PcmFeed};
use crate::audio::AudioError;
use crate::config::Config;
use crate::error::{ErrorKind, Kind};
use crate::events::Events;
use crate::models::{self, Manifest, Role, Store};
use crate::onnx::OnnxError;
use crate::speak::Speaker;
use crate::stt::Stt;
pub use events::ListenEvent;
pub use heard::Heard;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("no {role} model is installed (models.{role} = {wanted:?}); run `voxd models pull {}`", wanted.first().map(String::as_str).unwrap_or(""))]
    NoModel {
        role: &'static str,
        wanted: Vec<String>,
    },
    #[error(transparent)]
    Models(#[from] models::ModelsError),
    #[error("unknown wake word {word:?}: no {word}_v*.onnx in {}; known: {known}", dir.display())]
    UnknownWakeWord {
        word: String,
        dir: PathBuf,
        known: String,
    },
    #[error("listen.wake_words and listen.wake_phrases are both empty: at least one wake word or phrase is needed")]
    NoWakeWords,
    #[error("{0}")]
    Settings(String),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("the listening thread stopped unexpectedly")]
    Stopped,
}

impl Kind for ListenError {
    fn kind(&self) -> ErrorKind {
        match self {
            ListenError::NoModel { .. } => ErrorKind::NoModel,
            ListenError::UnknownWakeWord { .. }
            | ListenError::NoWakeWords
            | ListenError::Settings(_) => ErrorKind::InvalidParams,
            ListenError::Audio(_) => ErrorKind::BadAudio,
            _ => ErrorKind::EngineFailed,
        }
    }
}

/// Which source to listen to; `None` fields come from `[listen]`.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub input: Option<String>,
    pub device: Option<String>,
    pub file: Option<PathBuf>,
}

impl StartOptions {
    fn is_empty(&self) -> bool {
        self.input.is_none() && self.device.is_none() && self.file.is_none()
    }
}

/// Where the listening loop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not listening.
    #[default]
    Stopped,
    /// Waiting for a wake word.
    Sleeping,
    /// Woken (or a follow-up is open): waiting for speech.
    Armed,
    /// Hearing an utterance.
    Utterance,
}

/// What `listen status` reports.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ListenStatus {
    pub listening: bool,
    pub state: State,
    /// The source, e.g. `cpal: USB Mic` or `wav: /tmp/a.wav`.
    pub input: String,
    pub wake_words: Vec<String>,
    pub wake_phrases: Vec<String>,
    /// Muted by [`Listener::set_muted`].
    pub muted: bool,
    /// Seconds of audio heard since listening started.
    pub heard_secs: f64,
    pub wakes: u64,
    pub utterances: u64,
    /// Why listening stopped on its own, if it did.
    pub error: Option<String>,
}

/// What the caller and the listening thread share.
#[derive(Default)]
struct Shared {
    /// What is heard, for the voice loop.
    ear: heard::Ear,
    muted: AtomicBool,
    /// A follow-up window asked for and not yet opened by the loop.
    followup: Mutex<Option<Duration>>,
    status: Mutex<ListenStatus>,
}

impl Shared {
    fn status(&self) -> std::sync::MutexGuard<'_, ListenStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Running {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

struct Inner {
    config: Config,
    events: Events,
    stt: Arc<dyn Stt>,
    speaker: Speaker,
    runtime: tokio::runtime::Handle,
    feed: PcmFeed,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

/// The handle to the listening loop. Cheap to clone.
#[derive(Clone)]
pub struct Listener {
    inner: Arc<Inner>,
}

impl Listener {
    /// A listener that is not yet listening. Must be called inside a tokio
    /// runtime (transcription runs on it).
    pub fn new(config: &Config, events: Events, stt: Arc<dyn Stt>, speaker: Speaker) -> Listener {
        Listener {
            inner: Arc::new(Inner {
                config: config.clone(),
                events,
                stt,
                speaker,
                runtime: tokio::runtime::Handle::current(),
                feed: PcmFeed::default(),
                shared: Arc::default(),
                running: Mutex::new(None),
            }),
        }
    }

    /// Starts listening (loading the VAD and wake-word models and opening
    /// the source) and returns once it listens, or why it cannot. Already
    /// listening: with no options, nothing changes; with options, the
    /// listener restarts on the new source.
    pub async fn start(&self, options: StartOptions) -> Result<ListenStatus, ListenError> {
        if self.is_running() {
            if options.is_empty() {
                return Ok(self.status());
            }
            self.stop_and_wait().await;
        }
        let mut settings = run::Settings::from_config(&self.inner.config)?;
        if let Some(file) = options.file {
            // A file given without an input means the `wav` source.
            settings.input = "wav".into();
            settings.file = file;
        }
        if let Some(input) = options.input {
            settings.input = input;
        }
        if let Some(device) = options.device {
            settings.device = device;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (heard_tx, heard_rx) = tokio::sync::mpsc::unbounded_channel();
        self.inner.runtime.spawn(transcribe::run(
            heard_rx,
            transcribe::Transcriber {
                stt: self.inner.stt.clone(),
                events: self.inner.events.clone(),
                shared: self.inner.shared.clone(),
                partial_interval_ms: self.inner.config.stt.partial_interval_ms,
                phrases: settings.phrases.clone(),
            },
        ));
        let context = run::Context {
            settings,
            onnx: self.inner.config.onnx.clone(),
            events: self.inner.events.clone(),
            speaker: self.inner.speaker.clone(),
            feed: self.inner.feed.clone(),
            shared: self.inner.shared.clone(),
            stop: stop.clone(),
            heard: heard_tx,
        };
        let thread = std::thread::Builder::new()
            .name("voxd-listen".into())
            .spawn(move || run::listen(context, ready_tx))
            .map_err(|e| {
                ListenError::Settings(format!("cannot start the listening thread: {e}"))
            })?;
        match ready_rx.await {
            Ok(Ok(())) => {
                *self.lock_running() = Some(Running { stop, thread });
                Ok(self.status())
            }
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(ListenError::Stopped),
        }
    }

    /// Stops listening; an utterance being heard is dropped. Returns
    /// whether it was listening.
    pub async fn stop(&self) -> bool {
        self.stop_and_wait().await
    }

    async fn stop_and_wait(&self) -> bool {
        let running = self.lock_running().take();
        let Some(running) = running else {
            return false;
        };
        running.stop.store(true, Ordering::SeqCst);
        let joined = tokio::task::spawn_blocking(move || running.thread.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::warn!("the listening thread ended abnormally");
        }
        true
    }

    fn is_running(&self) -> bool {
        self.lock_running()
            .as_ref()
            .is_some_and(|r| !r.thread.is_finished())
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the listener hears from now on, as a lossless typed channel
    /// (the voice loop's input). Opening it again closes the earlier one.
    pub fn heard(&self) -> tokio::sync::mpsc::UnboundedReceiver<Heard> {
        self.inner.shared.ear.open()
    }

    /// Where the loop is, what it listens to and what it has heard.
    pub fn status(&self) -> ListenStatus {
        let mut status = self.inner.shared.status().clone();
        status.listening = self.is_running();
        if !status.listening {
            status.state = State::Stopped;
        }
        status.muted = self.is_muted();
        status
    }

    /// Lets the next utterance begin without a wake word if its speech
    /// starts within `window` (of audio heard) from now: for follow-up
    /// questions after an answer. Ignored while an utterance is being heard.
    pub fn open_followup(&self, window: Duration) {
        *self
            .inner
            .shared
            .followup
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(window);
    }

    /// The echo gate, by hand: while muted, wake words are still heard and
    /// published (`wake.detected`) but start nothing; no utterance starts,
    /// and one being heard is dropped. (`listen.gate_while_speaking` gates
    /// the same way while voxd speaks, except that a wake word then arms
    /// the listener: barge-in, the pipeline stops speech on `wake.detected`
    /// and the question that follows is heard once the gate opens.)
    pub fn set_muted(&self, muted: bool) {
        self.inner.shared.muted.store(muted, Ordering::SeqCst);
    }

    pub fn is_muted(&self) -> bool {
        self.inner.shared.muted.load(Ordering::SeqCst)
    }

    /// Queues a socket client's PCM for the `socket` source; returns the
    /// 16 kHz samples queued and not yet heard.
    pub fn feed(&self, chunk: PcmChunk) -> Result<usize, ListenError> {
        Ok(self.inner.feed.send(chunk)?)
    }

    /// Starts listening now if `listen.start` is set; failures are logged
    /// and published as `listen.error`.
    pub fn start_if_configured(&self) {
        if !self.inner.config.listen.start {
            return;
        }
        let listener = self.clone();
        self.inner.runtime.spawn(async move {
            if let Err(e) = listener.start(StartOptions::default()).await {
                tracing::error!(error = %e, "cannot start listening");
                listener.inner.events.publish(ListenEvent::Error {
                    utterance: None,
                    stage: None,
                    code: None,
                    error: e.to_string(),
                });
            }
        });
    }
}

/// The wake words installed (`models.wake`'s classifiers), for a client
/// that asks which it may detect.
pub fn installed_wake_words(config: &Config) -> Result<Vec<String>, ListenError> {
    Ok(wake::installed(&model_dir(config, Role::Wake)?))
}

/// A detector of wake words `words` (all installed ones when empty) for
/// audio other than the listener's (a Wyoming client's), with the
/// listener's threshold and refractory period. Loads the models: call it
/// off the async runtime.
pub fn wake_detector(config: &Config, words: &[String]) -> Result<wake::WakeWords, ListenError> {
    let dir = model_dir(config, Role::Wake)?;
    let all;
    let words = if words.is_empty() {
        all = wake::installed(&dir);
        &all
    } else {
        words
    };
    let l = &config.listen;
    wake::WakeWords::load(&config.onnx, &dir, words, run::wake_settings(l)?, l.threads)
}

/// The installed model directory for `role`.
fn model_dir(config: &Config, role: Role) -> Result<PathBuf, ListenError> {
    let store = Store::from_config(&config.models)?;
    let manifest = Manifest::load(&config.models)?;
    let (name, wanted) = match role {
        Role::Vad => ("vad", &config.models.vad),
        _ => ("wake", &config.models.wake),
    };
    models::resolve(role, &config.models, &manifest, &store)
        .map(|id| store.model_dir(&id))
        .ok_or_else(|| ListenError::NoModel {
            role: name,
            wanted: wanted.clone(),
        })
}
