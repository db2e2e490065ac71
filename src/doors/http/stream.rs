//! Streamed responses: a producer task writes items into a bounded
//! channel whose other end is the response body. When the client goes
//! away the body is dropped, the channel closes, and the producer sees it
//! in `tx.closed()` or a failed send and stops (dropping the running work,
//! which cancels it).

use std::future::Future;

use futures::Stream;
use tokio::sync::mpsc;

/// Items the producer may run ahead of a slow client.
const AHEAD: usize = 64;

/// The stream of what `produce` sends, with `produce` running as a task.
pub fn channel<T, F>(produce: impl FnOnce(mpsc::Sender<T>) -> F) -> impl Stream<Item = T>
where
    T: Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(AHEAD);
    tokio::spawn(produce(tx));
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}
