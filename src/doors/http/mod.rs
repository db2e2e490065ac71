//! The HTTP API (`[http] listen`, off by default): the assistant in the two
//! dialects local-AI clients speak, plus the daemon's health and metrics.
//!
//! - `openai.rs`: `/v1/models`, `/v1/chat/completions`, `/v1/completions`,
//!   `/v1/embeddings` (the `openai` SDK, Open WebUI, scripts); `audio.rs`:
//!   `/v1/audio/transcriptions` and `/v1/audio/speech`;
//! - `ollama.rs`: `/api/version`, `/api/tags`, `/api/show`, `/api/chat`,
//!   `/api/generate`, `/api/embed`, `/api/pull` (Home Assistant's Ollama
//!   integration, the `ollama` SDK);
//! - `voxd.rs`: voxd's own commands and events under `/v1/voxd/`;
//! - `health.rs`: `/health` (no token needed) and `/metrics`;
//! - `chat.rs`: what both chat dialects share; `stream.rs`: streamed
//!   bodies that stop the work when the client goes away;
//! - `token.rs`: the bearer token; `error.rs`: errors in each dialect's
//!   shape.
//!
//! Routing, extraction, body limits and CORS come from axum and tower-http
//! (the hyper/tower stack voxd's other HTTP already used). The accept loop
//! is voxd's own, as in the other doors: it caps connections (answering
//! 503 past the cap) and gives hyper a header-read timeout, which
//! `axum::serve` does not expose.
//!
//! Security: loopback unless the user binds elsewhere, and then only with a
//! token; with a token, every endpoint but `/health` requires it.

mod audio;
mod chat;
mod error;
mod health;
mod ollama;
mod openai;
mod stream;
pub mod token;
mod voxd;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;

pub use error::HttpError;
use error::{Dialect, Failure};
use token::Token;

use crate::assistant::Assistant;
use crate::config::{Config, HttpConfig};
use crate::doors::commands::Context;

/// A bound, not yet serving, HTTP API.
pub struct Bound {
    listener: TcpListener,
    pub addr: SocketAddr,
    token: Option<Token>,
}

/// Where the API listens: `http.listen`, else the deprecated
/// `metrics.listen` (with a warning); empty: off.
fn listen_address(config: &Config) -> Result<Option<String>, HttpError> {
    let http = config.http.listen.trim();
    let metrics = config.metrics.listen.trim();
    match (http.is_empty(), metrics.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Ok(Some(http.to_string())),
        (true, false) => {
            tracing::warn!(
                listen = metrics,
                "metrics.listen is deprecated: the HTTP API serves /metrics and /health; set http.listen instead"
            );
            Ok(Some(metrics.to_string()))
        }
        (false, false) if http == metrics => Ok(Some(http.to_string())),
        (false, false) => Err(HttpError::TwoAddresses {
            http: http.into(),
            metrics: metrics.into(),
        }),
    }
}

/// Binds the API `config` asks for, or `None` when it is off. A
/// non-loopback address needs a token.
pub async fn bind(config: &Config) -> Result<Option<Bound>, HttpError> {
    let Some(listen) = listen_address(config)? else {
        return Ok(None);
    };
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| HttpError::BadAddress(listen.clone()))?;
    let path = token::path(&config.http)?;
    let token = token::load(&path)?;
    if !addr.ip().is_loopback() {
        if token.is_none() {
            return Err(HttpError::RemoteWithoutToken { addr, path });
        }
        tracing::warn!(%addr, "the HTTP API listens beyond this machine (a bearer token is required)");
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let addr = listener.local_addr().unwrap_or(addr);
    Ok(Some(Bound {
        listener,
        addr,
        token,
    }))
}

/// What every handler reads: the assistant and the names it answers to.
#[derive(Clone)]
pub struct Api {
    /// The control protocol's context, for `/v1/voxd/`.
    ctx: Arc<Context>,
    assistant: Arc<Assistant>,
    /// The raw language model's name, when one is installed.
    raw_model: Option<String>,
    /// Unix seconds the API started (the models' `created`).
    started: u64,
    ids: Arc<AtomicU64>,
}

impl Api {
    /// The model names a client may use: `voxd`, then the raw model.
    fn models(&self) -> Vec<String> {
        std::iter::once(chat::VOXD.to_string())
            .chain(self.raw_model.clone())
            .collect()
    }

    /// The model `name` (Ollama's `:latest` tag allowed) refers to.
    fn model(&self, dialect: Dialect, name: &str) -> Result<chat::Model, Failure> {
        let bare = name.strip_suffix(":latest").unwrap_or(name);
        if bare == chat::VOXD {
            Ok(chat::Model::Voxd)
        } else if self.raw_model.as_deref() == Some(bare) {
            Ok(chat::Model::Raw)
        } else {
            Err(Failure::unknown_model(dialect, name, &self.models()))
        }
    }

    /// Embeddings by the notes' embedder, which answers to its own id and
    /// to `voxd`; at most [`MAX_EMBED_INPUTS`] texts.
    async fn embed(
        &self,
        dialect: Dialect,
        model: &str,
        texts: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, Failure> {
        let embedder = self.assistant.rag.embedder().map(str::to_string);
        let bare = model.strip_suffix(":latest").unwrap_or(model);
        if bare != chat::VOXD && embedder.as_deref() != Some(bare) {
            let known: Vec<String> = std::iter::once(chat::VOXD.to_string())
                .chain(embedder)
                .collect();
            return Err(Failure::unknown_model(dialect, model, &known));
        }
        if texts.is_empty() || texts.len() > MAX_EMBED_INPUTS {
            return Err(Failure::bad_request(
                dialect,
                format!("`input` must hold 1 to {MAX_EMBED_INPUTS} texts"),
            ));
        }
        self.assistant
            .rag
            .embed(texts)
            .await
            .map_err(|e| Failure::from_api(dialect, e.into()))
    }

    /// A new response id, `<prefix>-<n>`.
    fn id(&self, prefix: &str) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{:x}{n:04x}", self.started)
    }
}

/// Handlers that need only the assistant (health, metrics) take it alone.
impl axum::extract::FromRef<Api> for Arc<Assistant> {
    fn from_ref(api: &Api) -> Arc<Assistant> {
        api.assistant.clone()
    }
}

/// Texts one embeddings request may hold.
const MAX_EMBED_INPUTS: usize = 256;

/// The routes, with their limits, CORS and token check.
fn router(api: Api, cfg: &HttpConfig, token: Option<Token>) -> Router {
    let v1 = Router::new()
        .route("/v1/models", get(openai::models))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/audio/transcriptions", post(audio::transcriptions))
        .route("/v1/audio/speech", post(audio::speech))
        .route("/v1/voxd/events", get(voxd::events))
        .route("/v1/voxd/{command}", post(voxd::command).get(voxd::command));
    let ollama = Router::new()
        .route("/api/version", get(ollama::version))
        .route("/api/tags", get(ollama::tags))
        .route("/api/show", post(ollama::show))
        .route("/api/chat", post(ollama::chat))
        .route("/api/generate", post(ollama::generate))
        .route("/api/embed", post(ollama::embed))
        .route("/api/pull", post(ollama::pull));
    let guarded = v1
        .merge(ollama)
        .route("/metrics", get(health::metrics))
        .layer(middleware::from_fn_with_state(token, authenticate));
    let mut app = Router::new()
        .route("/health", get(health::get))
        .merge(guarded)
        .fallback(not_found)
        .with_state(api)
        .layer(DefaultBodyLimit::max(
            usize::try_from(cfg.max_body_bytes).unwrap_or(usize::MAX),
        ))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
            cfg.body_timeout_secs,
        )));
    if let Some(cors) = cors(&cfg.cors_origins) {
        app = app.layer(cors);
    }
    app
}

/// CORS for the configured origins only; none configured, no CORS headers.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([AUTHORIZATION, axum::http::header::CONTENT_TYPE])
    })
}

/// With a token, a request without it gets 401 in its dialect's shape.
async fn authenticate(
    State(token): State<Option<Token>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if token.admits(given) {
        return next.run(request).await;
    }
    let dialect = dialect_of(request.uri().path());
    let mut response = Failure::new(
        dialect,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        "this voxd needs its HTTP token: send \"Authorization: Bearer <token>\" (see `voxd http token`)",
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer"),
    );
    response
}

fn dialect_of(path: &str) -> Dialect {
    if path.starts_with("/api/") {
        Dialect::Ollama
    } else {
        Dialect::OpenAi
    }
}

async fn not_found(request: Request) -> Failure {
    let path = request.uri().path().to_string();
    Failure::new(
        dialect_of(&path),
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no endpoint {path}: see docs/http.md (e.g. /v1/models, /api/tags, /health)"),
    )
}

/// Serves the API on `bound` until the daemon shuts down; requests in
/// flight then finish (the daemon waits `daemon.shutdown_grace_secs`).
pub async fn serve(bound: Bound, ctx: Arc<Context>) {
    let assistant = ctx.assistant.clone();
    let cfg = assistant.config.config.http.clone();
    let raw_model = {
        let config = assistant.config.config.clone();
        tokio::task::spawn_blocking(move || crate::llm::local::model_id(&config))
            .await
            .ok()
            .flatten()
    };
    let api = Api {
        ctx,
        assistant: assistant.clone(),
        raw_model,
        started: openai::unix_now(),
        ids: Arc::default(),
    };
    let app = router(api, &cfg, bound.token);
    let header_timeout = Duration::from_secs(cfg.header_timeout_secs);
    let connections = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    loop {
        let (stream, peer) = tokio::select! {
            _ = assistant.shutdown.cancelled() => break,
            accepted = bound.listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTP API: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let slot = slots.clone().try_acquire_owned().ok();
        let app = app.clone();
        let shutdown = assistant.shutdown.clone();
        connections.spawn(async move {
            let Some(_slot) = slot else {
                tracing::debug!(%peer, "HTTP API: too many connections; answering 503");
                busy(stream, header_timeout).await;
                return;
            };
            // Without a timer hyper silently skips its header timeout.
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "HTTP API: connection failed");
                    }
                }
                _ = shutdown.cancelled() => {
                    // Finish the request in flight, then close.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    connections.close();
    connections.wait().await;
}

/// Answers one request on a connection past the cap with 503, then closes.
async fn busy(stream: tokio::net::TcpStream, header_timeout: Duration) {
    let service = hyper::service::service_fn(
        |request: hyper::Request<hyper::body::Incoming>| async move {
            let failure = Failure::new(
                dialect_of(request.uri().path()),
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_connections",
                "voxd's HTTP API has http.max_connections clients; retry shortly",
            );
            let body = axum::body::Body::from(failure.body().to_string());
            hyper::Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .header(axum::http::header::CONTENT_TYPE, "application/json")
                .header(axum::http::header::CONNECTION, "close")
                .header(axum::http::header::RETRY_AFTER, "1")
                .body(body)
        },
    );
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(header_timeout * 2, conn).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(http: &str, metrics: &str) -> Config {
        let mut config = Config::builtin();
        config.http.listen = http.into();
        config.metrics.listen = metrics.into();
        config
    }

    #[tokio::test]
    async fn binds_loopback_and_refuses_other_addresses_without_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let with_token = |mut c: Config| {
            c.http.token_file = dir.path().join("http.token");
            c
        };
        assert!(bind(&with_token(config("", ""))).await.unwrap().is_none());
        assert!(matches!(
            bind(&with_token(config("0.0.0.0:0", ""))).await,
            Err(HttpError::RemoteWithoutToken { .. })
        ));
        assert!(matches!(
            bind(&with_token(config("localhost:8088", ""))).await,
            Err(HttpError::BadAddress(_))
        ));
        assert!(matches!(
            bind(&with_token(config("127.0.0.1:1", "127.0.0.1:2"))).await,
            Err(HttpError::TwoAddresses { .. })
        ));
        let old = bind(&with_token(config("", "127.0.0.1:0"))).await.unwrap();
        assert!(old.is_some_and(|b| b.addr.ip().is_loopback()));
        token::create(&dir.path().join("http.token")).unwrap();
        let remote = bind(&with_token(config("0.0.0.0:0", ""))).await.unwrap();
        assert!(remote.is_some_and(|b| b.token.is_some()));
    }
}
