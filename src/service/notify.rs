//! systemd's notify protocol (`Type=notify`), from the daemon's side:
//! `READY=1` once the control socket listens, `WATCHDOG=1` every half
//! `WATCHDOG_USEC` from the async runtime (so a wedged runtime is noticed),
//! `STATUS=` lines, and `STOPPING=1` when shutdown begins. Without
//! `NOTIFY_SOCKET` (not under systemd) every message is skipped.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sd_notify::NotifyState;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Keeps the watchdog fed and reports the shutdown; [`ServiceManager::stop`]
/// it once the daemon has stopped.
pub struct ServiceManager {
    task: JoinHandle<()>,
    /// Whether `STOPPING=1` has been sent.
    stopping: Arc<AtomicBool>,
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

impl ServiceManager {
    /// Tells the service manager the daemon is ready (serving on `socket`,
    /// and on D-Bus when `dbus`), starts the watchdog pings (when
    /// `WATCHDOG_USEC` asks for them), and says `STOPPING=1` when
    /// `shutdown` is cancelled.
    pub fn ready(socket: &Path, dbus: bool, shutdown: &CancellationToken) -> ServiceManager {
        let status = format!(
            "serving on {}{}",
            socket.display(),
            if dbus { " and D-Bus" } else { "" }
        );
        send(&[NotifyState::Ready, NotifyState::Status(&status)]);
        let watchdog = sd_notify::watchdog_enabled();
        if let Some(timeout) = watchdog {
            tracing::info!(?timeout, "systemd watchdog enabled");
        }
        let shutdown = shutdown.clone();
        let stopping = Arc::new(AtomicBool::new(false));
        let announced = stopping.clone();
        let task = tokio::spawn(async move {
            let mut ping = watchdog.map(|timeout| tokio::time::interval(timeout / 2));
            loop {
                let stopping = announced.load(Ordering::SeqCst);
                let tick = async {
                    match ping.as_mut() {
                        Some(ping) => ping.tick().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = shutdown.cancelled(), if !stopping => announce_stopping(&announced),
                    _ = tick => send(&[NotifyState::Watchdog]),
                }
            }
        });
        ServiceManager { task, stopping }
    }

    /// Stops the watchdog pings: the daemon is about to exit. A shutdown
    /// quick enough to end before the task saw it is still announced.
    pub fn stop(self) {
        self.task.abort();
        announce_stopping(&self.stopping);
    }
}

/// Sends `STOPPING=1` once.
fn announce_stopping(sent: &AtomicBool) {
    if !sent.swap(true, Ordering::SeqCst) {
        send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }
}
