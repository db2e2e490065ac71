//! The control plane: the Unix-socket server, its JSON-lines protocol
//! ([`protocol`]), and one handler per command ([`cmd`]). It owns
//! connections and request dispatch; it reaches the rest of the daemon only
//! through [`Context`]. Every request, from the socket or from D-Bus
//! ([`crate::dbus`] via [`call`]), runs through [`execute`].

pub mod cmd;
mod connection;
pub mod paths;
pub mod protocol;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use server::Server;

use crate::config::Loaded;
use crate::conversation::History;
use crate::engine;
use crate::events::Events;
use crate::llm::Llm;
use crate::metrics::{Metrics, Sample};
use crate::rag::Rag;
use cmd::{Command, Outcome, Session};
use protocol::{ControlError, ErrorCode, Message};

/// What command handlers may use: the daemon's shared state and handles.
pub struct Context {
    /// The effective configuration and its origins.
    pub config: Loaded,
    pub events: Events,
    /// The engine worker supervisor.
    pub engines: engine::Host,
    /// Spoken replies: the speech queue and its cancel API.
    pub speaker: crate::speak::Speaker,
    /// The listening loop: microphone, wake words, VAD, utterances.
    pub listener: crate::listen::Listener,
    /// Speech to text.
    pub stt: std::sync::Arc<dyn crate::stt::Stt>,
    /// The language model: the daemon's is [`crate::llm::LocalLlm`] (the
    /// `voxd-llm` worker through `engines`); `None` runs without one.
    pub llm: Option<Arc<dyn Llm>>,
    /// Retrieval over the notes folders.
    pub rag: Arc<Rag>,
    /// Conversation sessions, or why their database cannot be used.
    pub history: Result<Arc<History>, String>,
    /// Image captions: the captioner, its store and the folder watcher's results.
    pub vision: Arc<crate::vision::Vision>,
    /// When the daemon started, for `uptime`.
    pub started: Instant,
    /// The control socket's path.
    pub socket: PathBuf,
    /// Cancelled when the daemon begins to shut down.
    pub shutdown: CancellationToken,
    /// Requests being handled right now, over all connections.
    pub in_flight: AtomicUsize,
    /// Open client connections.
    pub connections: AtomicUsize,
    /// The metric registry; see [`crate::metrics`] to add metrics.
    pub metrics: Metrics,
    /// Where the metrics HTTP endpoint listens, when `metrics.listen` is set.
    pub metrics_http: Option<SocketAddr>,
}

impl Context {
    /// Starts a graceful shutdown: tells subscribers why, then stops
    /// accepting connections and requests.
    pub fn begin_shutdown(&self, reason: &str) {
        if self.shutdown.is_cancelled() {
            return;
        }
        tracing::info!(reason, "shutting down");
        self.events.publish(crate::events::Event::new(
            "daemon.shutdown",
            serde_json::json!({ "reason": reason }),
        ));
        self.shutdown.cancel();
    }

    /// The daemon's state for a metrics scrape.
    pub fn metrics_sample(&self) -> Sample {
        Sample {
            uptime: self.started.elapsed(),
            daemon_rss_bytes: self.engines.daemon_rss_bytes(),
            budget: self.engines.budget(),
            engines: self.engines.status(),
            connections_open: self.connections.load(Ordering::Relaxed),
            requests_in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }
}

/// Runs one parsed request: refused while shutting down, counted in
/// `in_flight`, and counted and timed in the metrics by command and outcome.
pub async fn execute(ctx: &Context, session: &Session, id: &Value, command: Command) -> Outcome {
    let name = command.name();
    if ctx.shutdown.is_cancelled() {
        let error = ControlError::new(ErrorCode::ShuttingDown, "voxd is shutting down");
        ctx.metrics.count_request(name, error.code.as_str());
        return Err(error);
    }
    let started = Instant::now();
    ctx.in_flight.fetch_add(1, Ordering::Relaxed);
    let outcome = command.apply(ctx, session, id).await;
    ctx.in_flight.fetch_sub(1, Ordering::Relaxed);
    let code = match &outcome {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    };
    ctx.metrics.observe_request(name, code, started.elapsed());
    outcome
}

/// Parses command `cmd` with `args` (a JSON object of its arguments, as on
/// the socket), counting a request that cannot be parsed.
fn parse_call(ctx: &Context, cmd: &str, args: Value) -> Result<(Value, Command), ControlError> {
    let mut request = json!({ "id": 0, "cmd": cmd });
    let parsed = match (request.as_object_mut(), args) {
        (Some(request), Value::Object(args)) => {
            request.extend(args);
            Ok(())
        }
        (_, Value::Null) => Ok(()),
        (_, other) => Err(ControlError::new(
            ErrorCode::InvalidParams,
            format!("arguments must be a JSON object, not {other}"),
        )),
    }
    .and_then(|()| cmd::parse(&request.to_string()).map_err(|(_, e)| e));
    parsed.inspect_err(|e| {
        ctx.metrics
            .count_request(crate::metrics::INVALID, e.code.as_str())
    })
}

/// Runs command `cmd` with `args` (a JSON object of its arguments, as on the
/// socket) and returns its result: the socket protocol without the socket,
/// for D-Bus. A command that streams events after its reply (`subscribe`)
/// returns its reply; the stream ends with the call.
pub async fn call(ctx: &Context, cmd: &str, args: Value) -> Result<Value, ControlError> {
    let (id, command) = parse_call(ctx, cmd, args)?;
    let (out, mut replies) = mpsc::channel(16);
    let closed = CancellationToken::new();
    let _end_stream = closed.clone().drop_guard();
    let session = Session { out, closed };
    if let Some(result) = execute(ctx, &session, &id, command).await? {
        return Ok(result);
    }
    drop(session);
    while let Some(msg) = replies.recv().await {
        match msg {
            Message::Ok { result, .. } => return Ok(result),
            Message::Err { error, .. } => return Err(error),
            Message::Event { .. } => {}
        }
    }
    Err(ControlError::new(
        ErrorCode::Internal,
        format!("`{cmd}` ended without a reply"),
    ))
}

/// Like [`call`], for a command that streams events *before* its reply
/// (`ask`): each event goes to `events` as it comes. Cancelling `cancel`
/// is what a client's disconnecting is to the command: it stops early.
pub async fn call_streaming(
    ctx: &Context,
    cmd: &str,
    args: Value,
    events: mpsc::UnboundedSender<(String, Value)>,
    cancel: CancellationToken,
) -> Result<Value, ControlError> {
    let (id, command) = parse_call(ctx, cmd, args)?;
    let (out, mut replies) = mpsc::channel(16);
    let session = Session {
        out,
        closed: cancel,
    };
    let run = async move {
        // Boxed: `respond` runs `ask` through here, and `ask` could be any command.
        let outcome = Box::pin(execute(ctx, &session, &id, command)).await;
        drop(session);
        outcome
    };
    let forward = async {
        let mut reply = None;
        while let Some(msg) = replies.recv().await {
            match msg {
                Message::Event { event, data, .. } => {
                    let _ = events.send((event, data));
                }
                Message::Ok { result, .. } => reply = Some(Ok(result)),
                Message::Err { error, .. } => reply = Some(Err(error)),
            }
        }
        reply
    };
    let (outcome, sent) = tokio::join!(run, forward);
    match (outcome?, sent) {
        (Some(result), _) => Ok(result),
        (None, Some(reply)) => reply,
        (None, None) => Err(ControlError::new(
            ErrorCode::Internal,
            format!("`{cmd}` ended without a reply"),
        )),
    }
}
