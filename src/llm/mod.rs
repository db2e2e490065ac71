//! The language model behind one small trait. voxd builds the prompts (the
//! `ask` command, RAG) and an [`Llm`] turns a prompt into streamed text. The
//! local backend runs llama.cpp in the `voxd-llm` worker through the engine
//! host; a remote backend (an OpenAI-compatible server) can implement the
//! same trait. This module owns the types of that contract; those that the
//! worker's requests and replies carry too ([`Prompt`], [`ModelInfo`],
//! [`GenerateStats`], ...) are `voxd_proto::llm`'s, re-exported here.
//! [`local`] is the llama.cpp backend.

pub mod local;

pub use local::LocalLlm;
pub use voxd_proto::llm::{
    ChatMessage, ChatRole, Finish, GenerateStats, ModelInfo, Prompt, PromptFormat,
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorKind, Kind};

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

/// What `status` shows of the language model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LlmStatus {
    /// The model, once loaded.
    pub model: Option<ModelInfo>,
    /// Figures of the last finished reply.
    pub last_reply: Option<GenerateStats>,
}

/// Why a generation failed.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error("the model {model} has no chat template; use a completion prompt or set engines.llm.chat_template")]
    NoChatTemplate { model: String },
    #[error("no language model is installed for this profile; run `voxd models pull`")]
    NoModel,
    /// The model file is missing, not GGUF, or corrupt; the text names it.
    #[error("cannot load the language model: {0}")]
    Load(String),
    /// The caller went away (the token receiver closed).
    #[error("generation cancelled")]
    Cancelled,
    #[error("language model failed: {0}")]
    Model(String),
}

impl Kind for LlmError {
    fn kind(&self) -> ErrorKind {
        match self {
            LlmError::Engine(e) => e.kind(),
            LlmError::NoChatTemplate { .. } => ErrorKind::NoChatTemplate,
            LlmError::NoModel => ErrorKind::NoModel,
            LlmError::Load(_) => ErrorKind::ModelLoadFailed,
            LlmError::Cancelled => ErrorKind::Cancelled,
            LlmError::Model(_) => ErrorKind::ModelFailed,
        }
    }
}

/// A language model backend.
#[async_trait]
pub trait Llm: Send + Sync {
    /// The loaded model (loading it if needed).
    async fn info(&self) -> Result<ModelInfo, LlmError>;

    /// Loads the model afresh: `model` (a GGUF path) or else the configured
    /// one, looked up again (e.g. after `voxd models pull`). Requests wait
    /// for the swap; the daemon keeps running.
    async fn reload(&self, model: Option<std::path::PathBuf>) -> Result<ModelInfo, LlmError>;

    /// The model and the last reply's figures, without loading anything.
    fn status(&self) -> LlmStatus;

    /// A hint that a request is likely soon (the wake word was heard):
    /// load the model now if that costs nothing else. The default does
    /// nothing (a backend with nothing to load).
    async fn warm(&self) -> Result<(), LlmError> {
        Ok(())
    }

    /// Generates text, sending each piece to `tokens` as it is produced, and
    /// returns the figures once done. Dropping the future cancels generation
    /// promptly; a closed `tokens` receiver does too.
    async fn generate(
        &self,
        request: GenerateRequest,
        tokens: mpsc::Sender<String>,
    ) -> Result<GenerateStats, LlmError>;
}

/// Runs `request` on `llm`, handing each piece of text to `on_piece` as it
/// is produced, and returns the whole text with the figures. Cancelling
/// `cancel` stops generation (the request is dropped, which cancels it in
/// the backend) and returns [`LlmError::Cancelled`]. The one streaming loop
/// every caller uses.
pub async fn stream(
    llm: &dyn Llm,
    request: GenerateRequest,
    cancel: &CancellationToken,
    mut on_piece: impl FnMut(&str),
) -> Result<(String, GenerateStats), LlmError> {
    let (tx, mut rx) = mpsc::channel::<String>(PIECES);
    let generation = llm.generate(request, tx);
    tokio::pin!(generation);
    let mut text = String::new();
    let mut take = |piece: String| {
        text.push_str(&piece);
        on_piece(&piece);
    };
    let stats = loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(LlmError::Cancelled),
            Some(piece) = rx.recv() => take(piece),
            result = &mut generation => {
                // Drain what was produced before the end.
                while let Ok(piece) = rx.try_recv() {
                    take(piece);
                }
                break result?;
            }
        }
    };
    Ok((text, stats))
}

/// Token pieces buffered between a model and its caller.
const PIECES: usize = 64;
