//! The playback queue: utterances are spoken one after another on one
//! dedicated speech thread, which synthesises each chunk as soon as the
//! splitter completes it and hands the audio to the sink while the next
//! chunk is synthesised. [`Speaker::stop`] is the one cancel API (`voxd
//! stop` now, barge-in later): it drops the audio not yet played, the
//! chunks not yet synthesised and every queued utterance.
//!
//! Events: `speech.started`, `speech.chunk` (a chunk's audio is queued for
//! playback), `speech.finished`, `speech.interrupted`, `speech.failed`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio::sync::oneshot;

use super::piper::{PiperVoice, Settings};
use super::split::Splitter;
use super::{voice_path, SpeakError, Tts};
use crate::audio::{self, Interrupter, Sink, SinkOptions, WavSink};
use crate::config::Config;
use crate::config::{AudioConfig, ModelsConfig, OnnxConfig, TtsConfig};
use crate::events::{Event, Events};
use crate::metrics::Pipeline;

/// How one utterance is to be spoken.
#[derive(Debug, Clone, Default)]
pub struct SayOptions {
    /// A voice (model id or path); empty means `tts.voice`, then `models.tts`.
    pub voice: String,
    /// Write this utterance to a WAV file instead of the daemon's output.
    pub out: Option<PathBuf>,
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
    /// Utterances queued or being spoken.
    active: AtomicUsize,
    interrupter: Mutex<Option<Interrupter>>,
    next_id: AtomicU64,
    /// Utterances opened over the socket and still receiving text.
    open: Mutex<HashMap<u64, Utterance>>,
}

/// The daemon's voice: a handle to the speech thread. Cheap to clone.
#[derive(Clone)]
pub struct Speaker {
    jobs: mpsc::Sender<Job>,
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
    /// Starts the speech thread. Nothing is loaded until the first utterance.
    pub fn new(config: &Config, events: Events, metrics: Pipeline) -> Speaker {
        let (jobs, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            interrupter: Mutex::new(None),
            next_id: AtomicU64::new(1),
            open: Mutex::new(HashMap::new()),
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

    /// Queues a new utterance and returns its writer.
    pub fn open(&self, options: SayOptions) -> Result<Utterance, SpeakError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (chunks, chunks_rx) = mpsc::channel();
        let (done_tx, done) = oneshot::channel();
        self.shared.active.fetch_add(1, Ordering::SeqCst);
        let job = Job {
            id,
            epoch: self.shared.epoch.load(Ordering::SeqCst),
            options,
            chunks: chunks_rx,
            done: done_tx,
        };
        if self.jobs.send(job).is_err() {
            self.shared.active.fetch_sub(1, Ordering::SeqCst);
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

    /// Utterances queued or being spoken.
    pub fn active(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
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
    fn run(mut self, jobs: mpsc::Receiver<Job>) {
        while let Ok(job) = jobs.recv() {
            let id = job.id;
            let result = self.speak(job.id, job.epoch, &job.options, &job.chunks);
            match &result {
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
            self.shared.active.fetch_sub(1, Ordering::SeqCst);
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
    ) -> Result<SayOutcome, SpeakError> {
        let mut outcome = SayOutcome {
            utterance: id,
            chunks: 0,
            samples: 0,
            sample_rate: 0,
            interrupted: true,
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
        self.events.publish(Event::new(
            "speech.started",
            json!({ "utterance": id, "voice": voice_path, "sample_rate": rate }),
        ));
        let silence =
            vec![0.0; (rate as u64 * u64::from(self.tts.sentence_silence_ms) / 1000) as usize];
        loop {
            let text = match chunks.recv_timeout(Duration::from_millis(50)) {
                Ok(text) => text,
                Err(RecvTimeoutError::Timeout) if Self::cancelled(&shared, epoch) => {
                    return Ok(outcome)
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if Self::cancelled(&shared, epoch) {
                return Ok(outcome);
            }
            let started = Instant::now();
            let mut samples = voice.synthesize(&text)?;
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
            sink.write(&samples, rate)?;
            if outcome.chunks == 0 {
                self.metrics.observe_tts_first_chunk(begun.elapsed());
            }
            outcome.chunks += 1;
            outcome.samples += samples.len() as u64;
            self.events.publish(Event::new(
                "speech.chunk",
                json!({
                    "utterance": id,
                    "index": outcome.chunks - 1,
                    "text": text,
                    "samples": spoken,
                    "sample_rate": rate,
                    "audio_ms": ms(spoken, rate),
                    "synth_ms": synth_ms,
                }),
            ));
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
        self.voice = Some((path, loaded));
        Ok(())
    }
}

fn ms(samples: u64, rate: u32) -> u64 {
    if rate == 0 {
        0
    } else {
        samples * 1000 / u64::from(rate)
    }
}
