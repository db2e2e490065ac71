//! The optional HTTP endpoint (`metrics.listen`, off by default): `GET
//! /metrics` (the same text as `voxd metrics`) and `GET /health` (is the
//! daemon up, and in what state is each engine). Loopback only unless
//! `metrics.allow_remote` is set. It owns its listener and connections and
//! reads the daemon's state through the [`Assistant`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::assistant::Assistant;
use crate::config::MetricsConfig;
use crate::engine::{EngineState, EngineStatus};
use crate::metrics::{state_name, CONTENT_TYPE as METRICS_CONTENT_TYPE};

/// Why the endpoint cannot listen.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("metrics.listen {0:?} is not an address: use ip:port, e.g. \"127.0.0.1:9477\"")]
    BadAddress(String),
    #[error("metrics.listen {0} is not a loopback address; the endpoint stays on this machine unless metrics.allow_remote = true")]
    Remote(SocketAddr),
    #[error("cannot listen on {addr} for metrics: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Binds the endpoint `cfg` asks for, or `None` when it is off.
pub async fn bind(cfg: &MetricsConfig) -> Result<Option<TcpListener>, HttpError> {
    let listen = cfg.listen.trim();
    if listen.is_empty() {
        return Ok(None);
    }
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| HttpError::BadAddress(listen.to_owned()))?;
    if !addr.ip().is_loopback() && !cfg.allow_remote {
        return Err(HttpError::Remote(addr));
    }
    TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|source| HttpError::Bind { addr, source })
}

/// Connections served at once; more are closed at once (a scraper needs
/// one). Any local user can reach a loopback port, so this and the
/// timeouts below keep one from holding the daemon's file descriptors.
const MAX_CONNECTIONS: usize = 64;
/// A request's headers must arrive within this (slowloris).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// No connection lives longer, keep-alive included.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Serves HTTP on `listener` until the daemon shuts down.
pub async fn serve(listener: TcpListener, assistant: Arc<Assistant>) {
    let connections = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = tokio::select! {
            _ = assistant.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "metrics endpoint: {MAX_CONNECTIONS} connections open; closing this one");
            continue;
        };
        let assistant = assistant.clone();
        connections.spawn(async move {
            let _slot = slot;
            let service = service_fn(|req| {
                let assistant = assistant.clone();
                async move { Ok::<_, Infallible>(respond(&req, &assistant)) }
            });
            // Without a timer hyper silently skips its header timeout.
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = tokio::time::timeout(CONNECTION_LIFETIME, conn) => match result {
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "metrics endpoint: connection failed"),
                    Err(_) => tracing::debug!(%peer, "metrics endpoint: connection lived too long; closed"),
                    Ok(Ok(())) => {}
                },
                _ = assistant.shutdown.cancelled() => {}
            }
        });
    }
    connections.close();
    connections.wait().await;
}

fn respond(req: &Request<Incoming>, assistant: &Assistant) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/health") {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /metrics or /health\n".into(),
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET\n".into(),
        );
        response
            .headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if path == "/metrics" {
        let text = assistant.metrics.render(&assistant.metrics_sample());
        return reply(StatusCode::OK, METRICS_CONTENT_TYPE, text);
    }
    let (status, body) = health(
        &assistant.engines.status(),
        assistant.shutdown.is_cancelled(),
        assistant.uptime(),
    );
    reply(status, "application/json", format!("{body}\n"))
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// The `/health` answer. `ok` (200): serving. `degraded` (200): serving,
/// but an engine crashed and waits out its restart backoff. `failed` (503):
/// an engine failed to start too often and stays down until someone starts
/// it (`voxd engine start <name>`). `stopping` (503): shutting down.
fn health(
    engines: &[EngineStatus],
    stopping: bool,
    uptime: Duration,
) -> (StatusCode, serde_json::Value) {
    let any = |state| engines.iter().any(|e| e.state == state);
    let (status, code) = if stopping {
        ("stopping", StatusCode::SERVICE_UNAVAILABLE)
    } else if any(EngineState::Failed) {
        ("failed", StatusCode::SERVICE_UNAVAILABLE)
    } else if any(EngineState::Backoff) {
        ("degraded", StatusCode::OK)
    } else {
        ("ok", StatusCode::OK)
    };
    let states: serde_json::Map<_, _> = engines
        .iter()
        .map(|e| (e.name.clone(), json!(state_name(e.state))))
        .collect();
    (
        code,
        json!({
            "status": status,
            "uptime_secs": uptime.as_secs_f64(),
            "engines": states,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(name: &str, state: EngineState) -> EngineStatus {
        EngineStatus {
            name: name.into(),
            state,
            pid: None,
            rss_bytes: None,
            memory_mb: 1,
            measured_mb: None,
            restarts: 0,
            last_error: None,
            queued: 0,
            idle_secs: None,
        }
    }

    #[test]
    fn health_reflects_engine_states_and_shutdown() {
        let up = Duration::from_secs(1);
        let ready = [
            engine("stt", EngineState::Ready),
            engine("llm", EngineState::Stopped),
        ];
        let (code, body) = health(&ready, false, up);
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body["status"], "ok");
        assert_eq!(body["engines"]["llm"], "stopped");

        let crashed = [engine("stt", EngineState::Backoff)];
        let (code, body) = health(&crashed, false, up);
        assert_eq!(
            (code, body["status"].as_str()),
            (StatusCode::OK, Some("degraded"))
        );

        let failed = [
            engine("stt", EngineState::Backoff),
            engine("llm", EngineState::Failed),
        ];
        let (code, body) = health(&failed, false, up);
        assert_eq!(
            (code, body["status"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("failed"))
        );

        let (code, body) = health(&ready, true, up);
        assert_eq!(
            (code, body["status"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("stopping"))
        );
    }

    #[tokio::test]
    async fn refuses_remote_addresses_unless_allowed() {
        let cfg = |listen: &str, allow_remote| MetricsConfig {
            listen: listen.into(),
            allow_remote,
        };
        assert!(bind(&cfg("", false)).await.unwrap().is_none());
        assert!(matches!(
            bind(&cfg("0.0.0.0:0", false)).await,
            Err(HttpError::Remote(_))
        ));
        assert!(matches!(
            bind(&cfg("localhost:9477", false)).await,
            Err(HttpError::BadAddress(_))
        ));
        assert!(bind(&cfg("127.0.0.1:0", false)).await.unwrap().is_some());
        assert!(
            bind(&cfg("[::1]:0", false))
                .await
                .is_ok_and(|l| l.is_some())
                || std::net::TcpListener::bind("[::1]:0").is_err()
        );
        assert!(bind(&cfg("0.0.0.0:0", true)).await.unwrap().is_some());
    }
}
