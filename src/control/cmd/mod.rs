//! One file per control command. [`parse`] turns a request line into a
//! [`Command`]; each command's `apply` runs it against the [`Context`].

mod config;
mod engine;
mod generate;
mod models;
mod ping;
mod reload;
mod shutdown;
mod status;
mod subscribe;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::protocol::{ControlError, ErrorCode, Message};
use super::Context;

pub use config::ConfigCmd;
pub use engine::EngineCmd;
pub use generate::{llm_error, Generate};
pub use models::Models;
pub use ping::Ping;
pub use reload::Reload;
pub use shutdown::Shutdown;
pub use status::Status;
pub use subscribe::Subscribe;

/// Every command a client can send, tagged by `cmd`.
#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    Ping(Ping),
    Status(Status),
    Config(ConfigCmd),
    Engine(EngineCmd),
    Models(Models),
    Generate(Generate),
    Reload(Reload),
    Subscribe(Subscribe),
    Shutdown(Shutdown),
}

/// The names of all commands, for `unknown_command` errors.
pub const NAMES: &[&str] = &[
    "ping",
    "status",
    "config",
    "engine",
    "models",
    "generate",
    "reload",
    "subscribe",
    "shutdown",
];

/// The connection a request arrived on.
pub struct Session {
    /// The connection's outgoing lines.
    pub out: mpsc::Sender<Message>,
    /// Cancelled when the connection closes.
    pub closed: CancellationToken,
}

/// A handler's outcome: a result to send as the reply, or `None` when the
/// handler already sent its reply itself (to stream events after it).
pub type Outcome = Result<Option<Value>, ControlError>;

impl Command {
    pub async fn apply(self, ctx: &Context, session: &Session, id: &Value) -> Outcome {
        match self {
            Command::Ping(cmd) => cmd.apply().map(Some),
            Command::Status(cmd) => cmd.apply(ctx).map(Some),
            Command::Config(cmd) => cmd.apply(ctx).map(Some),
            Command::Engine(cmd) => cmd.apply(ctx).await.map(Some),
            Command::Models(cmd) => cmd.apply(ctx).await.map(Some),
            Command::Generate(cmd) => cmd.apply(ctx, session, id).await.map(Some),
            Command::Reload(cmd) => cmd.apply(ctx).await.map(Some),
            Command::Subscribe(cmd) => cmd.apply(ctx, session, id).await,
            Command::Shutdown(cmd) => cmd.apply(ctx).map(Some),
        }
    }
}

/// Parses a request line into its `id` and command. On failure returns the
/// `id` (when one could be read, else `null`) and the error to reply with.
pub fn parse(line: &str) -> Result<(Value, Command), (Value, ControlError)> {
    let value: Value = serde_json::from_str(line).map_err(|e| {
        (
            Value::Null,
            ControlError::new(ErrorCode::ParseError, format!("invalid JSON: {e}")),
        )
    })?;
    let Value::Object(mut request) = value else {
        return Err((
            Value::Null,
            ControlError::new(
                ErrorCode::InvalidRequest,
                "a request is a JSON object: {\"id\": ..., \"cmd\": \"...\"}",
            ),
        ));
    };
    let id = match request.remove("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id,
        Some(other) => {
            return Err((
                Value::Null,
                ControlError::new(
                    ErrorCode::InvalidRequest,
                    format!("`id` must be a string or a number, not {other}"),
                ),
            ))
        }
        None => {
            return Err((
                Value::Null,
                ControlError::new(ErrorCode::InvalidRequest, "every request needs an `id`"),
            ))
        }
    };
    let name = match request.get("cmd") {
        Some(Value::String(name)) => name.clone(),
        Some(_) => {
            return Err((
                id,
                ControlError::new(ErrorCode::InvalidRequest, "`cmd` must be a string"),
            ))
        }
        None => {
            return Err((
                id,
                ControlError::new(
                    ErrorCode::InvalidRequest,
                    format!("missing `cmd`; one of: {}", NAMES.join(", ")),
                ),
            ))
        }
    };
    if !NAMES.contains(&name.as_str()) {
        return Err((
            id,
            ControlError::new(
                ErrorCode::UnknownCommand,
                format!("unknown command {name:?}; one of: {}", NAMES.join(", ")),
            ),
        ));
    }
    match serde_json::from_value(Value::Object(request)) {
        Ok(command) => Ok((id, command)),
        Err(e) => Err((
            id,
            ControlError::new(ErrorCode::InvalidParams, format!("{name}: {e}")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &str) -> (Value, ErrorCode) {
        let (id, err) = parse(line).unwrap_err();
        (id, err.code)
    }

    #[test]
    fn parses_every_command_and_keeps_the_id() {
        for name in NAMES.iter().filter(|n| !["engine", "generate"].contains(n)) {
            let (id, _) = parse(&format!(r#"{{"id":"a{name}","cmd":"{name}"}}"#)).unwrap();
            assert_eq!(id, Value::from(format!("a{name}")));
        }
        let (id, cmd) = parse(r#"{"id":7,"cmd":"subscribe","events":["engine."]}"#).unwrap();
        assert_eq!(id, Value::from(7));
        assert!(matches!(cmd, Command::Subscribe(s) if s.events == ["engine."]));
        let (_, cmd) = parse(r#"{"id":8,"cmd":"engine","name":"stt","action":"start"}"#).unwrap();
        assert!(matches!(cmd, Command::Engine(_)));
    }

    #[test]
    fn bad_requests_get_precise_codes() {
        assert_eq!(code("{nope"), (Value::Null, ErrorCode::ParseError));
        assert_eq!(code("[1,2]"), (Value::Null, ErrorCode::InvalidRequest));
        assert_eq!(
            code(r#"{"cmd":"ping"}"#),
            (Value::Null, ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code(r#"{"id":{},"cmd":"ping"}"#),
            (Value::Null, ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code(r#"{"id":1}"#),
            (Value::from(1), ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code(r#"{"id":1,"cmd":5}"#),
            (Value::from(1), ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code(r#"{"id":1,"cmd":"fly"}"#),
            (Value::from(1), ErrorCode::UnknownCommand)
        );
        assert_eq!(
            code(r#"{"id":1,"cmd":"subscribe","events":"all"}"#),
            (Value::from(1), ErrorCode::InvalidParams)
        );
        assert_eq!(
            code(r#"{"id":1,"cmd":"engine","name":"stt","action":"explode"}"#),
            (Value::from(1), ErrorCode::InvalidParams)
        );
        assert_eq!(
            code(r#"{"id":1,"cmd":"ping","extra":true}"#),
            (Value::from(1), ErrorCode::InvalidParams)
        );
    }
}
