//! HTTP errors: why the API cannot listen ([`HttpError`]), and a failed
//! request ([`Failure`]) with its status code, written in the shape of the
//! dialect the client speaks: OpenAI's `{"error": {message, type, code}}`
//! or Ollama's `{"error": "message"}`.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::token::TokenError;
use crate::api::{ApiError, ErrorCode};

/// Why the HTTP API cannot listen.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("http.listen {0:?} is not an address: use ip:port, e.g. \"127.0.0.1:8088\"")]
    BadAddress(String),
    #[error("http.listen = {http:?} and the deprecated metrics.listen = {metrics:?} differ: keep only http.listen")]
    TwoAddresses { http: String, metrics: String },
    #[error("http.listen {addr} is not a loopback address, and there is no token at {path}: run `voxd http token` so that clients must authenticate, or listen on 127.0.0.1")]
    RemoteWithoutToken { addr: SocketAddr, path: PathBuf },
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("cannot listen on {addr} for HTTP: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The API dialect a request came in, which decides the error's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Ollama,
}

/// A request that failed: its status, a machine-readable code and what to
/// do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub dialect: Dialect,
}

impl Failure {
    pub fn new(
        dialect: Dialect,
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Failure {
        Failure {
            status,
            code,
            message: message.into(),
            dialect,
        }
    }

    /// 400: the request is wrong; the message says how.
    pub fn bad_request(dialect: Dialect, message: impl Into<String>) -> Failure {
        Failure::new(dialect, StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404 for a model no endpoint serves.
    pub fn unknown_model(dialect: Dialect, model: &str, known: &[String]) -> Failure {
        Failure::new(
            dialect,
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!(
                "no model {model:?}: this server has {}",
                known
                    .iter()
                    .map(|m| format!("{m:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    }

    /// A core error, with the status its kind calls for.
    pub fn from_api(dialect: Dialect, e: ApiError) -> Failure {
        let status = match e.code {
            ErrorCode::ParseError
            | ErrorCode::InvalidRequest
            | ErrorCode::InvalidParams
            | ErrorCode::BadAudio
            | ErrorCode::NoChatTemplate => StatusCode::BAD_REQUEST,
            ErrorCode::UnknownCommand | ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::LineTooLong => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ShuttingDown
            | ErrorCode::TooManyConnections
            | ErrorCode::NoModel
            | ErrorCode::EngineFailed
            | ErrorCode::ModelLoadFailed => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ModelFailed | ErrorCode::Cancelled | ErrorCode::Internal => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Failure::new(dialect, status, e.code.as_str(), e.message)
    }

    /// A body that is not the JSON the endpoint takes: 413 when too large,
    /// 415 without a JSON content type, else 400 with serde's reason.
    pub fn from_json(dialect: Dialect, rejection: JsonRejection) -> Failure {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "invalid_json",
        };
        Failure::new(dialect, status, code, rejection.body_text())
    }

    /// The error as the dialect writes it.
    pub fn body(&self) -> serde_json::Value {
        match self.dialect {
            Dialect::OpenAi => json!({
                "error": {
                    "message": self.message,
                    "type": error_type(self.status),
                    "code": self.code,
                    "param": null,
                }
            }),
            Dialect::Ollama => json!({ "error": self.message }),
        }
    }
}

/// OpenAI's `type` for a status.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_has_its_own_shape() {
        let e = ApiError::new(ErrorCode::EngineFailed, "the stt worker crashed");
        let openai = Failure::from_api(Dialect::OpenAi, e.clone());
        assert_eq!(openai.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            openai.body(),
            json!({"error": {"message": "the stt worker crashed", "type": "server_error",
                             "code": "engine_failed", "param": null}})
        );
        let ollama = Failure::from_api(Dialect::Ollama, e);
        assert_eq!(ollama.body(), json!({"error": "the stt worker crashed"}));
        let bad = Failure::from_api(Dialect::OpenAi, ApiError::invalid_params("no `input`"));
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(bad.body()["error"]["type"], "invalid_request_error");
    }
}
