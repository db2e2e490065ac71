//! [`Remote`]: the [`Llm`] on another machine's inference server, for a
//! board too small for the model. voxd keeps the wake word, speech, the
//! notes and the grounding, and sends the prompt it built, streamed back
//! token by token:
//! - [`openai`]: an OpenAI-compatible server (llama-server, vLLM):
//!   `/v1/chat/completions`, or `/v1/completions` for voxd's completion
//!   prompt, as server-sent events;
//! - [`ollama`]: `/api/chat`, or `/api/generate` with `raw`, as NDJSON.
//!
//! The server's answer is read as bounded lines (`tokio_util`'s
//! `LinesCodec`): a line over [`MAX_LINE`], invalid UTF-8, a malformed
//! event, an HTTP error or a stream cut short is a clear [`LlmError`],
//! never a hang. A server that accepts the request but sends no token
//! within `engines.llm.first_token_timeout_secs` is
//! [`LlmError::Unreachable`], which [`super::failover`] answers by
//! falling back. Dropping the generation future drops the response, which
//! closes the connection: llama-server stops generating.

pub mod ollama;
pub mod openai;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};
use tokio_util::io::StreamReader;

use super::{GenerateRequest, GenerateStats, Llm, LlmError, LlmStatus, ModelInfo, PromptFormat};
use crate::config::{LlmBackend, LlmEngineConfig, RemotePromptFormat};

/// The longest line voxd reads from a server (one event, one JSON object).
pub const MAX_LINE: usize = 1 << 20;

/// How long discovering the server's model (its health check) may take,
/// at most (the first-token timeout, when shorter).
const DISCOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// A language model behind an HTTP API.
pub struct Remote {
    dialect: LlmBackend,
    client: reqwest::Client,
    /// The base URL, without a trailing `/`.
    url: String,
    /// `engines.llm.remote_model`, when set.
    model: Option<String>,
    key: Option<String>,
    first_token: Duration,
    /// The profile's context size (`engines.llm.context`), for Ollama.
    context: u32,
    format: RemotePromptFormat,
    /// What the server serves, once discovered; cleared by a failure, so
    /// that the next request checks the server again first.
    info: tokio::sync::Mutex<Option<ModelInfo>>,
    status: Mutex<LlmStatus>,
}

impl Remote {
    /// The remote backend `dialect` configured by `cfg`. Fails on a
    /// missing URL or an unreadable key file; logs plain `http` to another
    /// host, and a key file others can read.
    pub fn new(dialect: LlmBackend, cfg: &LlmEngineConfig) -> Result<Remote, LlmError> {
        let url = cfg.url.trim().trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&url).map_err(|e| {
            LlmError::Config(format!(
                "engines.llm.url {:?} is not a URL ({e}); e.g. http://gpu-box:8080/v1",
                cfg.url
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(LlmError::Config(format!(
                "engines.llm.url must be http:// or https://, not {}",
                parsed.scheme()
            )));
        }
        if parsed.scheme() == "http" && !is_loopback(&parsed) {
            tracing::warn!(url = %url, "the remote language model is reached over plain http: prompts (your question and notes) cross the network unencrypted");
        }
        let key = api_key(dialect, &cfg.api_key_file)?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| LlmError::Config(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Remote {
            dialect,
            client,
            url,
            model: Some(cfg.remote_model.clone()).filter(|m| !m.is_empty()),
            key,
            first_token: Duration::from_secs(cfg.first_token_timeout_secs.max(1)),
            context: cfg.context,
            format: cfg.prompt_format,
            info: tokio::sync::Mutex::new(None),
            status: Mutex::new(LlmStatus::default()),
        })
    }

    /// The base URL, as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, LlmStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request to `path` under the base URL, with the key if any.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.url));
        match &self.key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// Sends `request`, failing as [`LlmError::Unreachable`] when the server
    /// cannot be reached or answers with an HTTP error.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, LlmError> {
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        Err(self.down(format!("HTTP {status}: {}", body.trim())))
    }

    /// [`Remote::send`] for a generation, started at `started`: the
    /// server's headers must come within the first-token timeout too.
    async fn send_generation(
        &self,
        request: reqwest::RequestBuilder,
        started: Instant,
    ) -> Result<reqwest::Response, LlmError> {
        tokio::time::timeout(self.first_token, self.send(request))
            .await
            .map_err(|_| self.no_first_token(started))?
    }

    fn no_first_token(&self, started: Instant) -> LlmError {
        self.down(format!(
            "no first token within {:.0} s (engines.llm.first_token_timeout_secs)",
            started.elapsed().as_secs_f64()
        ))
    }

    fn unreachable(&self, e: &reqwest::Error) -> LlmError {
        // reqwest's message says what failed; its source says why.
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        self.down(reason)
    }

    fn down(&self, reason: String) -> LlmError {
        LlmError::Unreachable {
            url: self.url.clone(),
            reason,
        }
    }

    /// What the server serves: its model and whether that model has a chat
    /// template. This is the health check of a server that failed before.
    async fn discover(&self) -> Result<ModelInfo, LlmError> {
        let within = DISCOVER_TIMEOUT.min(self.first_token);
        let found = tokio::time::timeout(within, async {
            match self.dialect {
                LlmBackend::Ollama => ollama::discover(self).await,
                _ => openai::discover(self).await,
            }
        })
        .await
        .map_err(|_| self.down(format!("no answer within {} s", within.as_secs())))??;
        let prompt_format = match self.format {
            RemotePromptFormat::Chat => PromptFormat::ChatTemplate,
            RemotePromptFormat::Completion => PromptFormat::Completion,
            RemotePromptFormat::Auto => found.format,
        };
        Ok(ModelInfo {
            name: found.model,
            path: self.url.clone(),
            quantization: None,
            parameters: None,
            context: found.context,
            prompt_format,
            chat_template: (prompt_format == PromptFormat::ChatTemplate).then(|| "server".into()),
        })
    }

    /// The model requests name: the configured one, else the discovered one.
    async fn model(&self) -> Result<String, LlmError> {
        Ok(self.info().await?.name)
    }

    /// Reads `response` as lines, handing each to `parse` until it says
    /// the stream ended. The first line must come within the first-token
    /// timeout.
    async fn read_lines(
        &self,
        response: reqwest::Response,
        mut parse: impl FnMut(&str) -> Result<Option<Piece>, LlmError>,
        tokens: &mpsc::Sender<String>,
        started: Instant,
    ) -> Result<GenerateStats, LlmError> {
        let mut lines = lines(response.bytes_stream());
        let mut first_token_ms = None;
        let mut generated = 0u32;
        loop {
            let next = match first_token_ms {
                None => {
                    let left = self.first_token.saturating_sub(started.elapsed());
                    tokio::time::timeout(left, lines.next())
                        .await
                        .map_err(|_| self.no_first_token(started))?
                }
                Some(_) => lines.next().await,
            };
            let line = match next {
                Some(Ok(line)) => line,
                Some(Err(e)) => return Err(self.broken(&e)),
                None => {
                    return Err(LlmError::Remote(format!(
                        "{} ended the stream before it said it was done",
                        self.url
                    )))
                }
            };
            match parse(&line)? {
                None => {}
                Some(Piece::Text(text)) => {
                    if text.is_empty() {
                        continue;
                    }
                    first_token_ms.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1e3);
                    generated += 1;
                    if tokens.send(text).await.is_err() {
                        return Err(LlmError::Cancelled);
                    }
                }
                Some(Piece::Done(mut stats)) => {
                    let elapsed = started.elapsed().as_secs_f64() * 1e3;
                    stats.first_token_ms = first_token_ms.unwrap_or(elapsed);
                    if stats.generated_tokens == 0 {
                        stats.generated_tokens = generated;
                    }
                    if stats.tokens_per_sec == 0.0 && elapsed > stats.first_token_ms {
                        stats.tokens_per_sec = f64::from(stats.generated_tokens.saturating_sub(1))
                            / ((elapsed - stats.first_token_ms) / 1e3);
                    }
                    self.lock_status().last_reply = Some(stats.clone());
                    return Ok(stats);
                }
            }
        }
    }

    fn broken(&self, e: &LinesCodecError) -> LlmError {
        let why = match e {
            LinesCodecError::MaxLineLengthExceeded => {
                format!("a line longer than {} KiB", MAX_LINE / 1024)
            }
            LinesCodecError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                "text that is not UTF-8".to_string()
            }
            LinesCodecError::Io(e) => format!("a broken stream ({e})"),
        };
        LlmError::Remote(format!("{} sent {why}", self.url))
    }
}

/// What one line of a streamed answer carried.
pub enum Piece {
    Text(String),
    /// The end, with what the server said of it.
    Done(GenerateStats),
}

/// The server's model, as discovered.
pub struct Found {
    pub model: String,
    pub format: PromptFormat,
    /// Context size in tokens, when the server says; else 0.
    pub context: u32,
}

/// The body's lines, at most [`MAX_LINE`] bytes each.
fn lines(
    body: impl Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
) -> FramedRead<impl tokio::io::AsyncRead, LinesCodec> {
    let reader = StreamReader::new(body.map_err(std::io::Error::other));
    FramedRead::new(reader, LinesCodec::new_with_max_length(MAX_LINE))
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// The API key: `file`'s first line (warned about when others can read
/// it), else `$OPENAI_API_KEY` for an OpenAI server, else none.
fn api_key(dialect: LlmBackend, file: &Path) -> Result<Option<String>, LlmError> {
    if file.as_os_str().is_empty() {
        let env = (dialect == LlmBackend::OpenAi)
            .then(|| std::env::var("OPENAI_API_KEY").ok())
            .flatten();
        return Ok(env.filter(|k| !k.trim().is_empty()));
    }
    let text = std::fs::read_to_string(file).map_err(|e| {
        LlmError::Config(format!(
            "cannot read engines.llm.api_key_file {}: {e}",
            file.display()
        ))
    })?;
    if let Ok(meta) = std::fs::metadata(file) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %file.display(), "the API key file can be read by others; run `chmod 600` on it");
        }
    }
    let key = text.lines().next().unwrap_or("").trim().to_string();
    if key.is_empty() {
        return Err(LlmError::Config(format!(
            "engines.llm.api_key_file {} is empty",
            file.display()
        )));
    }
    Ok(Some(key))
}

#[async_trait]
impl Llm for Remote {
    async fn info(&self) -> Result<ModelInfo, LlmError> {
        let mut info = self.info.lock().await;
        if let Some(info) = info.as_ref() {
            return Ok(info.clone());
        }
        let found = self.discover().await?;
        self.lock_status().model = Some(found.clone());
        *info = Some(found.clone());
        Ok(found)
    }

    async fn reload(&self, model: Option<std::path::PathBuf>) -> Result<ModelInfo, LlmError> {
        if model.is_some() {
            return Err(LlmError::Config(
                "a remote model is chosen with engines.llm.remote_model, not a file".into(),
            ));
        }
        *self.info.lock().await = None;
        self.info().await
    }

    fn status(&self) -> LlmStatus {
        self.lock_status().clone()
    }

    async fn generate(
        &self,
        request: GenerateRequest,
        tokens: mpsc::Sender<String>,
    ) -> Result<GenerateStats, LlmError> {
        let model = self.model().await?;
        let started = Instant::now();
        let result = match self.dialect {
            LlmBackend::Ollama => ollama::generate(self, &model, request, &tokens, started).await,
            _ => openai::generate(self, &model, request, &tokens, started).await,
        };
        if let Err(LlmError::Unreachable { .. } | LlmError::Remote(_)) = &result {
            // Check the server again before the next request.
            *self.info.lock().await = None;
        }
        result
    }
}
