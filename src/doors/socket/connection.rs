//! One client connection: read request lines, dispatch each as its own task,
//! write replies and events back through one writer.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{ApiError, ErrorCode};
use crate::doors::commands::protocol::{Message, MAX_LINE_BYTES};
use crate::doors::commands::{self as cmd, Context, Peer};

/// Lines queued for a client before its subscriptions start dropping events.
const OUTBOX: usize = 1024;

pub(super) async fn handle(stream: UnixStream, ctx: Arc<Context>) {
    ctx.assistant.metrics.traffic.opened();
    ctx.assistant.metrics.connection_accepted();
    let (read, mut write) = stream.into_split();
    let (out, mut outbox) = mpsc::channel::<Message>(OUTBOX);
    let writer = tokio::spawn(async move {
        while let Some(msg) = outbox.recv().await {
            let mut line = msg.to_line();
            line.push('\n');
            if write.write_all(line.as_bytes()).await.is_err() {
                break; // the client went away
            }
        }
    });

    let closed = CancellationToken::new();
    let requests = TaskTracker::new();
    let codec = AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), vec![], MAX_LINE_BYTES);
    let mut lines = FramedRead::new(read, codec);
    loop {
        let next = tokio::select! {
            _ = ctx.assistant.shutdown.cancelled() => break,
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
                requests.spawn(async move { dispatch(&line, &ctx, peer).await });
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
    ctx.assistant.metrics.traffic.closed();
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
