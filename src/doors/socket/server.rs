//! Accepting connections on the control socket until shutdown, at most
//! `daemon.max_connections` at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::connection;
use crate::doors::commands::Context;

/// The control socket server.
pub struct Server {
    listener: UnixListener,
    ctx: Arc<Context>,
    connections: TaskTracker,
}

impl Server {
    pub fn new(listener: UnixListener, ctx: Arc<Context>) -> Server {
        Server {
            listener,
            ctx,
            connections: TaskTracker::new(),
        }
    }

    /// Accepts clients until the assistant's `shutdown` is cancelled, then gives open
    /// connections `grace` to finish their in-flight requests.
    pub async fn run(self, grace: Duration) {
        let max = self
            .ctx
            .assistant
            .config
            .config
            .daemon
            .max_connections
            .max(1);
        let slots = Arc::new(Semaphore::new(max));
        loop {
            tokio::select! {
                _ = self.ctx.assistant.shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            let ctx = self.ctx.clone();
                            self.connections.spawn(connection::handle(stream, ctx, slot));
                        }
                        Err(_) => {
                            self.connections.spawn(connection::refuse(stream, max));
                        }
                    },
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning, keep serving the others.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        drop(self.listener);
        self.connections.close();
        if tokio::time::timeout(grace, self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still busy after {:?}; closing them", grace);
        }
    }
}
