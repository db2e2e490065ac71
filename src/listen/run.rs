//! The listening thread: reads the source, runs every 512-sample frame
//! through the wake words, the VAD and the endpointer, and keeps the
//! small state machine:
//!
//! ```text
//!   sleeping ──wake word / follow-up──▶ armed ──speech (gate open)──▶ utterance
//!      ▲                                  │ no speech in time             │
//!      └──────────────────────────────────┴──────── end of speech ◀───────┘
//! ```
//!
//! With wake phrases (`listen.wake_phrases`), speech heard while sleeping
//! (gate open) is a *candidate*: its audio goes to the transcription task,
//! which checks it for a phrase when it ends ([`super::phrase`]). A wake
//! word heard meanwhile drops it and arms as usual; a follow-up window
//! opening meanwhile makes it an utterance.
//!
//! Utterance audio starts at the speech onset less `listen.preroll_ms`,
//! never before the wake word, and goes to the transcription task as it
//! arrives. Times in events are seconds of audio since listening started.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::endpoint::{Boundary, EndpointSettings, Endpointer};
use super::phrase::Phrase;
use super::transcribe::{Clip, PhraseSettings};
use super::vad::{Vad, FRAME};
use super::wake::{WakeSettings, WakeWords, STEP};
use super::{model_dir, Heard, ListenError, ListenEvent, Shared, State};
use crate::audio::input::{open_source, PcmFeed, Source, SourceOptions, RATE};
use crate::config::{Config, ListenConfig, OnnxConfig};
use crate::events::Events;
use crate::models::Role;
use crate::speak::Speaker;

/// How long one source read may wait (bounds how late `stop` is noticed).
const READ_TIMEOUT: Duration = Duration::from_millis(100);

/// `[listen]` in samples and frames, with the models' directories.
#[derive(Debug, Clone)]
pub struct Settings {
    pub input: String,
    pub device: String,
    pub file: PathBuf,
    pub vad_dir: PathBuf,
    /// The openWakeWord model; `None` without wake words.
    pub wake_dir: Option<PathBuf>,
    pub wake_words: Vec<String>,
    pub wake: WakeSettings,
    pub phrases: PhraseSettings,
    pub endpoint: EndpointSettings,
    /// Frames of a pause after which the utterance is transcribed early
    /// (`None`: off, or not shorter than the hangover).
    pub early_frames: Option<u64>,
    pub preroll: u64,
    pub wake_timeout: u64,
    pub max_utterance: u64,
    pub gate_while_speaking: bool,
    pub threads: u32,
}

fn frames(ms: u64) -> u64 {
    (ms * u64::from(RATE) / 1000).div_ceil(FRAME as u64)
}

fn samples(ms: u64) -> u64 {
    ms * u64::from(RATE) / 1000
}

/// `v`, a probability setting `listen.<name>`, checked.
fn unit(name: &str, v: f32) -> Result<f32, ListenError> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(ListenError::Settings(format!(
            "listen.{name} = {v}: it is a probability, 0 to 1"
        )))
    }
}

/// How wake words fire (`listen.wake_threshold`, `listen.wake_refractory_ms`).
pub(super) fn wake_settings(l: &ListenConfig) -> Result<WakeSettings, ListenError> {
    Ok(WakeSettings {
        threshold: unit("wake_threshold", l.wake_threshold)?,
        refractory_steps: samples(l.wake_refractory_ms) / STEP as u64,
    })
}

impl Settings {
    pub fn from_config(config: &Config) -> Result<Settings, ListenError> {
        let l = &config.listen;
        let threshold = unit("vad_threshold", l.vad_threshold)?;
        let neg_threshold = unit("vad_neg_threshold", l.vad_neg_threshold)?;
        if neg_threshold > threshold {
            return Err(ListenError::Settings(format!(
                "listen.vad_neg_threshold ({neg_threshold}) must not exceed listen.vad_threshold ({threshold})"
            )));
        }
        if l.wake_words.is_empty() && l.wake_phrases.is_empty() {
            return Err(ListenError::NoWakeWords);
        }
        let phrases = l
            .wake_phrases
            .iter()
            .map(|p| Phrase::new(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ListenError::Settings)?;
        let wake_dir = if l.wake_words.is_empty() {
            None
        } else {
            Some(model_dir(config, Role::Wake)?)
        };
        let hangover_frames = frames(l.hangover_ms).max(1);
        let early_frames =
            Some(frames(l.early_transcribe_ms)).filter(|&f| f > 0 && f < hangover_frames);
        Ok(Settings {
            input: l.input.clone(),
            device: l.device.clone(),
            file: l.file.clone(),
            vad_dir: model_dir(config, Role::Vad)?,
            wake_dir,
            wake_words: l.wake_words.clone(),
            wake: wake_settings(l)?,
            phrases: PhraseSettings {
                phrases,
                similarity: unit("wake_phrase_similarity", l.wake_phrase_similarity)?,
                timeout_secs: l.wake_timeout_ms as f64 / 1000.0,
            },
            endpoint: EndpointSettings {
                threshold,
                neg_threshold,
                min_speech_frames: frames(l.min_speech_ms).max(1),
                hangover_frames,
            },
            early_frames,
            preroll: samples(l.preroll_ms),
            wake_timeout: samples(l.wake_timeout_ms),
            max_utterance: samples(l.max_utterance_secs * 1000).max(samples(1000)),
            gate_while_speaking: l.gate_while_speaking,
            threads: l.threads,
        })
    }
}

/// What the listening thread is given.
pub struct Context {
    pub settings: Settings,
    pub onnx: OnnxConfig,
    pub events: Events,
    pub speaker: Speaker,
    pub feed: PcmFeed,
    pub shared: Arc<Shared>,
    pub stop: Arc<AtomicBool>,
    pub heard: mpsc::UnboundedSender<Clip>,
}

/// What opened the wait for speech.
#[derive(Debug, Clone)]
enum Trigger {
    Wake(String),
    Followup,
}

enum Phase {
    Sleeping,
    Armed {
        /// Sample at which it was armed: no audio before it is used.
        since: u64,
        until: u64,
        trigger: Trigger,
    },
    Utterance {
        id: u64,
        start: u64,
    },
    /// Speech heard while sleeping, to be checked for a wake phrase.
    Candidate {
        id: u64,
        start: u64,
    },
}

/// The listening thread's body: loads, reports readiness, loops until
/// stopped or failed.
pub fn listen(ctx: Context, ready: oneshot::Sender<Result<(), ListenError>>) {
    let mut ears = match Ears::open(ctx) {
        Ok(ears) => ears,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let reason = match ears.run() {
        Ok(()) => "stopped".to_string(),
        Err(e) => {
            tracing::error!(error = %e, "listening failed");
            ears.publish(ListenEvent::Error {
                utterance: None,
                stage: None,
                code: None,
                error: e.to_string(),
            });
            ears.ctx.shared.status().error = Some(e.to_string());
            e.to_string()
        }
    };
    ears.abandon("stopped");
    ears.publish(ListenEvent::Stopped { reason });
}

struct Ears {
    ctx: Context,
    source: Box<dyn Source>,
    vad: Vad,
    /// `None` with wake phrases only.
    wake: Option<WakeWords>,
    endpointer: Endpointer,
    phase: Phase,
    /// Recent audio for the pre-roll; `ring[0]` is sample `ring_start`.
    ring: VecDeque<f32>,
    ring_start: u64,
    /// Samples processed.
    heard: u64,
    pending: Vec<f32>,
    next_utterance: u64,
    /// The utterance paused long enough for early transcription and has
    /// not spoken since.
    paused: bool,
}

impl Ears {
    fn open(ctx: Context) -> Result<Ears, ListenError> {
        let s = &ctx.settings;
        let vad = Vad::load(&ctx.onnx, &s.vad_dir, s.threads)?;
        let wake = match &s.wake_dir {
            Some(dir) => Some(WakeWords::load(
                &ctx.onnx,
                dir,
                &s.wake_words,
                s.wake,
                s.threads,
            )?),
            None => None,
        };
        let phrases: Vec<&str> = s.phrases.phrases.iter().map(|p| p.text.as_str()).collect();
        let source = open_source(
            &s.input,
            &SourceOptions {
                device: &s.device,
                file: &s.file,
                events: &ctx.events,
                feed: &ctx.feed,
            },
        )?;
        let endpointer = Endpointer::new(ctx.settings.endpoint);
        {
            let mut status = ctx.shared.status();
            *status = super::ListenStatus {
                listening: true,
                state: State::Sleeping,
                input: source.describe(),
                wake_words: wake.as_ref().map(WakeWords::names).unwrap_or_default(),
                wake_phrases: phrases.iter().map(|p| p.to_string()).collect(),
                ..Default::default()
            };
        }
        let wake_words = wake.as_ref().map(WakeWords::names).unwrap_or_default();
        ctx.events.publish(ListenEvent::Started {
            input: source.describe(),
            wake_words: wake_words.clone(),
            wake_phrases: phrases.iter().map(|p| p.to_string()).collect(),
        });
        tracing::info!(input = %source.describe(), ?wake_words, wake_phrases = ?phrases, "listening");
        Ok(Ears {
            ctx,
            source,
            vad,
            wake,
            endpointer,
            phase: Phase::Sleeping,
            ring: VecDeque::new(),
            ring_start: 0,
            heard: 0,
            pending: Vec::with_capacity(FRAME),
            next_utterance: 1,
            paused: false,
        })
    }

    fn publish(&self, event: ListenEvent) {
        self.ctx.events.publish(event);
    }

    fn run(&mut self) -> Result<(), ListenError> {
        while !self.ctx.stop.load(Ordering::SeqCst) {
            let audio = self.source.read(READ_TIMEOUT)?;
            if audio.is_empty() {
                // No audio: perhaps the device was lost or is back.
                self.ctx.shared.status().input = self.source.describe();
            }
            let mut rest = audio.as_slice();
            while !rest.is_empty() {
                let take = (FRAME - self.pending.len()).min(rest.len());
                self.pending.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if self.pending.len() == FRAME {
                    let frame = std::mem::take(&mut self.pending);
                    self.frame(&frame)?;
                    self.pending = frame;
                    self.pending.clear();
                }
            }
        }
        Ok(())
    }

    fn secs(sample: u64) -> f64 {
        sample as f64 / f64::from(RATE)
    }

    /// One 512-sample frame through every stage.
    fn frame(&mut self, frame: &[f32]) -> Result<(), ListenError> {
        self.remember(frame);
        self.heard += FRAME as u64;
        let now = self.heard;

        let detections = match self.wake.as_mut() {
            Some(wake) => wake.push(frame)?,
            None => Vec::new(),
        };
        for detection in detections {
            tracing::info!(word = %detection.name, score = detection.score, "wake word");
            self.publish(ListenEvent::Wake {
                name: detection.name.clone(),
                score: detection.score,
                time: detection.time,
                source: "model",
                text: None,
            });
            self.ctx.shared.ear.send(Heard::Wake);
            self.ctx.shared.status().wakes += 1;
            // Muted by hand: heard and published, but nothing listens for a
            // question. While voxd speaks it arms (barge-in).
            let muted = self.ctx.shared.muted.load(Ordering::SeqCst);
            if !muted && !matches!(self.phase, Phase::Utterance { .. }) {
                self.arm(Trigger::Wake(detection.name));
            }
        }

        let probability = self.vad.probability(frame)?;
        let boundary = self.endpointer.push(probability);
        let gated = self.ctx.shared.muted.load(Ordering::SeqCst)
            || (self.ctx.settings.gate_while_speaking && self.ctx.speaker.active() > 0);

        let followup = self
            .ctx
            .shared
            .followup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match std::mem::replace(&mut self.phase, Phase::Sleeping) {
            Phase::Sleeping => match (followup, self.endpointer.speaking_since()) {
                (Some(window), _) => {
                    self.arm_until(Trigger::Followup, now + samples(window.as_millis() as u64));
                }
                (None, Some(onset)) if !gated && !self.ctx.settings.phrases.phrases.is_empty() => {
                    self.begin_candidate(onset * FRAME as u64);
                }
                _ => {}
            },
            Phase::Candidate { id, start } if followup.is_some() => {
                // The follow-up window opened as this speech began: it is
                // the follow-up question.
                self.announce(id, start, &Trigger::Followup);
                let _ = self.ctx.heard.send(Clip::Promote { id });
                self.phase = Phase::Utterance { id, start };
                self.hear(id, start, frame, boundary, gated);
            }
            Phase::Candidate { id, start } => {
                self.phase = Phase::Candidate { id, start };
                self.hear(id, start, frame, boundary, gated);
            }
            Phase::Armed {
                since,
                until,
                trigger,
            } => match (gated, self.endpointer.speaking_since()) {
                _ if now > until => {
                    tracing::debug!(?trigger, "no speech after the wake word");
                }
                (false, Some(onset)) => {
                    let onset = (onset * FRAME as u64).max(since);
                    let start = onset.saturating_sub(self.ctx.settings.preroll).max(since);
                    self.begin(start, onset, trigger);
                }
                _ => {
                    self.phase = Phase::Armed {
                        since,
                        until,
                        trigger,
                    }
                }
            },
            Phase::Utterance { id, start } => {
                self.phase = Phase::Utterance { id, start };
                self.hear(id, start, frame, boundary, gated);
            }
        }
        let state = match self.phase {
            Phase::Sleeping | Phase::Candidate { .. } => State::Sleeping,
            Phase::Armed { .. } => State::Armed,
            Phase::Utterance { .. } => State::Utterance,
        };
        let mut status = self.ctx.shared.status();
        status.state = state;
        status.heard_secs = Self::secs(now);
        Ok(())
    }

    /// Keeps the last pre-roll + minimum speech of audio (plus a frame).
    fn remember(&mut self, frame: &[f32]) {
        self.ring.extend(frame);
        let keep = (self.ctx.settings.preroll
            + (self.ctx.settings.endpoint.min_speech_frames + 2) * FRAME as u64)
            as usize;
        let excess = self.ring.len().saturating_sub(keep);
        self.ring.drain(..excess);
        self.ring_start += excess as u64;
    }

    fn arm(&mut self, trigger: Trigger) {
        let until = self.heard + self.ctx.settings.wake_timeout;
        self.arm_until(trigger, until);
    }

    /// Passes a frame of the utterance or candidate being heard on, and
    /// ends it at the end of speech or at the length limit.
    fn hear(
        &mut self,
        id: u64,
        start: u64,
        frame: &[f32],
        boundary: Option<Boundary>,
        gated: bool,
    ) {
        if gated {
            self.abandon("gated");
            return;
        }
        let _ = self.ctx.heard.send(Clip::Audio {
            id,
            samples: frame.to_vec(),
        });
        match boundary {
            Some(Boundary::End { end, .. }) => {
                self.end(id, (end * FRAME as u64).max(start), false);
            }
            _ if self.heard - start >= self.ctx.settings.max_utterance => {
                self.endpointer.restart();
                self.end(id, self.heard, true);
            }
            _ => {
                // A pause long enough to transcribe ahead of the end.
                let pause = self.endpointer.pause();
                let utterance = matches!(self.phase, Phase::Utterance { .. });
                if let (true, Some((last_speech, silent))) = (utterance, pause) {
                    if Some(silent) == self.ctx.settings.early_frames {
                        let at = Self::secs((last_speech * FRAME as u64).max(start));
                        let _ = self.ctx.heard.send(Clip::Pause { id, at });
                        self.paused = true;
                    } else if silent == 0 && std::mem::take(&mut self.paused) {
                        // The speaker went on: what was said so far is void.
                        let _ = self.ctx.heard.send(Clip::Resume { id });
                    }
                }
            }
        }
    }

    fn arm_until(&mut self, trigger: Trigger, until: u64) {
        // A wake word heard during a candidate: the wake word wins.
        if let Phase::Candidate { id, .. } = self.phase {
            let _ = self.ctx.heard.send(Clip::Abandon { id });
        }
        // Speech already under way (the wake phrase itself) is not the
        // utterance: the next speech frame opens a new segment.
        self.endpointer.restart();
        self.phase = Phase::Armed {
            since: self.heard,
            until,
            trigger,
        };
    }

    fn begin(&mut self, start: u64, onset: u64, trigger: Trigger) {
        let id = self.next_id();
        self.announce(id, onset, &trigger);
        let _ = self.ctx.heard.send(Clip::Start { id });
        self.paused = false;
        self.send_ring(id, start);
        self.phase = Phase::Utterance { id, start };
    }

    /// Speech while sleeping, from `onset` (less the pre-roll).
    fn begin_candidate(&mut self, onset: u64) {
        let id = self.next_id();
        let start = onset.saturating_sub(self.ctx.settings.preroll);
        tracing::debug!(
            id,
            at = Self::secs(onset),
            "speech while asleep: a wake-phrase candidate"
        );
        let _ = self.ctx.heard.send(Clip::Candidate {
            id,
            at: Self::secs(onset),
        });
        self.send_ring(id, start);
        self.phase = Phase::Candidate { id, start };
    }

    fn next_id(&mut self) -> u64 {
        self.next_utterance += 1;
        self.next_utterance - 1
    }

    /// The remembered audio from sample `start` on, to the transcription task.
    fn send_ring(&self, id: u64, start: u64) {
        let from = start.saturating_sub(self.ring_start) as usize;
        let samples: Vec<f32> = self.ring.iter().skip(from).copied().collect();
        let _ = self.ctx.heard.send(Clip::Audio { id, samples });
    }

    /// `speech.start` of utterance `id`, speech from `onset`.
    fn announce(&self, id: u64, onset: u64, trigger: &Trigger) {
        let (trigger_name, wake_word) = match trigger {
            Trigger::Wake(name) => ("wake", Some(name.clone())),
            Trigger::Followup => ("followup", None),
        };
        self.publish(ListenEvent::SpeechStart {
            utterance: id,
            time: Self::secs(onset),
            trigger: trigger_name,
            wake_word,
        });
    }

    fn end(&mut self, id: u64, end: u64, cut: bool) {
        let start = match self.phase {
            Phase::Utterance { start, .. } => start,
            Phase::Candidate { .. } => {
                tracing::debug!(id, at = Self::secs(end), cut, "the candidate ends");
                let _ = self.ctx.heard.send(Clip::End {
                    id,
                    at: Self::secs(end),
                });
                self.phase = Phase::Sleeping;
                return;
            }
            _ => return,
        };
        self.publish(ListenEvent::SpeechEnd {
            utterance: id,
            time: Self::secs(end),
            duration: Self::secs(end.saturating_sub(start)),
            cut,
            discarded: false,
            reason: None,
        });
        self.ctx.shared.status().utterances += 1;
        let _ = self.ctx.heard.send(Clip::End {
            id,
            at: Self::secs(end),
        });
        self.phase = Phase::Sleeping;
    }

    /// Drops the utterance or candidate being heard, if any (a candidate
    /// silently: nobody woke voxd for it).
    fn abandon(&mut self, reason: &str) {
        if let Phase::Candidate { id, .. } = self.phase {
            let _ = self.ctx.heard.send(Clip::Abandon { id });
        }
        if let Phase::Utterance { id, start } = self.phase {
            self.publish(ListenEvent::SpeechEnd {
                utterance: id,
                time: Self::secs(self.heard),
                duration: Self::secs(self.heard.saturating_sub(start)),
                cut: false,
                discarded: true,
                reason: Some(reason.to_string()),
            });
            let _ = self.ctx.heard.send(Clip::Abandon { id });
        }
        self.phase = Phase::Sleeping;
    }
}
