//! The voice loop ([`run`]): answers what the listener hears.
//!
//! It follows the listener's typed, lossless channel ([`Heard`]), not the
//! observers' event bus: however many events flow there (a long reply's
//! `speech.chunk`s, a flood of transcripts), no utterance is lost. Every final transcript
//! starts a turn ([`Assistant::respond`]); the wake word heard while a turn
//! is running stops it (barge-in), as does a new utterance. After a spoken
//! reply the listener takes a follow-up question without the wake word
//! for `assistant.followup_secs`.
//!
//! Speculation (`assistant.speculative`): a question's early transcript
//! (the speaker paused) starts its turn with the reply's audio held
//! ([`crate::speak::hold`]); the final transcript of the same utterance
//! confirms it (`early: true`) or replaces it, a withdrawal drops it. A dropped turn is never heard, published or remembered.
//!
//! Events: `assistant.reply` (text, intent, citations, timings) after each
//! turn, `assistant.interrupted` when a turn is cut short, `assistant.error`
//! (also spoken) when a turn fails or what was said could not be
//! transcribed.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::intent::{self, Intent};
use super::{Assistant, AssistantEvent, Request};
use crate::config::AnswerMode;
use crate::error::{ErrorKind, Kind};
use crate::listen::Heard;
use crate::speak::{Gate, Hold};

/// The turn in progress in the voice loop.
struct Running {
    cancel: CancellationToken,
    task: JoinHandle<()>,
    /// A speculative turn not yet confirmed: its utterance and its gate.
    speculative: Option<(u64, Gate)>,
}

impl Running {
    fn active(&self) -> bool {
        !self.task.is_finished()
    }

    /// The speculative turn of `utterance`, if this is it.
    fn speculating_on(&self, utterance: u64) -> bool {
        self.speculative
            .as_ref()
            .is_some_and(|(id, _)| *id == utterance)
    }

    /// Stops the turn: its `ask` stops generating and its speech stops. A
    /// speculative turn (nothing of it heard yet) is dropped quietly.
    fn interrupt(self, assistant: &Assistant, reason: &str) {
        if let Some((_, gate)) = self.speculative {
            gate.withdraw();
            self.cancel.cancel();
            return;
        }
        if self.active() {
            // Published first, so it comes before the speech.interrupted
            // of the reply being stopped.
            assistant.events.publish(AssistantEvent::Interrupted {
                reason: reason.to_string(),
            });
            self.cancel.cancel();
            assistant.speaker.stop();
        }
    }
}

/// The voice loop: answers what the listener hears until shutdown.
pub async fn run(assistant: Arc<Assistant>) {
    let mut heard = assistant.listener.heard();
    let mut running: Option<Running> = None;
    loop {
        let next = tokio::select! {
            _ = assistant.shutdown.cancelled() => break,
            next = heard.recv() => next,
        };
        let Some(next) = next else { break };
        match next {
            Heard::Wake => {
                if let Some(turn) = running.take() {
                    turn.interrupt(&assistant, "wake word");
                } else if assistant.speaker.active() > 0 {
                    assistant.speaker.stop();
                }
                assistant.speaker.warm();
                if assistant.rag.enabled() {
                    assistant.rag.warm();
                }
                warm_the_model(&assistant);
            }
            Heard::Early { utterance, text } if assistant.config.config.assistant.speculative => {
                let text = text.trim();
                // Only questions take long enough to be worth it; the
                // other intents, user commands (instant, and whose action
                // waits for the confirmation anyway) and silence wait for
                // the final transcript.
                if text.is_empty()
                    || intent::classify(text) != Intent::Question
                    || assistant.commands().find(text).is_some()
                {
                    continue;
                }
                if let Some(turn) = running.take() {
                    turn.interrupt(&assistant, "new utterance");
                }
                let (gate, hold) = crate::speak::hold();
                let mut turn = start_turn(&assistant, utterance, text, None, Some(hold));
                turn.speculative = Some((utterance, gate));
                running = Some(turn);
            }
            Heard::Early { .. } => {}
            Heard::Withdrawn { utterance } => {
                if let Some(turn) = running.take_if(|t| t.speculating_on(utterance)) {
                    turn.interrupt(&assistant, "withdrawn");
                }
            }
            Heard::Final {
                utterance,
                text,
                early,
                decode_ms,
            } => {
                if let Some(mut turn) = running.take_if(|t| t.speculating_on(utterance)) {
                    if !early {
                        // An answer to an earlier transcript: dropped.
                        turn.interrupt(&assistant, "superseded");
                    } else {
                        // What was answered is what was said: let it be heard.
                        if let Some((_, gate)) = turn.speculative.take() {
                            gate.confirm();
                        }
                        running = Some(turn);
                        continue;
                    }
                }
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                if let Some(turn) = running.take() {
                    turn.interrupt(&assistant, "new utterance");
                }
                running = Some(start_turn(
                    &assistant,
                    utterance,
                    text,
                    Some(decode_ms),
                    None,
                ));
            }
            // What was said could not be transcribed (e.g. the STT worker
            // crashed): the user hears why instead of waiting for an answer.
            Heard::Failed {
                utterance,
                kind,
                message,
            } => {
                if let Some(turn) = running.take() {
                    turn.interrupt(&assistant, "new utterance");
                }
                let assistant = assistant.clone();
                let task =
                    tokio::spawn(async move { fail(&assistant, utterance, kind, &message).await });
                running = Some(Running {
                    cancel: CancellationToken::new(),
                    task,
                    speculative: None,
                });
            }
        }
    }
    if let Some(turn) = running.take() {
        turn.cancel.cancel();
    }
}

/// A question usually follows the wake word: when the language model may
/// write its answer, it starts loading now, while the question is spoken
/// (the backend decides whether that is free; see [`crate::llm::Llm::warm`]).
fn warm_the_model(assistant: &Arc<Assistant>) {
    let llm = assistant.llm.clone();
    if assistant.rag.enabled() && assistant.config.config.rag.answer_mode == AnswerMode::Extractive
    {
        return;
    }
    tokio::spawn(async move {
        if let Err(e) = llm.warm().await {
            tracing::debug!(error = %e, "the language model could not be warmed");
        }
    });
}

/// Starts the turn answering `text`, what `utterance` said (its final
/// transcript, transcribed in `stt_ms`; or its early one, with `hold`).
fn start_turn(
    assistant: &Arc<Assistant>,
    utterance: u64,
    text: &str,
    stt_ms: Option<u64>,
    hold: Option<Hold>,
) -> Running {
    let cancel = CancellationToken::new();
    let request = Request {
        text: text.to_string(),
        speak: true,
        session: assistant.default_session(),
        stt_ms,
        cancel: cancel.clone(),
        hold: hold.clone(),
        stream: None,
    };
    let assistant = assistant.clone();
    let stopped = cancel.clone();
    let task = tokio::spawn(async move {
        match assistant.respond(request).await {
            Ok(reply) => {
                let window = assistant.config.config.assistant.followup_secs;
                if !reply.interrupted && window > 0.0 {
                    assistant
                        .listener
                        .open_followup(Duration::from_secs_f64(window));
                }
            }
            // Stopped on purpose (barge-in, or a withdrawn question).
            Err(e) if stopped.is_cancelled() => tracing::debug!(error = %e, "turn stopped"),
            Err(e) => {
                // A question still being heard fails aloud only once it is
                // confirmed.
                if let Some(hold) = hold {
                    if hold.decided().await != crate::speak::Verdict::Confirmed {
                        return;
                    }
                }
                tracing::warn!(error = %e, "the voice turn failed");
                fail(&assistant, utterance, e.kind(), &e.to_string()).await;
            }
        }
    });
    Running {
        cancel,
        task,
        speculative: None,
    }
}

/// Publishes `assistant.error` (`code`, `message`, `utterance`) and says it
/// aloud.
async fn fail(assistant: &Assistant, utterance: u64, kind: ErrorKind, message: &str) {
    assistant.events.publish(AssistantEvent::Error {
        code: kind.name(),
        message: message.to_string(),
        utterance,
    });
    let _ = assistant
        .speaker
        .say(&spoken_error(message), Default::default())
        .await;
}

/// What the assistant says when a turn fails: short, and it says why.
/// The message up to its first detail (a colon, semicolon, parenthesis or
/// line break), without the backticks that quote names in it.
fn spoken_error(message: &str) -> String {
    let first = message
        .split(['\n', ':', ';', '('])
        .next()
        .unwrap_or(message)
        .replace('`', "");
    format!("Sorry, that failed: {}.", first.trim())
}

#[cfg(test)]
mod tests {
    use super::spoken_error;

    #[test]
    fn spoken_errors_stop_before_the_details() {
        assert_eq!(
            spoken_error("engine `stt` crashed during the request (signal: 9); stderr: x"),
            "Sorry, that failed: engine stt crashed during the request."
        );
        assert_eq!(
            spoken_error("no notes: index empty"),
            "Sorry, that failed: no notes."
        );
    }
}
