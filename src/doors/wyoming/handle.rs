//! Answers: `transcript{text, context}` from a client (Home Assistant's
//! conversation agent) is one assistant turn, exactly as `voxd respond`
//! with speech off: a built-in intent, else the answer from the notes.
//! The answer streams as `handled-start`, `handled-chunk{text}` as the
//! model writes it, then `handled{text, context}` (for clients that do not
//! stream) and `handled-stop`. The text ends by naming its sources
//! briefly; `context` carries them (`citations`: path, lines) and the
//! client's `conversation_id`, which is also the conversation session. A
//! turn with nothing to say (`stop`) is `not-handled`.
//!
//! A streamed answer that the support check replaces (generative mode)
//! cannot be taken back: its chunks stop there, and `handled` carries the
//! replacement.

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use voxd_proto::Frame;

use super::connection::{data, Connection};
use super::{kind, WyomingError};
use crate::api::ApiError;
use crate::assistant::{AskEvent, Request};
use crate::rag::answer::Citation;

/// A question from `transcript`.
pub struct Question {
    text: String,
    context: Map<String, Value>,
}

impl Question {
    /// Reads `transcript{text, context}`.
    pub fn parse(frame: &Frame) -> Result<Question, WyomingError> {
        let text: String = data(frame, "text")?;
        let context: Option<Map<String, Value>> = data(frame, "context")?;
        Ok(Question {
            text,
            context: context.unwrap_or_default(),
        })
    }

    /// The conversation session: the client's `conversation_id`, else
    /// `assistant.session`.
    fn session(&self, conn: &Connection) -> Option<String> {
        match self.context.get("conversation_id") {
            Some(Value::String(id)) if !id.is_empty() => Some(format!("wyoming-{id}")),
            _ => conn.assistant.default_session(),
        }
    }

    /// Answers, streaming the text to the client.
    pub async fn answer(self, conn: &Connection) -> Result<(), ApiError> {
        if self.text.trim().is_empty() {
            conn.send(not_handled("nothing was said")).await;
            return Ok(());
        }
        let out = conn.sender();
        let (tx, mut events) = mpsc::unbounded_channel();
        let request = Request {
            text: self.text.clone(),
            speak: false,
            session: self.session(conn),
            stt_ms: None,
            cancel: conn.closed.child_token(),
            hold: None,
            stream: Some(tx),
        };
        let _ = out.send(Frame::new(kind::HANDLED_START)).await;
        let forward = async {
            let mut streaming = true;
            while let Some(event) = events.recv().await {
                match event {
                    AskEvent::Token(text) if streaming => {
                        let chunk =
                            Frame::new(kind::HANDLED_CHUNK).with_data(json!({ "text": text }));
                        let _ = out.send(chunk).await;
                    }
                    AskEvent::Token(_) => {}
                    AskEvent::Reset(reason) => {
                        tracing::debug!(
                            reason = reason.name(),
                            "wyoming: streamed answer replaced; the rest comes in `handled`"
                        );
                        streaming = false;
                    }
                }
            }
        };
        let (reply, ()) = tokio::join!(conn.assistant.respond(request), forward);
        let reply = reply?;
        if reply.text.trim().is_empty() {
            let _ = out.send(not_handled("nothing to say")).await;
            let _ = out.send(Frame::new(kind::HANDLED_STOP)).await;
            return Ok(());
        }
        let sources = sources(&reply.citations);
        let mut text = reply.text;
        if let Some(sources) = &sources {
            let _ = out
                .send(Frame::new(kind::HANDLED_CHUNK).with_data(json!({ "text": sources })))
                .await;
            text.push_str(sources);
        }
        let mut context = self.context;
        context.insert(
            "citations".into(),
            reply
                .citations
                .iter()
                .map(|c| json!({ "path": c.path, "line_start": c.line_start, "line_end": c.line_end }))
                .collect(),
        );
        let handled =
            Frame::new(kind::HANDLED).with_data(json!({ "text": text, "context": context }));
        let _ = out.send(handled).await;
        let _ = out.send(Frame::new(kind::HANDLED_STOP)).await;
        Ok(())
    }
}

fn not_handled(why: &str) -> Frame {
    Frame::new(kind::NOT_HANDLED).with_data(json!({ "text": why }))
}

/// The sources said briefly after the answer: " (Source: home.md, line 6.)"
fn sources(citations: &[Citation]) -> Option<String> {
    let cited: Vec<String> = citations
        .iter()
        .map(|c| {
            if c.line_start == c.line_end {
                format!("{}, line {}", c.name, c.line_start)
            } else {
                format!("{}, lines {} to {}", c.name, c.line_start, c.line_end)
            }
        })
        .collect();
    match cited.len() {
        0 => None,
        1 => Some(format!(" (Source: {}.)", cited[0])),
        _ => Some(format!(" (Sources: {}.)", cited.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rag::DocKind;

    fn cite(name: &str, line_start: u32, line_end: u32) -> Citation {
        Citation {
            n: 1,
            kind: DocKind::Note,
            path: format!("/notes/{name}"),
            name: name.into(),
            line_start,
            line_end,
            snippet: String::new(),
        }
    }

    #[test]
    fn sources_are_said_briefly() {
        assert_eq!(sources(&[]), None);
        assert_eq!(
            sources(&[cite("home.md", 6, 6)]).unwrap(),
            " (Source: home.md, line 6.)"
        );
        assert_eq!(
            sources(&[cite("home.md", 6, 6), cite("car.md", 1, 3)]).unwrap(),
            " (Sources: home.md, line 6; car.md, lines 1 to 3.)"
        );
    }

    #[test]
    fn a_transcript_is_a_question_with_its_context() {
        let frame = Frame::new(kind::TRANSCRIPT)
            .with_data(json!({"text": "hi", "context": {"conversation_id": "c1"}}));
        let q = Question::parse(&frame).unwrap();
        assert_eq!(q.text, "hi");
        assert_eq!(q.context["conversation_id"], "c1");
        let bad = Frame::new(kind::TRANSCRIPT).with_data(json!({"text": 5}));
        assert!(matches!(
            Question::parse(&bad),
            Err(WyomingError::BadData { .. })
        ));
    }
}
