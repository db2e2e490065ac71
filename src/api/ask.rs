//! `ask` on the wire: the request's arguments ([`Ask`]), the reply
//! ([`AskResult`]) and the streamed events ([`event`]). The socket, D-Bus
//! and the CLI share these; `docs/protocol.md` documents them.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::assistant::{AskEvent, AskReply, AskRequest};
use crate::config::AnswerMode;
use crate::llm::GenerateStats;
use crate::rag::answer::Answer;

/// The arguments of `ask`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    pub question: String,
    /// Conversation id: earlier turns are offered to the model, and this
    /// turn is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Answer without the notes for this request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_rag: bool,
    /// Overrides `rag.answer_mode` for this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AnswerMode>,
    /// Store this turn in the session (the default). Kept on the wire for
    /// the clients that set it; it is [`AskRequest::store`].
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub remember: bool,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

impl Ask {
    /// `question`, with every option at its default.
    pub fn new(question: impl Into<String>) -> Ask {
        Ask {
            question: question.into(),
            session: None,
            no_rag: false,
            mode: None,
            remember: true,
        }
    }
}

impl From<Ask> for AskRequest {
    fn from(ask: Ask) -> AskRequest {
        AskRequest {
            session: ask.session,
            mode: ask.mode,
            rag: !ask.no_rag,
            store: ask.remember,
            ..AskRequest::new(ask.question)
        }
    }
}

/// The reply of `ask`: the answer's fields (`text`, `mode`, `citations`,
/// `flags`, `unsupported`), then `session`, `rag`, and when known
/// `best_score` and the model's figures (`llm`).
#[derive(Debug, Serialize)]
pub struct AskResult<'a> {
    #[serde(flatten)]
    pub answer: &'a Answer,
    pub session: &'a Option<String>,
    pub rag: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<&'a GenerateStats>,
}

impl<'a> From<&'a AskReply> for AskResult<'a> {
    fn from(reply: &'a AskReply) -> AskResult<'a> {
        AskResult {
            answer: &reply.answer,
            session: &reply.session,
            rag: reply.rag,
            best_score: reply.best_score,
            llm: reply.llm.as_ref(),
        }
    }
}

/// An [`AskEvent`] as the wire names it: `ask.token {text}` or
/// `ask.reset {reason}`.
pub fn event(event: &AskEvent) -> (&'static str, Value) {
    match event {
        AskEvent::Token(text) => ("ask.token", json!({ "text": text })),
        AskEvent::Reset(reason) => ("ask.reset", json!({ "reason": reason.name() })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_request_reads_back_as_the_same_arguments() {
        let ask = Ask {
            session: Some("s".into()),
            mode: Some(AnswerMode::Extractive),
            ..Ask::new("q")
        };
        let line = serde_json::to_value(&ask).unwrap();
        assert_eq!(
            line,
            json!({"question": "q", "session": "s", "mode": "extractive"})
        );
        assert_eq!(serde_json::from_value::<Ask>(line).unwrap(), ask);
        let quiet: Ask =
            serde_json::from_value(json!({"question": "q", "remember": false})).unwrap();
        assert!(!AskRequest::from(quiet).store);
    }
}
