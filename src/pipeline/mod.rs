//! The assistant's turn: what voxd does with something the user said.
//!
//! It owns routing (built-in [`intent`]s first, then `ask` over the notes
//! and the language model), speaking the reply sentence by sentence while
//! it is still being written, barge-in, and the per-stage timings of a
//! turn. It reaches the rest of the daemon only through the
//! [`Context`]: the `ask` handler (via
//! [`crate::control::call_streaming`]), the speaker, the notes index and the
//! image store. It never talks to engines itself.
//!
//! Two ways in, one code path ([`respond`]):
//! - the `respond` command: text, answered as if it had been spoken;
//! - the voice loop ([`run`]): every `transcript.final` the listener
//!   publishes (`source: "listen"`) starts a turn; the wake word heard while
//!   a turn is running stops it (barge-in), as does a new utterance. After
//!   a spoken reply the listener takes a follow-up question without the
//!   wake word for `assistant.followup_secs`.
//!
//! Speculation (`assistant.speculative`): a question's `transcript.early`
//! (the speaker paused) starts its turn with the reply's audio held
//! ([`crate::speak::hold`]); `transcript.final` of the same utterance
//! confirms it (`early: true`) or replaces it, `transcript.withdrawn`
//! drops it. A dropped turn is never heard, published or remembered.
//!
//! Events: `assistant.reply` (text, intent, citations, timings) after each
//! turn, `assistant.interrupted` when a turn is cut short, `assistant.error`
//! (also spoken) when a turn fails or what was said could not be
//! transcribed.

pub mod intent;
mod turn;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::AnswerMode;
use crate::control::Context;
use crate::events::Event;
use crate::speak::{Gate, Hold};
use intent::Intent;
pub use turn::{respond, Reply, Request, Timings};

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
    fn speculating_on(&self, utterance: &serde_json::Value) -> bool {
        self.speculative
            .as_ref()
            .is_some_and(|(id, _)| utterance.as_u64() == Some(*id))
    }

    /// Stops the turn: its `ask` stops generating and its speech stops. A
    /// speculative turn (nothing of it heard yet) is dropped quietly.
    fn interrupt(self, ctx: &Context, reason: &str) {
        if let Some((_, gate)) = self.speculative {
            gate.withdraw();
            self.cancel.cancel();
            return;
        }
        if self.active() {
            // Published first, so it comes before the speech.interrupted
            // of the reply being stopped.
            ctx.events.publish(Event::new(
                "assistant.interrupted",
                json!({ "reason": reason }),
            ));
            self.cancel.cancel();
            ctx.speaker.stop();
        }
    }
}

/// The voice loop: answers what the listener transcribes until shutdown.
pub async fn run(ctx: Arc<Context>) {
    let mut events = ctx.events.subscribe();
    let mut running: Option<Running> = None;
    loop {
        let event = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            event = events.recv() => event,
        };
        let event = match event {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "the voice loop missed events");
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        match event.event.as_str() {
            "wake.detected" => {
                if let Some(turn) = running.take() {
                    turn.interrupt(&ctx, "wake word");
                } else if ctx.speaker.active() > 0 {
                    ctx.speaker.stop();
                }
                ctx.speaker.warm();
                warm_the_model(&ctx);
            }
            "transcript.early"
                if event.data["source"] == "listen" && ctx.config.config.assistant.speculative =>
            {
                let text = event.data["text"].as_str().unwrap_or("").trim();
                // Only questions take long enough to be worth it; the
                // other intents (and silence) wait for the final transcript.
                if text.is_empty() || intent::classify(text) != Intent::Question {
                    continue;
                }
                if let Some(turn) = running.take() {
                    turn.interrupt(&ctx, "new utterance");
                }
                let (gate, hold) = crate::speak::hold();
                let mut turn = start_turn(&ctx, &event.data, Some(hold));
                turn.speculative = event.data["utterance"].as_u64().map(|id| (id, gate));
                running = Some(turn);
            }
            "transcript.withdrawn" if event.data["source"] == "listen" => {
                if let Some(turn) = running.take_if(|t| t.speculating_on(&event.data["utterance"]))
                {
                    turn.interrupt(&ctx, "withdrawn");
                }
            }
            "transcript.final" if event.data["source"] == "listen" => {
                if let Some(mut turn) =
                    running.take_if(|t| t.speculating_on(&event.data["utterance"]))
                {
                    if event.data["early"] != true {
                        // An answer to an earlier transcript: dropped.
                        turn.interrupt(&ctx, "superseded");
                    } else {
                        // What was answered is what was said: let it be heard.
                        if let Some((_, gate)) = turn.speculative.take() {
                            gate.confirm();
                        }
                        running = Some(turn);
                        continue;
                    }
                }
                let text = event.data["text"].as_str().unwrap_or("").trim();
                if text.is_empty() {
                    continue;
                }
                if let Some(turn) = running.take() {
                    turn.interrupt(&ctx, "new utterance");
                }
                running = Some(start_turn(&ctx, &event.data, None));
            }
            // What was said could not be transcribed (e.g. the STT worker
            // crashed): the user hears why instead of waiting for an answer.
            "listen.error" if event.data["utterance"].is_u64() => {
                if let Some(turn) = running.take() {
                    turn.interrupt(&ctx, "new utterance");
                }
                let error = json!({
                    "code": event.data["code"],
                    "message": event.data["error"],
                    "utterance": event.data["utterance"],
                });
                let ctx = ctx.clone();
                let task = tokio::spawn(async move { fail(&ctx, error).await });
                running = Some(Running {
                    cancel: CancellationToken::new(),
                    task,
                    speculative: None,
                });
            }
            _ => {}
        }
    }
    if let Some(turn) = running.take() {
        turn.cancel.cancel();
    }
}

/// A question usually follows the wake word: when the language model may
/// write its answer, it starts loading now, while the question is spoken
/// (the backend decides whether that is free; see [`crate::llm::Llm::warm`]).
fn warm_the_model(ctx: &Arc<Context>) {
    let Some(llm) = ctx.llm.clone() else { return };
    if ctx.rag.enabled() && ctx.config.config.rag.answer_mode == AnswerMode::Extractive {
        return;
    }
    tokio::spawn(async move {
        if let Err(e) = llm.warm().await {
            tracing::debug!(error = %e, "the language model could not be warmed");
        }
    });
}

/// Starts the turn answering `transcript` (a `transcript.final`, or a
/// `transcript.early` with `hold`).
fn start_turn(ctx: &Arc<Context>, transcript: &serde_json::Value, hold: Option<Hold>) -> Running {
    let cancel = CancellationToken::new();
    let request = Request {
        text: transcript["text"].as_str().unwrap_or("").trim().to_string(),
        speak: true,
        session: Some(ctx.config.config.assistant.session.clone()).filter(|s| !s.is_empty()),
        stt_ms: transcript["decode_ms"].as_u64(),
        cancel: cancel.clone(),
        hold: hold.clone(),
    };
    let utterance = transcript["utterance"].clone();
    let ctx = ctx.clone();
    let stopped = cancel.clone();
    let task = tokio::spawn(async move {
        match respond(&ctx, request).await {
            Ok(reply) => {
                let window = ctx.config.config.assistant.followup_secs;
                if !reply.interrupted && window > 0.0 {
                    ctx.listener.open_followup(Duration::from_secs_f64(window));
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
                let error = json!({
                    "code": e.code,
                    "message": e.message,
                    "utterance": utterance,
                });
                fail(&ctx, error).await;
            }
        }
    });
    Running {
        cancel,
        task,
        speculative: None,
    }
}

/// Publishes `assistant.error` (`code`, `message`, ...) and says it aloud.
async fn fail(ctx: &Context, error: serde_json::Value) {
    let message = error["message"]
        .as_str()
        .unwrap_or("unknown error")
        .to_string();
    ctx.events.publish(Event::new("assistant.error", error));
    let _ = ctx
        .speaker
        .say(&spoken_error(&message), Default::default())
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
