//! One client connection: read request lines, dispatch each as its own task,
//! write replies and events back through one writer.
//!
//! Limits (`daemon.*`): at most `max_requests_per_connection` requests run
//! at once, and the next line is not read until one ends, so a client that
//! pipelines without reading its replies holds a bounded amount of memory
//! (the socket's buffers, the outbox, the running requests); a reply the
//! client does not take within `write_timeout_secs` closes the connection.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{ApiError, ErrorCode};
use crate::doors::commands::protocol::{Message, MAX_LINE_BYTES};
use crate::doors::commands::{self as cmd, Context, Peer};

/// Lines queued for a client before its subscriptions start dropping events.
const OUTBOX: usize = 1024;

/// Serves one client; `slot` is its place under `daemon.max_connections`,
/// given back as it is counted out.
pub(super) async fn handle(stream: UnixStream, ctx: Arc<Context>, slot: OwnedSemaphorePermit) {
    ctx.assistant.metrics.traffic.opened();
    ctx.assistant.metrics.connection_accepted();
    let limits = &ctx.assistant.config.config.daemon;
    let write_timeout = Duration::from_secs(limits.write_timeout_secs.max(1));
    let slots = Arc::new(Semaphore::new(limits.max_requests_per_connection.max(1)));
    let (read, mut write) = stream.into_split();
    let (out, mut outbox) = mpsc::channel::<Message>(OUTBOX);
    // Cancelled when the client is gone (or too slow to take a reply),
    // and once every request of a closed connection has ended.
    let closed = CancellationToken::new();
    let writer_closed = closed.clone();
    let writer = tokio::spawn(async move {
        while let Some(msg) = outbox.recv().await {
            let mut line = msg.to_line();
            line.push('\n');
            match tokio::time::timeout(write_timeout, write.write_all(line.as_bytes())).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break, // the client went away
                Err(_) => {
                    tracing::warn!(
                        "a control-socket client took no reply for {write_timeout:?}; closing it"
                    );
                    break;
                }
            }
        }
        writer_closed.cancel();
    });

    let requests = TaskTracker::new();
    let codec = AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), vec![], MAX_LINE_BYTES);
    let mut lines = FramedRead::new(read, codec);
    loop {
        // A free slot first: while every one is busy, nothing more is read.
        let slot = tokio::select! {
            _ = ctx.assistant.shutdown.cancelled() => break,
            _ = closed.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("never closed"),
        };
        let next = tokio::select! {
            _ = ctx.assistant.shutdown.cancelled() => break,
            _ = closed.cancelled() => break,
            next = lines.next() => next,
        };
        match next {
            None => break,
            Some(Ok(bytes)) => {
                let Ok(line) = String::from_utf8(bytes.to_vec()) else {
                    let error = ApiError::new(ErrorCode::ParseError, "request line is not UTF-8");
                    ctx.assistant
                        .metrics
                        .count_request(crate::metrics::INVALID, error.code.as_str());
                    let _ = out.send(Message::err(Value::Null, error)).await;
                    continue;
                };
                if line.trim().is_empty() {
                    continue;
                }
                let peer = Peer {
                    out: out.clone(),
                    closed: closed.clone(),
                };
                let ctx = ctx.clone();
                requests.spawn(async move {
                    dispatch(&line, &ctx, peer).await;
                    drop(slot);
                });
            }
            Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded)) => {
                let error = ApiError::new(
                    ErrorCode::LineTooLong,
                    format!(
                        "request line longer than {MAX_LINE_BYTES} bytes; closing the connection"
                    ),
                );
                ctx.assistant
                    .metrics
                    .count_request(crate::metrics::INVALID, error.code.as_str());
                let _ = out.send(Message::err(Value::Null, error)).await;
                break;
            }
            Some(Err(AnyDelimiterCodecError::Io(e))) => {
                tracing::debug!(error = %e, "connection read failed");
                break;
            }
        }
    }
    // Requests already read still get their replies; then subscriptions end.
    requests.close();
    requests.wait().await;
    closed.cancel();
    drop(out);
    let _ = writer.await;
    drop(slot);
    ctx.assistant.metrics.traffic.closed();
}

/// Tells a client over `daemon.max_connections` why, and closes.
pub(super) async fn refuse(mut stream: UnixStream, max: usize) {
    let error = ApiError::new(
        ErrorCode::TooManyConnections,
        format!("{max} clients are connected already (daemon.max_connections); try again later"),
    );
    let mut line = Message::err(Value::Null, error).to_line();
    line.push('\n');
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(line.as_bytes())).await;
}

/// Parses one request line, runs its command and sends the reply.
async fn dispatch(line: &str, ctx: &Context, peer: Peer) {
    let (id, command) = match cmd::parse(line) {
        Ok(parsed) => parsed,
        Err((id, error)) => {
            ctx.assistant
                .metrics
                .count_request(crate::metrics::INVALID, error.code.as_str());
            let _ = peer.out.send(Message::err(id, error)).await;
            return;
        }
    };
    let reply = match cmd::execute(ctx, &peer, &id, command).await {
        Ok(Some(result)) => Some(Message::ok(id, result)),
        Ok(None) => None, // the handler replied itself
        Err(error) => Some(Message::err(id, error)),
    };
    if let Some(reply) = reply {
        let _ = peer.out.send(reply).await;
    }
}
