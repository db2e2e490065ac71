//! The playback queue: utterances are spoken one after another on one
//! dedicated speech thread, which synthesises each chunk as soon as the
//! splitter completes it and hands the audio to the sink while the next
//! chunk is synthesised, at most `tts.lookahead_ms` of audio ahead of a
//! sound device's playback. [`Speaker::stop`] is the one cancel API (`voxd
//! stop` now, barge-in later): it drops the audio not yet played, the
//! chunks not yet synthesised and every queued utterance.
//!
//! An utterance may be *held* ([`hold`]): it is synthesised as usual, but
//! nothing of it plays until its [`Gate`] confirms it, and it is dropped
//! unheard if the gate withdraws it (the voice loop answers a question
//! while it waits to learn whether the speaker has finished).
//!
//! Events: `speech.started`, `speech.chunk` (a chunk's audio is queued for
//! playback), `speech.finished`, `speech.interrupted`, `speech.failed`,
//! `speech.withdrawn` (a held utterance dropped unheard).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio::sync::{oneshot, watch};

use super::piper::{PiperVoice, Settings};
use super::split::Splitter;
use super::{voice_path, SpeakError, Tts};
use crate::audio::{self, Interrupter, Sink, SinkOptions, WavSink};
use crate::config::Config;
use crate::config::{AudioConfig, ModelsConfig, OnnxConfig, TtsConfig};
use crate::events::{Event, Events};
use crate::metrics::Pipeline;

/// The longest a held utterance waits for its verdict before it is
/// dropped (a gate is decided within a VAD hangover; this bounds a bug).
const HOLD_LIMIT: Duration = Duration::from_secs(30);

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

/// Whether a held utterance may be heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pending,
    Confirmed,
    Withdrawn,
}

/// Decides a held utterance. Dropping it undecided withdraws it.
#[derive(Debug)]
pub struct Gate(watch::Sender<Verdict>);

/// The utterance's side of a [`Gate`].
#[derive(Debug, Clone)]
pub struct Hold(watch::Receiver<Verdict>);

/// A gate and the hold it decides.
pub fn hold() -> (Gate, Hold) {
    let (tx, rx) = watch::channel(Verdict::Pending);
    (Gate(tx), Hold(rx))
}

impl Gate {
    pub fn confirm(self) {
        let _ = self.0.send(Verdict::Confirmed);
    }

    pub fn withdraw(self) {
        let _ = self.0.send(Verdict::Withdrawn);
    }
}

impl Hold {
    /// The verdict so far (an undecided gate that is gone withdrew).
    pub fn verdict(&self) -> Verdict {
        let verdict = *self.0.borrow();
        match verdict {
            Verdict::Pending if self.0.has_changed().is_err() => Verdict::Withdrawn,
            v => v,
        }
    }

    /// Waits for the verdict.
    pub async fn decided(&self) -> Verdict {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|v| *v != Verdict::Pending).await;
        self.verdict()
    }
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

/// What the speech thread is asked to do.
enum Task {
    Say(Job),
    /// Load the default voice now, ahead of the reply that will need it.
    Warm,
}

struct Job {
    id: u64,
    epoch: u64,
    options: SayOptions,
    chunks: mpsc::Receiver<String>,
    done: oneshot::Sender<Result<SayOutcome, SpeakError>>,
}

struct Shared {
    epoch: AtomicU64,
    /// Utterances queued or being spoken; a held one counts once released.
    active: AtomicUsize,
    interrupter: Mutex<Option<Interrupter>>,
    next_id: AtomicU64,
    /// Utterances opened over the socket and still receiving text.
    open: Mutex<HashMap<u64, Utterance>>,
    /// The voice loaded, if any.
    voice: Mutex<Option<PathBuf>>,
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
        let max_text_bytes = config.tts.max_text_bytes;
        let config = config.clone();
        let thread_shared = shared.clone();
        // Built on the thread: sound-device streams may not leave it.
        let thread = move || {
            SpeechThread {
                tts: config.tts,
                onnx: config.onnx,
                models: config.models,
                audio: config.audio,
                events,
                metrics,
                shared: thread_shared,
                voice: None,
                sink: None,
            }
            .run(rx)
        };
        std::thread::Builder::new()
            .name("voxd-speech".into())
            .spawn(thread)
            .expect("cannot start the speech thread");
        Speaker {
            jobs,
            shared,
            max_text_bytes,
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

/// State owned by the speech thread.
struct SpeechThread {
    tts: TtsConfig,
    onnx: OnnxConfig,
    models: ModelsConfig,
    audio: AudioConfig,
    events: Events,
    metrics: Pipeline,
    shared: Arc<Shared>,
    /// The loaded voice and the path it came from.
    voice: Option<(PathBuf, PiperVoice)>,
    /// The daemon's own output, opened at first use.
    sink: Option<Box<dyn Sink>>,
}

impl SpeechThread {
    fn run(mut self, tasks: mpsc::Receiver<Task>) {
        while let Ok(task) = tasks.recv() {
            let job = match task {
                Task::Say(job) => job,
                Task::Warm => {
                    if let Err(e) = self.load_voice("") {
                        // The utterance that needs it reports it.
                        tracing::debug!(error = %e, "the voice could not be warmed");
                    }
                    continue;
                }
            };
            let id = job.id;
            let mut audible = job.options.hold.is_none();
            let result = self.speak(job.id, job.epoch, &job.options, &job.chunks, &mut audible);
            match &result {
                Ok(outcome) if outcome.withdrawn => {
                    self.publish("speech.withdrawn", json!({ "utterance": id }))
                }
                Ok(outcome) if outcome.interrupted => self.publish(
                    "speech.interrupted",
                    json!({ "utterance": id, "chunks": outcome.chunks }),
                ),
                Ok(outcome) => self.publish(
                    "speech.finished",
                    json!({
                        "utterance": id,
                        "chunks": outcome.chunks,
                        "audio_ms": ms(outcome.samples, outcome.sample_rate),
                    }),
                ),
                Err(e) => {
                    tracing::warn!(utterance = id, error = %e, "speech failed");
                    self.publish(
                        "speech.failed",
                        json!({ "utterance": id, "error": e.to_string() }),
                    );
                }
            }
            if audible {
                self.shared.active.fetch_sub(1, Ordering::SeqCst);
            }
            let _ = job.done.send(result);
        }
    }

    fn publish(&self, name: &str, data: serde_json::Value) {
        self.events.publish(Event::new(name, data));
    }

    fn cancelled(shared: &Shared, epoch: u64) -> bool {
        shared.epoch.load(Ordering::SeqCst) != epoch
    }

    fn speak(
        &mut self,
        id: u64,
        epoch: u64,
        options: &SayOptions,
        chunks: &mpsc::Receiver<String>,
        audible: &mut bool,
    ) -> Result<SayOutcome, SpeakError> {
        let mut outcome = SayOutcome {
            utterance: id,
            chunks: 0,
            samples: 0,
            sample_rate: 0,
            interrupted: true,
            withdrawn: false,
        };
        let shared = self.shared.clone();
        if Self::cancelled(&shared, epoch) {
            return Ok(outcome); // stopped while queued
        }
        let begun = Instant::now();
        self.load_voice(&options.voice)?;
        let mut file_sink = match &options.out {
            Some(path) => Some(WavSink::create(path)?),
            None => None,
        };
        if file_sink.is_none() && self.sink.is_none() {
            let sink = audio::open_sink(
                &self.audio.output,
                &SinkOptions {
                    device: &self.audio.device,
                    file: &self.audio.file,
                    events: &self.events,
                },
            )?;
            *self
                .shared
                .interrupter
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(sink.interrupter());
            self.sink = Some(sink);
        }
        let (voice_path, voice) = self.voice.as_mut().expect("loaded above");
        let rate = voice.sample_rate();
        outcome.sample_rate = rate;
        let sink: &mut dyn Sink = match file_sink.as_mut() {
            Some(file) => file,
            None => self.sink.as_deref_mut().expect("opened above"),
        };
        let started_event = Event::new(
            "speech.started",
            json!({ "utterance": id, "voice": voice_path, "sample_rate": rate }),
        );
        // A held utterance starts when it is confirmed.
        let mut held = options.hold.as_ref().map(|hold| Release {
            hold,
            shared: &shared,
            events: &self.events,
            epoch,
            started: &started_event,
        });
        if held.is_none() {
            self.events.publish(started_event.clone());
        }
        let silence =
            vec![0.0; (rate as u64 * u64::from(self.tts.sentence_silence_ms) / 1000) as usize];
        let lookahead = Duration::from_millis(u64::from(self.tts.lookahead_ms));
        // A chunk already received behind the one being synthesised.
        let mut next: Option<String> = None;
        loop {
            let received = match next.take() {
                Some(text) => Ok(text),
                None => chunks.recv_timeout(Duration::from_millis(50)),
            };
            let text = match received {
                Ok(text) => text,
                Err(RecvTimeoutError::Timeout) if Self::cancelled(&shared, epoch) => {
                    return Ok(outcome)
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // Synthesise at most tts.lookahead_ms ahead of playback, so that
            // a stop (barge-in) throws little synthesis away.
            while sink.queued() > lookahead {
                if Self::cancelled(&shared, epoch) {
                    return Ok(outcome);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if Self::cancelled(&shared, epoch) {
                return Ok(outcome);
            }
            next = chunks.try_recv().ok();
            voice.backlog(next.is_some());
            let started = Instant::now();
            let mut samples = {
                let _span =
                    tracing::debug_span!("synth", utterance = id, chunk = outcome.chunks).entered();
                voice.synthesize(&text)?
            };
            let synth = started.elapsed();
            let synth_ms = synth.as_millis() as u64;
            if Self::cancelled(&shared, epoch) {
                return Ok(outcome);
            }
            let spoken = samples.len() as u64;
            self.metrics.observe_tts_chunk(
                synth,
                Duration::from_secs_f64(spoken as f64 / f64::from(rate)),
            );
            samples.extend_from_slice(&silence);
            let mut held_ms = None;
            if let Some(release) = held.take() {
                let waited = Instant::now();
                if !release.wait(&mut outcome, audible) {
                    return Ok(outcome);
                }
                held_ms = Some(waited.elapsed().as_millis() as u64);
            }
            sink.write(&samples, rate)?;
            if outcome.chunks == 0 {
                let held = Duration::from_millis(held_ms.unwrap_or(0));
                self.metrics
                    .observe_tts_first_chunk(begun.elapsed().saturating_sub(held));
            }
            outcome.chunks += 1;
            outcome.samples += samples.len() as u64;
            let mut chunk = json!({
                "utterance": id,
                "index": outcome.chunks - 1,
                "text": text,
                "samples": spoken,
                "sample_rate": rate,
                "audio_ms": ms(spoken, rate),
                "synth_ms": synth_ms,
            });
            if let Some(held_ms) = held_ms {
                chunk["held_ms"] = held_ms.into();
            }
            self.events.publish(Event::new("speech.chunk", chunk));
        }
        if let Some(release) = held {
            // Nothing was synthesised: still nothing is heard unconfirmed.
            if !release.wait(&mut outcome, audible) {
                return Ok(outcome);
            }
        }
        sink.drain(&|| Self::cancelled(&shared, epoch))?;
        if let Some(file) = file_sink {
            file.finalize()?;
        }
        outcome.interrupted = Self::cancelled(&shared, epoch);
        Ok(outcome)
    }

    fn load_voice(&mut self, voice: &str) -> Result<(), SpeakError> {
        let wanted = if voice.is_empty() {
            &self.tts.voice
        } else {
            voice
        };
        let path = voice_path(wanted, &self.models)?;
        if self.voice.as_ref().is_some_and(|(p, _)| *p == path) {
            return Ok(());
        }
        let started = Instant::now();
        let loaded = PiperVoice::load(
            &path,
            Settings::from_config(&self.tts),
            &self.onnx,
            self.tts.threads,
        )?;
        tracing::info!(voice = %path.display(), load_ms = started.elapsed().as_millis() as u64, "voice loaded");
        *self.shared.voice.lock().unwrap_or_else(|e| e.into_inner()) = Some(path.clone());
        self.voice = Some((path, loaded));
        Ok(())
    }
}

/// A held utterance waiting to be heard.
struct Release<'a> {
    hold: &'a Hold,
    shared: &'a Shared,
    events: &'a Events,
    epoch: u64,
    /// Its `speech.started`, published when it is released.
    started: &'a Event,
}

impl Release<'_> {
    /// Waits for the verdict. Confirmed: the utterance is now audible
    /// (counted in [`Speaker::active`], `speech.started` published);
    /// otherwise `outcome` says why not (withdrawn, or stopped).
    fn wait(&self, outcome: &mut SayOutcome, audible: &mut bool) -> bool {
        let _span = tracing::debug_span!("held", utterance = outcome.utterance).entered();
        let deadline = Instant::now() + HOLD_LIMIT;
        loop {
            match self.hold.verdict() {
                Verdict::Confirmed => break,
                Verdict::Withdrawn => {
                    outcome.withdrawn = true;
                    return false;
                }
                Verdict::Pending if SpeechThread::cancelled(self.shared, self.epoch) => {
                    return false
                }
                Verdict::Pending if Instant::now() > deadline => {
                    tracing::warn!(
                        utterance = outcome.utterance,
                        "a held utterance was never decided; dropped"
                    );
                    outcome.withdrawn = true;
                    return false;
                }
                Verdict::Pending => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        self.shared.active.fetch_add(1, Ordering::SeqCst);
        *audible = true;
        self.events.publish(self.started.clone());
        true
    }
}

fn ms(samples: u64, rate: u32) -> u64 {
    if rate == 0 {
        0
    } else {
        samples * 1000 / u64::from(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gate_confirms_or_withdraws_and_a_dropped_one_withdraws() {
        let (gate, hold) = super::hold();
        assert_eq!(hold.verdict(), Verdict::Pending);
        gate.confirm();
        assert_eq!(hold.verdict(), Verdict::Confirmed);
        assert_eq!(hold.decided().await, Verdict::Confirmed);

        let (gate, hold) = super::hold();
        gate.withdraw();
        assert_eq!(hold.decided().await, Verdict::Withdrawn);

        let (gate, hold) = super::hold();
        let waiting = tokio::spawn({
            let hold = hold.clone();
            async move { hold.decided().await }
        });
        drop(gate);
        assert_eq!(waiting.await.unwrap(), Verdict::Withdrawn);
        assert_eq!(hold.verdict(), Verdict::Withdrawn);
    }
}
