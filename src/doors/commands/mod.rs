//! The command set that the socket and D-Bus serve: one file per command.
//! [`parse`] turns a request line into a [`Command`]; [`execute`] runs it
//! against the [`Context`] (the assistant, plus the socket's own state);
//! [`call`] is the same without a socket. A handler parses its arguments,
//! calls the assistant or a service, and encodes the result: the logic
//! lives in [`crate::assistant`] and the services.

mod ask;
mod caption;
mod config;
mod dispatch;
mod engine;
mod generate;
mod history;
mod images;
mod listen;
mod metrics;
mod models;
mod notes;
mod ping;
pub mod protocol;
mod rag;
mod relay;
mod reload;
mod respond;
mod say;
mod shutdown;
mod status;
mod stop;
mod subscribe;
mod transcribe;
mod user_commands;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::ask::Ask;
use crate::api::{ApiError, ErrorCode};
use protocol::Message;

pub use caption::Caption;
pub use config::ConfigCmd;
pub use dispatch::{call, counted, execute, open, Context};
pub use engine::EngineCmd;
pub use generate::Generate;
pub use history::{Forget, HistoryCmd};
pub use images::Images;
pub use listen::Listen;
pub use metrics::MetricsCmd;
pub use models::Models;
pub use notes::Notes;
pub use ping::Ping;
pub use rag::RagCmd;
pub use reload::Reload;
pub use respond::Respond;
pub use say::{OpenUtterances, Say};
pub use shutdown::Shutdown;
pub use status::Status;
pub use stop::Stop;
pub use subscribe::Subscribe;
pub use transcribe::Transcribe;
pub use user_commands::CommandsCmd;

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
    Metrics(MetricsCmd),
    Caption(Caption),
    Images(Images),
    Respond(Respond),
    Subscribe(Subscribe),
    Shutdown(Shutdown),
    Say(Say),
    Stop(Stop),
    Transcribe(Transcribe),
    Listen(Listen),
    Ask(Ask),
    Notes(Notes),
    Rag(RagCmd),
    History(HistoryCmd),
    Forget(Forget),
    Commands(CommandsCmd),
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
    "metrics",
    "caption",
    "images",
    "respond",
    "subscribe",
    "shutdown",
    "say",
    "stop",
    "transcribe",
    "listen",
    "ask",
    "notes",
    "rag",
    "history",
    "forget",
    "commands",
];

/// The connection a request arrived on.
pub struct Peer {
    /// The connection's outgoing lines.
    pub out: mpsc::Sender<Message>,
    /// Cancelled when the connection closes.
    pub closed: CancellationToken,
}

/// A handler's outcome: a result to send as the reply, or `None` when the
/// handler already sent its reply itself (to stream events after it).
pub type Outcome = Result<Option<Value>, ApiError>;

impl Command {
    /// The command's name, as in `cmd` and [`NAMES`].
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ping(_) => "ping",
            Command::Status(_) => "status",
            Command::Config(_) => "config",
            Command::Engine(_) => "engine",
            Command::Models(_) => "models",
            Command::Generate(_) => "generate",
            Command::Reload(_) => "reload",
            Command::Metrics(_) => "metrics",
            Command::Subscribe(_) => "subscribe",
            Command::Shutdown(_) => "shutdown",
            Command::Say(_) => "say",
            Command::Stop(_) => "stop",
            Command::Transcribe(_) => "transcribe",
            Command::Listen(_) => "listen",
            Command::Ask(_) => "ask",
            Command::Notes(_) => "notes",
            Command::Rag(_) => "rag",
            Command::History(_) => "history",
            Command::Forget(_) => "forget",
            Command::Caption(_) => "caption",
            Command::Images(_) => "images",
            Command::Respond(_) => "respond",
            Command::Commands(_) => "commands",
        }
    }

    pub async fn apply(self, ctx: &Context, peer: &Peer, id: &Value) -> Outcome {
        match self {
            Command::Ping(cmd) => cmd.apply().map(Some),
            Command::Status(cmd) => cmd.apply(ctx).map(Some),
            Command::Config(cmd) => cmd.apply(ctx).map(Some),
            Command::Engine(cmd) => cmd.apply(ctx).await.map(Some),
            Command::Models(cmd) => cmd.apply(ctx).await.map(Some),
            Command::Generate(cmd) => cmd.apply(ctx, peer, id).await.map(Some),
            Command::Reload(cmd) => cmd.apply(ctx).await.map(Some),
            Command::Metrics(cmd) => cmd.apply(ctx).map(Some),
            Command::Caption(cmd) => cmd.apply(ctx).await.map(Some),
            Command::Images(cmd) => cmd.apply(ctx).await.map(Some),
            Command::Respond(cmd) => cmd.apply(ctx, peer).await.map(Some),
            Command::Subscribe(cmd) => cmd.apply(ctx, peer, id).await,
            Command::Shutdown(cmd) => cmd.apply(ctx).map(Some),
            Command::Say(cmd) => cmd.apply(ctx, peer).await.map(Some),
            Command::Stop(cmd) => cmd.apply(ctx).map(Some),
            Command::Transcribe(cmd) => cmd.apply(ctx, peer, id).await.map(Some),
            Command::Listen(cmd) => cmd.apply(ctx).await.map(Some),
            Command::Ask(args) => ask::apply(args, ctx, peer, id).await.map(Some),
            Command::Notes(cmd) => cmd.apply(ctx).await.map(Some),
            Command::Rag(cmd) => Ok(Some(cmd.apply(ctx))),
            Command::History(cmd) => cmd.apply(ctx).await.map(Some),
            Command::Forget(cmd) => cmd.apply(ctx).await.map(Some),
            Command::Commands(cmd) => cmd.apply(ctx).await.map(Some),
        }
    }
}

/// Parses a request line into its `id` and command. On failure returns the
/// `id` (when one could be read, else `null`) and the error to reply with.
pub fn parse(line: &str) -> Result<(Value, Command), (Value, ApiError)> {
    let value: Value = serde_json::from_str(line).map_err(|e| {
        (
            Value::Null,
            ApiError::new(ErrorCode::ParseError, format!("invalid JSON: {e}")),
        )
    })?;
    let Value::Object(mut request) = value else {
        return Err((
            Value::Null,
            ApiError::new(
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
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("`id` must be a string or a number, not {other}"),
                ),
            ))
        }
        None => {
            return Err((
                Value::Null,
                ApiError::new(ErrorCode::InvalidRequest, "every request needs an `id`"),
            ))
        }
    };
    let name = match request.get("cmd") {
        Some(Value::String(name)) => name.clone(),
        Some(_) => {
            return Err((
                id,
                ApiError::new(ErrorCode::InvalidRequest, "`cmd` must be a string"),
            ))
        }
        None => {
            return Err((
                id,
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("missing `cmd`; one of: {}", NAMES.join(", ")),
                ),
            ))
        }
    };
    if !NAMES.contains(&name.as_str()) {
        return Err((
            id,
            ApiError::new(
                ErrorCode::UnknownCommand,
                format!("unknown command {name:?}; one of: {}", NAMES.join(", ")),
            ),
        ));
    }
    match serde_json::from_value(Value::Object(request)) {
        Ok(command) => Ok((id, command)),
        Err(e) => Err((
            id,
            ApiError::new(ErrorCode::InvalidParams, format!("{name}: {e}")),
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
        let needs_args = [
            "engine",
            "generate",
            "transcribe",
            "listen",
            "ask",
            "notes",
            "forget",
            "caption",
            "images",
            "respond",
            "commands",
        ];
        for name in NAMES.iter().filter(|n| !needs_args.contains(n)) {
            let (id, _) = parse(&format!(r#"{{"id":"a{name}","cmd":"{name}"}}"#)).unwrap();
            assert_eq!(id, Value::from(format!("a{name}")));
        }
        let (id, cmd) = parse(r#"{"id":7,"cmd":"subscribe","events":["engine."]}"#).unwrap();
        assert_eq!(id, Value::from(7));
        assert!(matches!(cmd, Command::Subscribe(s) if s.events == ["engine."]));
        let (_, cmd) = parse(r#"{"id":8,"cmd":"engine","name":"stt","action":"start"}"#).unwrap();
        assert!(matches!(cmd, Command::Engine(_)));
        let (_, cmd) = parse(r#"{"id":9,"cmd":"caption","paths":["/a.png"]}"#).unwrap();
        assert!(matches!(cmd, Command::Caption(c) if c.prompt.is_none()));
        let (_, cmd) = parse(r#"{"id":10,"cmd":"images","action":"list","since":5}"#).unwrap();
        assert!(matches!(
            cmd,
            Command::Images(Images::List { since: Some(5) })
        ));
        let (_, cmd) = parse(r#"{"id":11,"cmd":"images","action":"forget","path":"/a"}"#).unwrap();
        assert!(matches!(cmd, Command::Images(Images::Forget { .. })));
        let (_, cmd) = parse(r#"{"id":9,"cmd":"ask","question":"q","mode":"extractive"}"#).unwrap();
        assert!(
            matches!(cmd, Command::Ask(a) if a.mode == Some(crate::config::AnswerMode::Extractive))
        );
        let (_, cmd) = parse(r#"{"id":10,"cmd":"notes","action":"search","query":"q"}"#).unwrap();
        assert!(matches!(cmd, Command::Notes(_)));
        let (_, cmd) = parse(r#"{"id":11,"cmd":"rag","action":"off"}"#).unwrap();
        assert!(matches!(cmd, Command::Rag(_)));
        assert_eq!(
            code(r#"{"id":12,"cmd":"ask","question":"q","mode":"creative"}"#),
            (Value::from(12), ErrorCode::InvalidParams)
        );
    }

    #[test]
    fn every_command_knows_its_name() {
        let args = |name: &str| match name {
            "engine" => r#","name":"stt","action":"stop""#,
            "generate" => r#","prompt":"Once""#,
            "transcribe" => r#","path":"/a.wav""#,
            "listen" => r#","action":"status""#,
            "ask" => r#","question":"q""#,
            "notes" => r#","action":"status""#,
            "forget" => r#","session":"s""#,
            "caption" => r#","paths":["/a.png"]"#,
            "images" => r#","action":"list""#,
            "respond" => r#","text":"stop""#,
            "commands" => r#","action":"list""#,
            _ => "",
        };
        for name in NAMES {
            let (_, cmd) = parse(&format!(r#"{{"id":1,"cmd":"{name}"{}}}"#, args(name))).unwrap();
            assert_eq!(cmd.name(), *name);
        }
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
            code(r#"{"id":1,"cmd":"images","action":"burn"}"#),
            (Value::from(1), ErrorCode::InvalidParams)
        );
        assert_eq!(
            code(r#"{"id":1,"cmd":"ping","extra":true}"#),
            (Value::from(1), ErrorCode::InvalidParams)
        );
    }
}
