//! `GET /health` (is the daemon up, and in what state is each engine; no
//! token needed) and `GET /metrics` (the same text as `voxd metrics`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::assistant::Assistant;
use crate::engine::{EngineState, EngineStatus};
use crate::metrics::{state_name, CONTENT_TYPE as METRICS_CONTENT_TYPE};

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "daemon",
    responses((status = 200, description = "Every metric, in the Prometheus/OpenMetrics text format")))]
pub async fn metrics(State(assistant): State<Arc<Assistant>>) -> Response {
    let text = assistant.metrics.render(&assistant.metrics_sample());
    ([(CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response()
}

/// `GET /health`.
#[utoipa::path(get, path = "/health", tag = "daemon",
    responses((status = 200, description = "ok or degraded, with each engine's state"),
        (status = 503, description = "failed (an engine stays down) or stopping")))]
pub async fn get(State(assistant): State<Arc<Assistant>>) -> Response {
    let (status, body) = health(
        &assistant.engines.status(),
        assistant.shutdown.is_cancelled(),
        assistant.uptime(),
    );
    (status, Json(body)).into_response()
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
}
