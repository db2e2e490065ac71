//! What the two chat dialects share: the models a client may name, the
//! conversion of a client's messages into a core request, and running it
//! while its text streams out.
//!
//! Model [`VOXD`] is the grounded assistant ([`Assistant::ask`]): the last
//! user message is the question, the earlier user/assistant pairs its
//! history. Any other listed model is the raw language model, its messages
//! rendered with the model's chat template ([`crate::llm::stream`]).

use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::ApiError;
use crate::assistant::{AskEvent, AskReply, AskRequest, Assistant, ResetReason};
use crate::config::AnswerMode;
use crate::conversation::Turn;
use crate::llm::{self, ChatMessage, ChatRole, GenerateRequest, GenerateStats, Prompt};

/// The grounded assistant's model name.
pub const VOXD: &str = "voxd";

/// A message's content: a string, or OpenAI's list of typed parts (of
/// which the text parts count).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl Content {
    fn text(&self) -> String {
        match self {
            Content::Text(text) => text.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// A chat message as both dialects send it. Roles voxd has no use for
/// (`tool`, `developer`, ...) are refused by name.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
}

/// Which model answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// The grounded assistant.
    Voxd,
    /// The language model alone.
    Raw,
}

/// The sampling settings a client may set; `None` is the model's default.
#[derive(Debug, Clone, Default)]
pub struct Sampling {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub stop: Vec<String>,
    pub seed: Option<u32>,
}

/// A chat request, parsed.
#[derive(Debug, Clone)]
pub struct Chat {
    pub model: Model,
    pub messages: Vec<ChatMessage>,
    pub sampling: Sampling,
    /// voxd's conversation session: the turn is stored there.
    pub session: Option<String>,
    /// Overrides `rag.answer_mode` (model `voxd`).
    pub mode: Option<AnswerMode>,
    /// Answer from the notes (model `voxd`); `false`: the model alone.
    pub rag: bool,
}

/// Turns `messages` into typed ones; the message is the client's error.
pub fn messages(messages: Vec<Message>) -> Result<Vec<ChatMessage>, String> {
    if messages.is_empty() {
        return Err("`messages` is empty: send at least one user message".into());
    }
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role.as_str() {
                "system" => ChatRole::System,
                "user" => ChatRole::User,
                "assistant" => ChatRole::Assistant,
                other => {
                    return Err(format!(
                        "messages[{i}].role {other:?} is not one voxd takes: use system, user or assistant"
                    ))
                }
            };
            let content = m.content.as_ref().map(Content::text).unwrap_or_default();
            Ok(ChatMessage { role, content })
        })
        .collect()
}

/// What a chat streams: text, or a withdrawal of the text so far.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Reset(ResetReason),
}

/// A finished chat reply.
#[derive(Debug)]
pub struct Finished {
    pub text: String,
    /// The grounded answer (model `voxd`): citations, mode, flags.
    pub reply: Option<AskReply>,
    /// The model's figures, when it wrote.
    pub stats: Option<GenerateStats>,
}

/// A running chat: its pieces as they come, then its end. Dropping it
/// cancels the work (a client that went away).
pub struct Running {
    pieces: mpsc::UnboundedReceiver<Piece>,
    done: JoinHandle<Result<Finished, ApiError>>,
    _cancel: tokio_util::sync::DropGuard,
}

/// Starts `chat`.
pub fn start(assistant: Arc<Assistant>, chat: Chat) -> Running {
    spawn(move |tx, cancel| async move {
        match chat.model {
            Model::Voxd => grounded(&assistant, chat, tx, &cancel).await,
            Model::Raw => {
                let request = GenerateRequest {
                    session: chat.session,
                    ..generate_request(&assistant, Prompt::Chat(chat.messages), &chat.sampling)
                };
                raw(&assistant, request, tx, &cancel).await
            }
        }
    })
}

/// Starts `request` on the raw model (a completion).
pub fn generate(assistant: Arc<Assistant>, request: GenerateRequest) -> Running {
    spawn(move |tx, cancel| async move { raw(&assistant, request, tx, &cancel).await })
}

fn spawn<F>(work: impl FnOnce(mpsc::UnboundedSender<Piece>, CancellationToken) -> F) -> Running
where
    F: std::future::Future<Output = Result<Finished, ApiError>> + Send + 'static,
{
    let (tx, pieces) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let guard = cancel.clone().drop_guard();
    let done = tokio::spawn(work(tx, cancel));
    Running {
        pieces,
        done,
        _cancel: guard,
    }
}

impl Running {
    /// Sends each piece, as `item` makes it, to `tx` until the work ends;
    /// then its end, or `None` when the client left (the work is dropped,
    /// which cancels it).
    pub async fn relay<T>(
        mut self,
        tx: &mpsc::Sender<T>,
        mut item: impl FnMut(Piece) -> T,
    ) -> Option<Result<Finished, ApiError>> {
        loop {
            let piece = tokio::select! {
                _ = tx.closed() => return None,
                piece = self.pieces.recv() => piece,
            };
            match piece {
                Some(piece) => {
                    if tx.send(item(piece)).await.is_err() {
                        return None;
                    }
                }
                None => break,
            }
        }
        Some(self.finish().await)
    }

    /// Runs to the end, ignoring the pieces.
    pub async fn finish(self) -> Result<Finished, ApiError> {
        let Running { done, _cancel, .. } = self;
        done.await.map_err(ApiError::internal)?
    }
}

async fn grounded(
    assistant: &Assistant,
    chat: Chat,
    tx: mpsc::UnboundedSender<Piece>,
    cancel: &CancellationToken,
) -> Result<Finished, ApiError> {
    let (question, history) = question_and_history(&chat.messages)?;
    let request = AskRequest {
        history: Some(history),
        store: chat.session.is_some(),
        session: chat.session,
        mode: chat.mode,
        rag: chat.rag,
        ..AskRequest::new(question)
    };
    let (events, mut rx) = mpsc::unbounded_channel();
    let relay = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            let piece = match event {
                AskEvent::Token(text) => Piece::Text(text),
                AskEvent::Reset(reason) => Piece::Reset(reason),
            };
            if tx.send(piece).is_err() {
                break;
            }
        }
    });
    let reply = assistant.ask(request, &events, cancel).await;
    drop(events);
    let _ = relay.await;
    let reply = reply?;
    Ok(Finished {
        text: reply.answer.text.clone(),
        stats: reply.llm.clone(),
        reply: Some(reply),
    })
}

/// The last message must be the user's question; the user/assistant pairs
/// before it are its history (system messages are voxd's own business).
fn question_and_history(messages: &[ChatMessage]) -> Result<(String, Vec<Turn>), ApiError> {
    let Some((last, earlier)) = messages.split_last() else {
        return Err(ApiError::invalid_params("`messages` is empty"));
    };
    if last.role != ChatRole::User || last.content.trim().is_empty() {
        return Err(ApiError::invalid_params(
            "the last message must be the user's question, with text",
        ));
    }
    let mut history = Vec::new();
    let mut question: Option<&str> = None;
    for m in earlier {
        match m.role {
            ChatRole::User => question = Some(&m.content),
            ChatRole::Assistant => {
                if let Some(q) = question.take() {
                    history.push(Turn {
                        question: q.to_string(),
                        answer: m.content.clone(),
                    });
                }
            }
            ChatRole::System => {}
        }
    }
    Ok((last.content.clone(), history))
}

async fn raw(
    assistant: &Assistant,
    request: GenerateRequest,
    tx: mpsc::UnboundedSender<Piece>,
    cancel: &CancellationToken,
) -> Result<Finished, ApiError> {
    let (text, stats) = llm::stream(&*assistant.llm, request, cancel, |piece| {
        let _ = tx.send(Piece::Text(piece.to_string()));
    })
    .await?;
    Ok(Finished {
        text,
        reply: None,
        stats: Some(stats),
    })
}

/// A generation request with the client's sampling, its length capped at
/// `engines.llm.max_tokens`.
pub fn generate_request(
    assistant: &Assistant,
    prompt: Prompt,
    sampling: &Sampling,
) -> GenerateRequest {
    let cap = assistant.config.config.engines.llm.max_tokens;
    GenerateRequest {
        prompt,
        max_tokens: sampling.max_tokens.unwrap_or(cap).min(cap),
        temperature: sampling.temperature.unwrap_or(0.0),
        top_p: sampling.top_p.unwrap_or(1.0),
        stop: sampling.stop.clone(),
        seed: sampling.seed.unwrap_or(0),
        session: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: ChatRole, content: &str) -> ChatMessage {
        ChatMessage {
            role,
            content: content.into(),
        }
    }

    #[test]
    fn the_last_user_message_is_the_question_and_pairs_before_it_history() {
        let (q, history) = question_and_history(&[
            msg(ChatRole::System, "be brief"),
            msg(ChatRole::User, "wifi?"),
            msg(ChatRole::Assistant, "47-moon"),
            msg(ChatRole::User, "and the door code?"),
        ])
        .unwrap();
        assert_eq!(q, "and the door code?");
        assert_eq!(
            history,
            vec![Turn {
                question: "wifi?".into(),
                answer: "47-moon".into()
            }]
        );
        assert!(question_and_history(&[msg(ChatRole::Assistant, "hi")]).is_err());
    }

    #[test]
    fn text_parts_are_joined_and_unknown_roles_refused() {
        let parsed: Vec<Message> = serde_json::from_str(
            r#"[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url"},{"type":"text","text":"b"}]}]"#,
        )
        .unwrap();
        assert_eq!(messages(parsed).unwrap()[0].content, "a\nb");
        let tool: Vec<Message> =
            serde_json::from_str(r#"[{"role":"tool","content":"x"}]"#).unwrap();
        assert!(messages(tool).unwrap_err().contains("tool"));
    }
}
