//! One client connection: read request lines, dispatch each as its own task,
//! write replies and events back through one writer.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::cmd::{self, Session};
use super::protocol::{ControlError, ErrorCode, Message, MAX_LINE_BYTES};
use super::Context;

/// Lines queued for a client before its subscriptions start dropping events.
const OUTBOX: usize = 1024;

pub(super) async fn handle(stream: UnixStream, ctx: Arc<Context>) {
    ctx.connections.fetch_add(1, Ordering::Relaxed);
    ctx.metrics.connection_accepted();
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
            _ = ctx.shutdown.cancelled() => break,
            next = lines.next() => next,
        };
        match next {
            None => break,
            Some(Ok(bytes)) => {
                let Ok(line) = String::from_utf8(bytes.to_vec()) else {
                    let error =
                        ControlError::new(ErrorCode::ParseError, "request line is not UTF-8");
                    ctx.metrics
                        .count_request(crate::metrics::INVALID, error.code.as_str());
                    let _ = out.send(Message::err(Value::Null, error)).await;
                    continue;
                };
                if line.trim().is_empty() {
                    continue;
                }
                let session = Session {
                    out: out.clone(),
                    closed: closed.clone(),
                };
                let ctx = ctx.clone();
                requests.spawn(async move { dispatch(&line, &ctx, session).await });
            }
            Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded)) => {
                let error = ControlError::new(
                    ErrorCode::LineTooLong,
                    format!(
                        "request line longer than {MAX_LINE_BYTES} bytes; closing the connection"
                    ),
                );
                ctx.metrics
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
    ctx.connections.fetch_sub(1, Ordering::Relaxed);
}

/// Parses one request line, runs its command and sends the reply.
async fn dispatch(line: &str, ctx: &Context, session: Session) {
    let (id, command) = match cmd::parse(line) {
        Ok(parsed) => parsed,
        Err((id, error)) => {
            ctx.metrics
                .count_request(crate::metrics::INVALID, error.code.as_str());
            let _ = session.out.send(Message::err(id, error)).await;
            return;
        }
    };
    let reply = match super::execute(ctx, &session, &id, command).await {
        Ok(Some(result)) => Some(Message::ok(id, result)),
        Ok(None) => None, // the handler replied itself
        Err(error) => Some(Message::err(id, error)),
    };
    if let Some(reply) = reply {
        let _ = session.out.send(reply).await;
    }
}
