//! Reloading `commands.toml` when it changes: its folder is watched
//! (editors save by writing a temp file and renaming it over the old one),
//! debounced, and each batch that touches the file reloads it. A file that
//! cannot be used keeps the commands in use (see [`UserCommands::reload`]).

use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::UserCommands;

/// How long the file must be quiet before it is read again.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches the file's folder until `shutdown`; `None` (logged) when the
/// folder does not exist or cannot be watched.
pub fn spawn(commands: Arc<UserCommands>, shutdown: CancellationToken) -> Option<JoinHandle<()>> {
    let path = commands.path().to_path_buf();
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return None;
    };
    let name = name.to_os_string();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let touched = match result {
            Ok(events) => events
                .iter()
                .any(|e| e.need_rescan() || e.paths.iter().any(|p| p.file_name() == Some(&name))),
            Err(_) => true,
        };
        if touched {
            let _ = tx.send(());
        }
    });
    let mut debouncer = match debouncer {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the user commands file");
            return None;
        }
    };
    if let Err(e) = debouncer.watch(dir, RecursiveMode::NonRecursive) {
        tracing::info!(folder = %dir.display(), error = %e, "not watching for user commands (`voxd commands reload` reads them)");
        return None;
    }
    Some(tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _debouncer = debouncer;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = rx.recv() => {
                    if changed.is_none() {
                        return;
                    }
                    let commands = commands.clone();
                    let reloaded = tokio::task::spawn_blocking(move || commands.reload()).await;
                    if let Ok(Err(e)) = reloaded {
                        tracing::error!("user commands changed, but the previous ones stay: {e}");
                    }
                }
            }
        }
    }))
}
