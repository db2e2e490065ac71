//! The speech thread: utterances are spoken one after another on this one
//! dedicated thread, which synthesises each chunk as soon as the splitter
//! completes it and hands the audio to the sink while the next chunk is
//! synthesised, at most `tts.lookahead_ms` of audio ahead of a sound
//! device's playback. A held utterance's audio waits for its verdict.
//!
//! Events: `speech.started`, `speech.chunk` (a chunk's audio is queued for
//! playback), `speech.finished`, `speech.interrupted`, `speech.failed`,
//! `speech.withdrawn` (a held utterance dropped unheard).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::piper::{PiperVoice, Settings};
use super::speaker::{FirstAudio, Shared};
use super::target::ChannelSink;
use super::{
    voice_path, Hold, SayOptions, SayOutcome, SpeakError, SpeechEvent, Target, Tts, Verdict,
};
use crate::audio::{self, Sink, SinkOptions, Tap, WavSink};
use crate::config::{AudioConfig, Config, ModelsConfig, OnnxConfig, TtsConfig};
use crate::events::Events;
use crate::metrics::Pipeline;

/// The longest a held utterance waits for its verdict before it is
/// dropped (a gate is decided within a VAD hangover; this bounds a bug).
const HOLD_LIMIT: Duration = Duration::from_secs(30);

/// What the speech thread is asked to do.
pub(super) enum Task {
    Say(Job),
    /// Load the default voice now, ahead of the reply that will need it.
    Warm,
}

/// One utterance for the speech thread: its text arrives on `chunks`, and
/// `done` gets what happened to it.
pub(super) struct Job {
    pub(super) id: u64,
    pub(super) epoch: u64,
    pub(super) options: SayOptions,
    pub(super) chunks: mpsc::Receiver<String>,
    pub(super) done: oneshot::Sender<Result<SayOutcome, SpeakError>>,
    /// Told when the first chunk's audio is queued.
    pub(super) first: Option<oneshot::Sender<FirstAudio>>,
}

/// Starts the speech thread, which serves `tasks` until every sender is
/// gone.
pub(super) fn spawn(
    config: Config,
    events: Events,
    metrics: Pipeline,
    tap: Tap,
    shared: Arc<Shared>,
    tasks: mpsc::Receiver<Task>,
) {
    // Built on the thread: sound-device streams may not leave it.
    let thread = move || {
        SpeechThread {
            tts: config.tts,
            onnx: config.onnx,
            models: config.models,
            audio: config.audio,
            events,
            metrics,
            tap,
            shared,
            voice: None,
            sink: None,
        }
        .run(tasks)
    };
    std::thread::Builder::new()
        .name("voxd-speech".into())
        .spawn(thread)
        .expect("cannot start the speech thread");
}

/// State owned by the speech thread.
struct SpeechThread {
    tts: TtsConfig,
    onnx: OnnxConfig,
    models: ModelsConfig,
    audio: AudioConfig,
    events: Events,
    metrics: Pipeline,
    /// Where the `socket` output hands its audio to subscribers.
    tap: Tap,
    shared: Arc<Shared>,
    /// The loaded voice and the path it came from.
    voice: Option<(PathBuf, PiperVoice)>,
    /// The daemon's own output, opened at first use.
    sink: Option<Box<dyn Sink>>,
}

impl SpeechThread {
    fn run(mut self, tasks: mpsc::Receiver<Task>) {
        while let Ok(task) = tasks.recv() {
            let mut job = match task {
                Task::Say(job) => job,
                Task::Warm => {
                    if let Err(e) = self.load_voice("") {
                        // The utterance that needs it reports it.
                        tracing::debug!(error = %e, "the voice could not be warmed");
                    }
                    continue;
                }
            };
            let utterance = job.id;
            let mut audible = job.options.hold.is_none();
            let result = self.speak(&mut job, &mut audible);
            match &result {
                Ok(outcome) if outcome.withdrawn => {
                    self.events.publish(SpeechEvent::Withdrawn { utterance })
                }
                Ok(outcome) if outcome.interrupted => {
                    self.events.publish(SpeechEvent::Interrupted {
                        utterance,
                        chunks: outcome.chunks,
                    })
                }
                Ok(outcome) => self.events.publish(SpeechEvent::Finished {
                    utterance,
                    chunks: outcome.chunks,
                    audio_ms: ms(outcome.samples, outcome.sample_rate),
                }),
                Err(e) => {
                    tracing::warn!(utterance, error = %e, "speech failed");
                    self.events.publish(SpeechEvent::Failed {
                        utterance,
                        error: e.to_string(),
                    });
                }
            }
            if audible {
                self.shared.active.fetch_sub(1, Ordering::SeqCst);
            }
            let _ = job.done.send(result);
        }
    }

    fn cancelled(shared: &Shared, epoch: u64) -> bool {
        shared.epoch.load(Ordering::SeqCst) != epoch
    }

    /// Speaks one utterance: each chunk of text is synthesised as it
    /// arrives and written to the sink (the utterance's WAV file, or the
    /// daemon's output); a held one is heard only once confirmed.
    fn speak(&mut self, job: &mut Job, audible: &mut bool) -> Result<SayOutcome, SpeakError> {
        let Job {
            id,
            epoch,
            ref options,
            ref chunks,
            ref mut first,
            ..
        } = *job;
        let mut outcome = SayOutcome {
            utterance: id,
            chunks: 0,
            samples: 0,
            sample_rate: 0,
            interrupted: true,
            withdrawn: false,
        };
        let shared = self.shared.clone();
        let cancelled = || Self::cancelled(&shared, epoch) || options.target.abandoned();
        if cancelled() {
            return Ok(outcome); // stopped while queued
        }
        let begun = Instant::now();
        self.load_voice(&options.voice)?;
        let mut file_sink = match &options.target {
            Target::Wav(path) => Some(WavSink::create(path)?),
            _ => None,
        };
        let mut channel_sink = match &options.target {
            Target::Channel(tx) => Some(ChannelSink(tx.clone())),
            _ => None,
        };
        if matches!(options.target, Target::Output) {
            self.open_output()?;
        }
        let (voice_path, voice) = self.voice.as_mut().expect("loaded above");
        let rate = voice.sample_rate();
        outcome.sample_rate = rate;
        let sink: &mut dyn Sink = match (file_sink.as_mut(), channel_sink.as_mut()) {
            (Some(file), _) => file,
            (None, Some(channel)) => channel,
            (None, None) => self.sink.as_deref_mut().expect("opened above"),
        };
        let started_event = SpeechEvent::Started {
            utterance: id,
            voice: voice_path.clone(),
            sample_rate: rate,
        };
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
            let text = match next.take() {
                Some(text) => text,
                None => match next_text(chunks, &cancelled) {
                    Next::Text(text) => text,
                    Next::Stopped => return Ok(outcome),
                    Next::Ended => break,
                },
            };
            if !wait_for_room(sink, lookahead, &cancelled) {
                return Ok(outcome);
            }
            next = chunks.try_recv().ok();
            voice.backlog(next.is_some());
            let (mut samples, synth) = synthesize(voice, &text, id, outcome.chunks)?;
            let synth_ms = synth.as_millis() as u64;
            if cancelled() {
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
            if let Some(first) = first.take() {
                let _ = first.send(FirstAudio {
                    at: Instant::now(),
                    synth_ms,
                    held_ms,
                });
            }
            self.events.publish(SpeechEvent::Chunk {
                utterance: id,
                index: outcome.chunks - 1,
                text,
                samples: spoken,
                sample_rate: rate,
                audio_ms: ms(spoken, rate),
                synth_ms,
                held_ms,
            });
        }
        if let Some(release) = held {
            // Nothing was synthesised: still nothing is heard unconfirmed.
            if !release.wait(&mut outcome, audible) {
                return Ok(outcome);
            }
        }
        sink.drain(&cancelled)?;
        if let Some(file) = file_sink {
            file.finalize()?;
        }
        outcome.interrupted = cancelled();
        Ok(outcome)
    }

    /// Opens the daemon's own output at first use, where
    /// [`Speaker::stop`](super::Speaker::stop) can interrupt it.
    fn open_output(&mut self) -> Result<(), SpeakError> {
        if self.sink.is_some() {
            return Ok(());
        }
        let sink = audio::open_sink(
            &self.audio.output,
            &SinkOptions {
                device: &self.audio.device,
                file: &self.audio.file,
                tap: &self.tap,
            },
        )?;
        *self
            .shared
            .interrupter
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(sink.interrupter());
        self.sink = Some(sink);
        Ok(())
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
    started: &'a SpeechEvent,
}

impl Release<'_> {
    /// Waits for the verdict. Confirmed: the utterance is now audible
    /// (counted in [`Speaker::active`](super::Speaker::active), `speech.started` published);
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

/// What waiting for an utterance's next chunk of text gave.
enum Next {
    Text(String),
    /// The text has ended.
    Ended,
    /// The utterance was stopped.
    Stopped,
}

/// Waits for the next chunk of text, checking for a stop every 50 ms.
fn next_text(chunks: &mpsc::Receiver<String>, cancelled: &dyn Fn() -> bool) -> Next {
    loop {
        match chunks.recv_timeout(Duration::from_millis(50)) {
            Ok(text) => return Next::Text(text),
            Err(RecvTimeoutError::Timeout) if cancelled() => return Next::Stopped,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Next::Ended,
        }
    }
}

/// Waits until `sink` holds at most `lookahead` of audio not yet played:
/// synthesis runs at most tts.lookahead_ms ahead of playback, so that a
/// stop (barge-in) throws little synthesis away. False once stopped.
fn wait_for_room(sink: &dyn Sink, lookahead: Duration, cancelled: &dyn Fn() -> bool) -> bool {
    while sink.queued() > lookahead {
        if cancelled() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !cancelled()
}

/// Synthesises one chunk of an utterance, and how long that took.
fn synthesize(
    voice: &mut PiperVoice,
    text: &str,
    utterance: u64,
    chunk: usize,
) -> Result<(Vec<f32>, Duration), SpeakError> {
    let started = Instant::now();
    let samples = {
        let _span = tracing::debug_span!("synth", utterance, chunk).entered();
        voice.synthesize(text)?
    };
    Ok((samples, started.elapsed()))
}

fn ms(samples: u64, rate: u32) -> u64 {
    if rate == 0 {
        0
    } else {
        samples * 1000 / u64::from(rate)
    }
}
