//! The language model behind one small trait. voxd builds the prompts (the
//! `ask` command, RAG) and an [`Llm`] turns a prompt into streamed text. The
//! local backend runs llama.cpp in the `voxd-llm` worker through the engine
//! host; a remote backend (an OpenAI-compatible server) can implement the
//! same trait. This module owns the types of that contract; those that the
//! worker's requests and replies carry too ([`Prompt`], [`ModelInfo`],
//! [`GenerateStats`], ...) are `voxd_proto::llm`'s, re-exported here.
//! [`local`] is the llama.cpp backend, [`remote`] an inference server on
//! another machine (`engines.llm.backend`), and [`failover`] an ordered
//! list of backends (`engines.llm.fallback`); [`from_config`] builds what
//! the configuration asks for.

pub mod failover;
pub mod local;
pub mod remote;

pub use failover::{Backend, BackendStatus, Failover};
pub use local::LocalLlm;
pub use remote::Remote;
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
    /// With a remote backend or a fallback: each backend's state, in the
    /// order they are tried.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<BackendStatus>,
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
    /// `engines.llm` cannot be used as configured; the text says which key.
    #[error("{0}")]
    Config(String),
    /// A remote server cannot be reached, answers with an HTTP error, or
    /// sends no first token in time.
    #[error("the language model server {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// A remote server broke off or sent something voxd cannot read.
    #[error("the language model server failed: {0}")]
    Remote(String),
    /// Every backend is resting after a failure.
    #[error("no language model backend is available now: {0}")]
    Unavailable(String),
}

impl Kind for LlmError {
    fn kind(&self) -> ErrorKind {
        match self {
            LlmError::Engine(e) => e.kind(),
            LlmError::NoChatTemplate { .. } => ErrorKind::NoChatTemplate,
            LlmError::NoModel => ErrorKind::NoModel,
            LlmError::Load(_) => ErrorKind::ModelLoadFailed,
            LlmError::Cancelled => ErrorKind::Cancelled,
            LlmError::Model(_) | LlmError::Remote(_) => ErrorKind::ModelFailed,
            LlmError::Config(_) => ErrorKind::InvalidParams,
            LlmError::Unreachable { .. } | LlmError::Unavailable(_) => ErrorKind::EngineFailed,
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
pub(crate) const PIECES: usize = 64;

/// The language model `config` asks for: the local worker alone, or the
/// backends of `engines.llm.backend` and `engines.llm.fallback` in order.
pub fn from_config(
    engines: crate::engine::Host,
    config: &crate::config::Config,
) -> Result<std::sync::Arc<dyn Llm>, LlmError> {
    use crate::config::LlmBackend;
    use std::sync::Arc;
    let cfg = &config.engines.llm;
    let mut order = vec![cfg.backend];
    for &fallback in &cfg.fallback {
        if order.contains(&fallback) {
            return Err(LlmError::Config(format!(
                "engines.llm.fallback names {} twice (with engines.llm.backend)",
                fallback.name()
            )));
        }
        order.push(fallback);
    }
    let local = || Arc::new(LocalLlm::new(engines.clone(), config));
    if order == [LlmBackend::Local] {
        return Ok(local());
    }
    let backends = order
        .into_iter()
        .map(|backend| match backend {
            LlmBackend::Local => Ok(Backend::new("local", None, local())),
            remote => {
                let llm = Remote::new(remote, cfg)?;
                let url = Some(llm.url().to_string());
                Ok(Backend::new(remote.name(), url, Arc::new(llm)))
            }
        })
        .collect::<Result<Vec<_>, LlmError>>()?;
    let retry = std::time::Duration::from_secs(cfg.retry_secs);
    Ok(Arc::new(Failover::new(backends, retry)))
}
