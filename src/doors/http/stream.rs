//! Streamed responses: a producer task writes items into a bounded
//! channel whose other end is the response body. When the client goes
//! away the body is dropped, the channel closes, and the producer sees it
//! in `tx.closed()` or a failed send and stops (dropping the running work,
//! which cancels it).
//!
//! A stream still running when the daemon shuts down gets
//! `daemon.shutdown_grace_secs` to finish; then its work is dropped and
//! the stream ends with its dialect's last words (an error event and the
//! terminator), not cut off mid-line.

use std::future::Future;
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;

use crate::assistant::Assistant;

/// Items the producer may run ahead of a slow client.
const AHEAD: usize = 64;

/// The stream of what `produce` sends, with `produce` running as a task;
/// `last_words` are sent instead of the rest when shutdown cuts it short.
pub fn channel<T, F>(
    assistant: &Assistant,
    last_words: Vec<T>,
    produce: impl FnOnce(mpsc::Sender<T>) -> F,
) -> impl Stream<Item = T>
where
    T: Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(AHEAD);
    let work = produce(tx.clone());
    let shutdown = assistant.shutdown.clone();
    let grace = Duration::from_secs(assistant.config.config.daemon.shutdown_grace_secs);
    tokio::spawn(async move {
        let cut_short = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = work => {}
            () = cut_short => {
                for item in last_words {
                    if tx.send(item).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// The error a stream cut short by shutdown ends with.
pub fn shutting_down(dialect: super::error::Dialect) -> super::error::Failure {
    super::error::Failure::new(
        dialect,
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "shutting_down",
        "voxd is shutting down; the answer was cut short",
    )
}
