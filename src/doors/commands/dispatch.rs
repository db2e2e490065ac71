//! Running a parsed command: the [`Context`] handlers get, [`execute`]
//! (refusal while shutting down, traffic and metrics), and [`call`] and
//! [`open`], the protocol without a socket (for D-Bus and HTTP).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::protocol::Message;
use super::say::OpenUtterances;
use super::{parse, Command, Outcome, Peer};
use crate::api::{ApiError, ErrorCode};
use crate::assistant::Assistant;

/// What command handlers may use: the assistant, and the socket's own
/// state.
pub struct Context {
    pub assistant: Arc<Assistant>,
    /// The control socket's path.
    pub socket: PathBuf,
    /// Where the HTTP API listens, when it is on.
    pub http: Option<SocketAddr>,
    /// Where the Wyoming server listens (its URI), when `wyoming.listen` is set.
    pub wyoming: Option<String>,
    /// Utterances that streaming `say` requests keep open.
    pub utterances: OpenUtterances,
}

/// Runs one parsed request (see [`counted`]).
pub async fn execute(ctx: &Context, peer: &Peer, id: &Value, command: Command) -> Outcome {
    let name = command.name();
    counted(&ctx.assistant, name, command.apply(ctx, peer, id)).await
}

/// Runs `work`, request `name` of any door: refused while shutting down,
/// counted in the traffic gauges, and counted and timed in the metrics by
/// command and outcome.
pub async fn counted<T>(
    assistant: &Assistant,
    name: &str,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let metrics = &assistant.metrics;
    if assistant.shutdown.is_cancelled() {
        let error = ApiError::new(ErrorCode::ShuttingDown, "voxd is shutting down");
        metrics.count_request(name, error.code.as_str());
        return Err(error);
    }
    let started = Instant::now();
    metrics.traffic.started();
    let outcome = work.await;
    metrics.traffic.finished();
    let code = match &outcome {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    };
    metrics.observe_request(name, code, started.elapsed());
    outcome
}

/// Parses command `cmd` with `args` (a JSON object of its arguments, as on
/// the socket), counting a request that cannot be parsed.
fn parse_call(ctx: &Context, cmd: &str, args: Value) -> Result<(Value, Command), ApiError> {
    let mut request = json!({ "id": 0, "cmd": cmd });
    let parsed = match (request.as_object_mut(), args) {
        (Some(request), Value::Object(args)) => {
            request.extend(args);
            Ok(())
        }
        (_, Value::Null) => Ok(()),
        (_, other) => Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!("arguments must be a JSON object, not {other}"),
        )),
    }
    .and_then(|()| parse(&request.to_string()).map_err(|(_, e)| e));
    parsed.inspect_err(|e| {
        ctx.assistant
            .metrics
            .count_request(crate::metrics::INVALID, e.code.as_str())
    })
}

/// Runs command `cmd` with `args` (a JSON object of its arguments, as on the
/// socket) and returns its result: the socket protocol without the socket,
/// for D-Bus. A command that streams events after its reply (`subscribe`)
/// returns its reply; the stream ends with the call.
pub async fn call(ctx: &Context, cmd: &str, args: Value) -> Result<Value, ApiError> {
    let (id, command) = parse_call(ctx, cmd, args)?;
    let (out, mut replies) = mpsc::channel(16);
    let closed = CancellationToken::new();
    let _end_stream = closed.clone().drop_guard();
    let peer = Peer { out, closed };
    if let Some(result) = execute(ctx, &peer, &id, command).await? {
        return Ok(result);
    }
    drop(peer);
    while let Some(msg) = replies.recv().await {
        match msg {
            Message::Ok { result, .. } => return Ok(result),
            Message::Err { error, .. } => return Err(error),
            Message::Event { .. } => {}
        }
    }
    Err(ApiError::new(
        ErrorCode::Internal,
        format!("`{cmd}` ended without a reply"),
    ))
}

/// Runs command `cmd` with `args` for a door that streams what it sends:
/// its messages (the reply, then the events of a `subscribe`) until
/// `closed` is cancelled.
pub async fn open(
    ctx: &Context,
    cmd: &str,
    args: Value,
    closed: CancellationToken,
) -> Result<mpsc::Receiver<Message>, ApiError> {
    let (id, command) = parse_call(ctx, cmd, args)?;
    let (out, messages) = mpsc::channel(64);
    let peer = Peer { out, closed };
    if let Some(result) = execute(ctx, &peer, &id, command).await? {
        let _ = peer.out.send(Message::ok(id, result)).await;
    }
    Ok(messages)
}
