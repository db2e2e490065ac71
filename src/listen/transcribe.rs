//! The transcription task: gathers each utterance's audio as the listening
//! thread sends it, re-decodes the growing utterance for a
//! `transcript.partial` every `stt.partial_interval_ms` of new audio (one
//! decode at a time; a backlog is caught up first, so partials never delay
//! the final), and publishes `transcript.final` when the utterance ends.
//! Both carry `"source": "listen"` so the voice pipeline can subscribe.
//!
//! Early transcription: when the speaker pauses (`listen.early_transcribe_ms`
//! into the hangover) the utterance is transcribed at once, ahead of any
//! partial, and published as `transcript.early` (what the utterance says if
//! it ends there: the voice loop starts answering it). If it then ends at
//! that same point (the speaker did not go on), that transcript is the
//! final one (`"early": true`), so the answer does not wait for a Whisper
//! pass after the hangover. If the speaker goes on (or the utterance is
//! dropped), `transcript.withdrawn` says the early transcript is void.
//!
//! Wake-phrase candidates (speech heard while asleep, see [`super::phrase`])
//! are transcribed once, when they end. One that starts with a wake phrase
//! publishes `wake.detected` (`"source": "phrase"`); what follows the phrase
//! is the question (`transcript.final` with `wake_phrase`). A phrase said on
//! its own makes the next candidate that starts within
//! `listen.wake_timeout_ms` of its end the question.

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::events::Source;
use super::phrase::{self, Phrase};
use super::{Heard, ListenEvent, Shared};
use crate::error::Kind;
use crate::events::Events;
use crate::stt::{Audio16k, Pace, Stt, SttError, Transcript};

/// What the listening thread sends. Times are seconds of audio heard.
#[derive(Debug)]
pub enum Clip {
    /// An utterance (after a wake word or in a follow-up window) begins.
    Start {
        id: u64,
    },
    /// Speech heard while asleep begins: a wake-phrase candidate.
    Candidate {
        id: u64,
        at: f64,
    },
    Audio {
        id: u64,
        samples: Vec<f32>,
    },
    /// The utterance's speech paused at `at` (its last speech so far):
    /// transcribe it now, in case it ends there.
    Pause {
        id: u64,
        at: f64,
    },
    /// Speech went on after a `Pause`.
    Resume {
        id: u64,
    },
    /// A follow-up window opened while a candidate was being heard: it is
    /// an utterance after all.
    Promote {
        id: u64,
    },
    End {
        id: u64,
        at: f64,
    },
    Abandon {
        id: u64,
    },
}

/// The wake phrases and how they match.
#[derive(Debug, Clone)]
pub struct PhraseSettings {
    pub phrases: Vec<Phrase>,
    pub similarity: f32,
    /// How long after a phrase said on its own the question may start.
    pub timeout_secs: f64,
}

/// The task's fixed parts.
pub struct Transcriber {
    pub stt: Arc<dyn Stt>,
    pub events: Events,
    pub shared: Arc<Shared>,
    pub partial_interval_ms: u32,
    pub phrases: PhraseSettings,
}

struct Current {
    id: u64,
    /// Where a candidate started; `None` for an utterance.
    candidate: Option<f64>,
    audio: Vec<f32>,
    /// Length at the last partial.
    decoded: usize,
    /// The last pause heard, not yet transcribed.
    pause: Option<f64>,
    /// The transcript made at a pause, and where that pause began.
    early: Option<Early>,
}

/// How a final transcript came about.
enum Final<'a> {
    /// Transcribed when the utterance ended.
    Ended,
    /// Transcribed when the speech paused where the utterance then ended.
    Early,
    /// What followed this wake phrase in a candidate.
    AfterPhrase(&'a str),
}

/// A transcript made when the speech paused.
struct Early {
    at: f64,
    audio: Audio16k,
    transcript: Transcript,
}

/// A candidate that ended, to be checked for a wake phrase.
struct Ended {
    current: Current,
    at: f64,
}

pub async fn run(mut heard: mpsc::UnboundedReceiver<Clip>, t: Transcriber) {
    let interval = t.partial_interval_ms as usize * 16;
    let mut current: Option<Current> = None;
    // A wake phrase said on its own: (phrase, latest start of the question).
    let mut armed: Option<(String, f64)> = None;
    while let Some(first) = heard.recv().await {
        // Catch up with everything already sent before decoding anything.
        let mut batch = vec![first];
        while let Ok(more) = heard.try_recv() {
            batch.push(more);
        }
        let mut ended = Vec::new();
        for msg in batch {
            match msg {
                Clip::Start { id } => current = Some(Current::new(id, None)),
                Clip::Candidate { id, at } => current = Some(Current::new(id, Some(at))),
                Clip::Audio { id, samples } => {
                    if let Some(c) = current.as_mut().filter(|c| c.id == id) {
                        c.audio.extend(samples);
                    }
                }
                Clip::Pause { id, at } => {
                    if let Some(c) = current.as_mut().filter(|c| c.id == id) {
                        c.pause = Some(at);
                    }
                }
                Clip::Resume { id } => {
                    if let Some(c) = current.as_mut().filter(|c| c.id == id) {
                        c.pause = None;
                        t.withdraw(c, "speech resumed");
                    }
                }
                Clip::Promote { id } => {
                    if let Some(c) = current.as_mut().filter(|c| c.id == id) {
                        c.candidate = None;
                    }
                }
                Clip::End { id, at } => {
                    if let Some(c) = current.take_if(|c| c.id == id) {
                        ended.push(Ended { current: c, at });
                    }
                }
                Clip::Abandon { id } => {
                    if let Some(mut c) = current.take_if(|c| c.id == id) {
                        t.withdraw(&mut c, "utterance dropped");
                    }
                }
            }
        }
        for Ended { current: c, at } in ended {
            match c.candidate {
                None => t.utterance(c, at).await,
                Some(start) => t.candidate(c, start, at, &mut armed).await,
            }
        }
        if let Some(c) = current.as_mut().filter(|c| c.candidate.is_none()) {
            if let Some(at) = c.pause.take() {
                // It is a partial too: the next one comes an interval later.
                c.decoded = c.audio.len();
                let audio = audio16k(c.audio.clone());
                match t.pass(&audio, "early", c.id).await {
                    Ok(transcript) => {
                        t.shared.ear.send(Heard::Early {
                            utterance: c.id,
                            text: transcript.text.trim().to_string(),
                        });
                        t.events.publish(ListenEvent::Early {
                            utterance: c.id,
                            text: transcript.text.trim().to_string(),
                            time: at,
                            audio_secs: audio.secs(),
                            decode_ms: transcript.decode_ms,
                            source: Source::Listen,
                        });
                        c.early = Some(Early {
                            at,
                            audio,
                            transcript,
                        })
                    }
                    // Transcribed again when the utterance ends.
                    Err(e) => tracing::warn!(error = %e, "early transcription failed"),
                }
            } else if interval > 0 && c.early.is_none() && c.audio.len() >= c.decoded + interval {
                // (Paused: nothing new was said since the early transcript,
                // and a decode now would compete with the speculative turn.)
                c.decoded = c.audio.len();
                let audio = audio16k(c.audio.clone());
                match t.pass(&audio, "partial", c.id).await {
                    Ok(tr) => t.events.publish(ListenEvent::Partial {
                        utterance: c.id,
                        text: tr.text.trim().to_string(),
                        audio_secs: audio.secs(),
                        source: Source::Listen,
                    }),
                    Err(e) => tracing::warn!(error = %e, "partial transcription failed"),
                }
            }
        }
    }
}

impl Current {
    fn new(id: u64, candidate: Option<f64>) -> Current {
        Current {
            id,
            candidate,
            audio: Vec::new(),
            decoded: 0,
            pause: None,
            early: None,
        }
    }
}

fn audio16k(samples: Vec<f32>) -> Audio16k {
    Audio16k {
        samples,
        source_rate: crate::stt::wav::RATE,
        source_channels: 1,
    }
}

impl Transcriber {
    /// One Whisper pass (`pass`: early, partial, final or candidate) over
    /// `utterance`'s audio, in a tracing span (`daemon.log_level =
    /// "voxd=debug"` logs each pass's time as it closes).
    async fn pass(
        &self,
        audio: &Audio16k,
        pass: &'static str,
        utterance: u64,
    ) -> Result<Transcript, SttError> {
        self.stt
            .transcribe(audio, Pace::Batch, None)
            .instrument(tracing::debug_span!("stt", pass, utterance))
            .await
    }

    /// Transcribes an utterance that ended at `end` (unless it was
    /// transcribed when it paused there); failures are `listen.error` with
    /// its id.
    async fn utterance(&self, utterance: Current, end: f64) {
        if let Some(early) = utterance.early.filter(|e| e.at == end) {
            let t = &early.transcript;
            self.publish_final(utterance.id, t.text.trim(), t, &early.audio, Final::Early);
            return;
        }
        let audio = audio16k(utterance.audio);
        match self.pass(&audio, "final", utterance.id).await {
            Ok(t) => self.publish_final(utterance.id, t.text.trim(), &t, &audio, Final::Ended),
            Err(e) => {
                tracing::warn!(utterance = utterance.id, error = %e, "transcription failed");
                self.shared.ear.send(Heard::Failed {
                    utterance: utterance.id,
                    kind: e.kind(),
                    message: e.to_string(),
                });
                self.events.publish(ListenEvent::Error {
                    utterance: Some(utterance.id),
                    stage: None,
                    code: Some(e.kind().name()),
                    error: e.to_string(),
                });
            }
        }
    }

    /// Voids the early transcript of `utterance`, if it has one.
    fn withdraw(&self, utterance: &mut Current, reason: &str) {
        if utterance.early.take().is_some() {
            self.shared.ear.send(Heard::Withdrawn {
                utterance: utterance.id,
            });
            self.events.publish(ListenEvent::Withdrawn {
                utterance: utterance.id,
                reason: reason.to_string(),
                source: Source::Listen,
            });
        }
    }

    /// Checks a candidate that ran from `start` to `end` for a wake phrase.
    async fn candidate(
        &self,
        candidate: Current,
        start: f64,
        end: f64,
        armed: &mut Option<(String, f64)>,
    ) {
        let audio = audio16k(candidate.audio);
        let t = match self.pass(&audio, "candidate", candidate.id).await {
            Ok(t) => t,
            Err(e) => {
                // Not an utterance (nobody woke voxd): reported, not spoken.
                tracing::warn!(error = %e, "wake-phrase transcription failed");
                self.events.publish(ListenEvent::Error {
                    utterance: None,
                    stage: Some("wake_phrase"),
                    code: Some(e.kind().name()),
                    error: e.to_string(),
                });
                return;
            }
        };
        let text = t.text.trim();
        if let Some((phrase, until)) = armed.take() {
            if start <= until {
                self.publish_final(candidate.id, text, &t, &audio, Final::AfterPhrase(&phrase));
                return;
            }
        }
        let p = &self.phrases;
        let Some(found) = phrase::find(&p.phrases, text, p.similarity) else {
            // What was overheard is not logged: nobody spoke to voxd.
            tracing::debug!(words = text.split_whitespace().count(), "no wake phrase");
            return;
        };
        tracing::info!(phrase = %found.phrase, score = found.score, text, "wake phrase");
        self.shared.ear.send(Heard::Wake);
        self.events.publish(ListenEvent::Wake {
            name: found.phrase.clone(),
            score: found.score,
            time: start,
            source: "phrase",
            text: Some(text.to_string()),
        });
        self.shared.status().wakes += 1;
        if found.rest.is_empty() {
            *armed = Some((found.phrase, end + p.timeout_secs));
        } else {
            let phrase = Final::AfterPhrase(&found.phrase);
            self.publish_final(candidate.id, &found.rest, &t, &audio, phrase);
        }
    }

    fn publish_final(&self, id: u64, text: &str, t: &Transcript, audio: &Audio16k, how: Final<'_>) {
        let wake_phrase = match how {
            Final::AfterPhrase(phrase) => {
                self.shared.status().utterances += 1;
                Some(phrase.to_string())
            }
            _ => None,
        };
        self.shared.ear.send(Heard::Final {
            utterance: id,
            text: text.to_string(),
            early: matches!(how, Final::Early),
            decode_ms: t.decode_ms,
        });
        self.events.publish(ListenEvent::Final {
            utterance: id,
            text: text.to_string(),
            segments: t.segments.clone(),
            audio_secs: audio.secs(),
            decode_ms: t.decode_ms,
            early: matches!(how, Final::Early),
            source: Source::Listen,
            wake_phrase,
        });
    }
}
