//! `generate`: raw text generation for scripts and tests. Streams
//! `llm.token {text}` events tagged with the request's id, then replies
//! `{text, stats}`. A client that goes away mid-reply cancels generation.

use serde::Deserialize;
use serde_json::{json, Value};

use super::relay::relay;
use super::Context;
use super::Peer;
use crate::api::{ApiError, ErrorCode};
use crate::llm::{self, ChatMessage, GenerateRequest, Prompt};

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
    pub async fn apply(self, ctx: &Context, peer: &Peer, id: &Value) -> Result<Value, ApiError> {
        let prompt = match (self.prompt, self.messages) {
            (Some(text), None) => Prompt::Completion(text),
            (None, Some(messages)) => Prompt::Chat(messages),
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidParams,
                    "generate: give exactly one of `prompt` (text) or `messages` (chat)",
                ))
            }
        };
        let cap = ctx.assistant.config.config.engines.llm.max_tokens;
        let request = GenerateRequest {
            prompt,
            max_tokens: self.max_tokens.unwrap_or(cap).min(cap),
            temperature: self.temperature,
            top_p: self.top_p,
            stop: self.stop,
            seed: self.seed,
            session: self.session,
        };
        let (text, stats) = relay(
            peer,
            id,
            |pieces, stop| async move {
                let send = |piece: &str| {
                    let _ = pieces.send(piece.to_string());
                };
                llm::stream(&*ctx.assistant.llm, request, &stop, send).await
            },
            |piece| ("llm.token", json!({ "text": piece })),
        )
        .await?;
        Ok(json!({ "text": text, "stats": stats }))
    }
}
