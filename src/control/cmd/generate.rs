//! `generate`: raw text generation for scripts and tests. Streams
//! `llm.token {text}` events tagged with the request's id, then replies
//! `{text, stats}`. A client that goes away mid-reply cancels generation.

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::engine::engine_error;
use super::Session;
use crate::control::protocol::{ControlError, ErrorCode, Message};
use crate::control::Context;
use crate::llm::{ChatMessage, GenerateRequest, LlmError, Prompt};

/// Token pieces buffered between the model and the connection.
const PIECES: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// Text to continue as is (completion).
    #[serde(default)]
    pub prompt: Option<String>,
    /// Chat messages, rendered with the model's chat template.
    #[serde(default)]
    pub messages: Option<Vec<ChatMessage>>,
    /// Default and upper bound: `engines.llm.max_tokens`.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// 0 (the default) is greedy.
    #[serde(default)]
    pub temperature: f32,
    #[serde(default = "one")]
    pub top_p: f32,
    #[serde(default)]
    pub stop: Vec<String>,
    #[serde(default)]
    pub seed: u32,
    #[serde(default)]
    pub session: Option<String>,
}

fn one() -> f32 {
    1.0
}

impl Generate {
    pub async fn apply(
        self,
        ctx: &Context,
        session: &Session,
        id: &Value,
    ) -> Result<Value, ControlError> {
        let prompt = match (self.prompt, self.messages) {
            (Some(text), None) => Prompt::Completion(text),
            (None, Some(messages)) => Prompt::Chat(messages),
            _ => {
                return Err(ControlError::new(
                    ErrorCode::InvalidParams,
                    "generate: give exactly one of `prompt` (text) or `messages` (chat)",
                ))
            }
        };
        let cap = ctx.config.config.engines.llm.max_tokens;
        let request = GenerateRequest {
            prompt,
            max_tokens: self.max_tokens.unwrap_or(cap).min(cap),
            temperature: self.temperature,
            top_p: self.top_p,
            stop: self.stop,
            seed: self.seed,
            session: self.session,
        };
        let llm = ctx
            .llm
            .as_ref()
            .ok_or_else(|| llm_error(LlmError::NoModel))?;
        let (tx, mut rx) = mpsc::channel::<String>(PIECES);
        let generation = llm.generate(request, tx);
        tokio::pin!(generation);
        let mut text = String::new();
        let forward = |piece: String, text: &mut String| {
            text.push_str(&piece);
            Message::Event {
                id: id.clone(),
                event: "llm.token".into(),
                data: json!({ "text": piece }),
            }
        };
        // Returning early drops `generation`, which cancels it in the worker.
        let result = loop {
            tokio::select! {
                biased;
                Some(piece) = rx.recv() => {
                    if session.out.send(forward(piece, &mut text)).await.is_err() {
                        return Err(gone());
                    }
                }
                result = &mut generation => break result,
                _ = session.out.closed() => return Err(gone()),
            }
        };
        while let Ok(piece) = rx.try_recv() {
            if session.out.send(forward(piece, &mut text)).await.is_err() {
                return Err(gone());
            }
        }
        let stats = result.map_err(llm_error)?;
        Ok(json!({ "text": text, "stats": stats }))
    }
}

fn gone() -> ControlError {
    ControlError::new(ErrorCode::Internal, "the client went away")
}

/// How language model failures look on the socket.
pub fn llm_error(e: LlmError) -> ControlError {
    let code = match e {
        LlmError::Engine(e) => return engine_error(e),
        LlmError::NoChatTemplate { .. } => ErrorCode::NoChatTemplate,
        LlmError::NoModel => ErrorCode::NoModel,
        LlmError::Load(_) => ErrorCode::ModelLoadFailed,
        LlmError::Cancelled | LlmError::Model(_) => ErrorCode::ModelFailed,
    };
    ControlError::new(code, e.to_string())
}
