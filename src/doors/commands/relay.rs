//! Streaming a command's progress to its peer: what the core sends on a
//! channel goes out as events of the request, in order, before its reply.

use std::future::Future;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::protocol::Message;
use super::Peer;

/// Runs `work` with the sending half of a channel and a stop token, and
/// relays each item it sends to `peer` as an event of request `id`
/// (`encode` names it and gives its data). The token is cancelled when the
/// peer goes away (its connection closes, or a write to it fails), so that
/// `work` stops early. Returns `work`'s output once every event is out.
pub async fn relay<T, F>(
    peer: &Peer,
    id: &Value,
    work: impl FnOnce(mpsc::UnboundedSender<T>, CancellationToken) -> F,
    encode: impl Fn(&T) -> (&'static str, Value),
) -> F::Output
where
    F: Future,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop = peer.closed.child_token();
    let work = work(tx, stop.clone());
    let forward = async {
        loop {
            let item = tokio::select! {
                item = rx.recv() => item,
                _ = peer.out.closed() => None,
            };
            let Some(item) = item else { break };
            let (event, data) = encode(&item);
            let message = Message::Event {
                id: id.clone(),
                event: event.to_string(),
                data,
            };
            if peer.out.send(message).await.is_err() {
                break;
            }
        }
        if peer.out.is_closed() {
            stop.cancel();
        }
    };
    let (output, ()) = tokio::join!(work, forward);
    output
}
