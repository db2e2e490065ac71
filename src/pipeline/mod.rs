//! The assistant's turn: what voxd does with something the user said.
//!
//! It owns routing (built-in [`intent`]s first, then `ask` over the notes
//! and the language model), speaking the reply sentence by sentence while
//! it is still being written, barge-in, and the per-stage timings of a
//! turn. It reaches the rest of the daemon only through the
//! [`Context`](crate::control::Context): the `ask` handler (via
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

use crate::control::Context;
use crate::events::Event;
pub use turn::{respond, Reply, Request, Timings};

/// The turn in progress in the voice loop.
struct Running {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    fn active(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stops the turn: its `ask` stops generating and its speech stops.
    fn interrupt(self, ctx: &Context, reason: &str) {
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
            }
            "transcript.final" if event.data["source"] == "listen" => {
                let text = event.data["text"].as_str().unwrap_or("").trim().to_string();
                if text.is_empty() {
                    continue;
                }
                if let Some(turn) = running.take() {
                    turn.interrupt(&ctx, "new utterance");
                }
                let cancel = CancellationToken::new();
                let request = Request {
                    text,
                    speak: true,
                    session: Some(ctx.config.config.assistant.session.clone())
                        .filter(|s| !s.is_empty()),
                    stt_ms: event.data["decode_ms"].as_u64(),
                    cancel: cancel.clone(),
                };
                let utterance = event.data["utterance"].clone();
                let ctx = ctx.clone();
                let task = tokio::spawn(async move {
                    match respond(&ctx, request).await {
                        Ok(reply) => {
                            let window = ctx.config.config.assistant.followup_secs;
                            if !reply.interrupted && window > 0.0 {
                                ctx.listener.open_followup(Duration::from_secs_f64(window));
                            }
                        }
                        Err(e) => {
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
                running = Some(Running { cancel, task });
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
                });
            }
            _ => {}
        }
    }
    if let Some(turn) = running.take() {
        turn.cancel.cancel();
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
