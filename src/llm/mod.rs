//! The language model behind one small trait. voxd builds the prompts (the
//! `ask` command, RAG) and an [`Llm`] turns a prompt into streamed text. The
//! local backend runs llama.cpp in the `voxd-llm` worker through the engine
//! host; a remote backend (an OpenAI-compatible server) can implement the
//! same trait. This module owns the types of that contract only.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// What the model is asked to continue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Prompt {
    /// Raw text the model continues as is: base models, and voxd's own
    /// completion-style grounded prompt.
    Completion(String),
    /// Chat messages, rendered with the model's own chat template. A model
    /// without a template refuses this (never a silent fallback).
    Chat(Vec<ChatMessage>),
}

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

/// One generation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub prompt: Prompt,
    /// Upper bound on generated tokens; the profile's `engines.llm.max_tokens`
    /// caps it further.
    pub max_tokens: u32,
    /// 0 means greedy decoding.
    pub temperature: f32,
    pub top_p: f32,
    /// Generation stops before any of these strings; they are not returned.
    pub stop: Vec<String>,
    pub seed: u32,
    /// Conversation id: turns of one session (and requests sharing a prompt
    /// prefix) reuse the KV cache instead of re-processing the prefix.
    pub session: Option<String>,
}

/// How prompts are rendered for the loaded model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptFormat {
    /// The chat template stored in the model file (or named in config).
    ChatTemplate,
    /// No template: voxd's completion-style prompts only.
    Completion,
}

/// The loaded model, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub path: String,
    pub quantization: Option<String>,
    pub parameters: Option<u64>,
    pub context: u32,
    pub prompt_format: PromptFormat,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// End of sequence or a stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The caller cancelled.
    Cancelled,
}

/// Figures of one finished generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateStats {
    pub prompt_tokens: u32,
    /// Prompt tokens served from the KV cache instead of being processed.
    pub cached_tokens: u32,
    pub generated_tokens: u32,
    pub first_token_ms: f64,
    pub tokens_per_sec: f64,
    pub finish: Finish,
}

/// Why a generation failed.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error("the model {model} has no chat template; use a completion prompt or set a template in the config")]
    NoChatTemplate { model: String },
    #[error("no language model is installed for this profile; run `voxd models pull`")]
    NoModel,
    #[error("language model failed: {0}")]
    Model(String),
}

/// A language model backend.
#[async_trait]
pub trait Llm: Send + Sync {
    /// The loaded model (loading it if needed).
    async fn info(&self) -> Result<ModelInfo, LlmError>;

    /// Generates text, sending each piece to `tokens` as it is produced, and
    /// returns the figures once done. Dropping the future cancels generation
    /// promptly; a closed `tokens` receiver does too.
    async fn generate(
        &self,
        request: GenerateRequest,
        tokens: mpsc::Sender<String>,
    ) -> Result<GenerateStats, LlmError>;
}
