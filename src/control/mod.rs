//! The control plane: the Unix-socket server, its JSON-lines protocol
//! ([`protocol`]), and one handler per command ([`cmd`]). It owns
//! connections and request dispatch; it reaches the rest of the daemon only
//! through [`Context`].

pub mod cmd;
mod connection;
pub mod paths;
pub mod protocol;
mod server;

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

pub use server::Server;

use crate::config::Loaded;
use crate::engine;
use crate::events::Events;
use crate::llm::Llm;

/// What command handlers may use: the daemon's shared state and handles.
pub struct Context {
    /// The effective configuration and its origins.
    pub config: Loaded,
    pub events: Events,
    /// The engine worker supervisor.
    pub engines: engine::Host,
    /// The language model (the `voxd-llm` worker through `engines`).
    pub llm: std::sync::Arc<dyn Llm>,
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
}
