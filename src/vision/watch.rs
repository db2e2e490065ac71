//! The folder watcher. Three stages, each bounded:
//!
//! 1. `notify` (inotify) reports changes on its own thread into a bounded
//!    channel; when that is full the thread waits, the kernel queues, and a
//!    kernel overflow comes back as a rescan.
//! 2. The settler waits until a file has been quiet for `vision.settle_ms`
//!    *and* its size and mtime did not change over that time, so a file being
//!    written (or copied, or downloaded) is read once it is complete.
//! 3. The processor takes settled files from a queue of `vision.queue`
//!    entries and hands them, one at a time, to [`Vision::process`] on the
//!    blocking pool. When the queue is full, the settler (and so the scan) waits.
//!
//! At start every folder is scanned: files that arrived while voxd was down
//! go to the settler like reported changes, records of files that left are
//! dropped. Exactly-once per content is [`Vision`]'s business (captions are
//! kept by hash).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{is_candidate, Vision};

/// What the watcher watches and how patiently.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    pub folders: Vec<PathBuf>,
    /// How long a file must be quiet and unchanged before it is read.
    pub settle: Duration,
    /// Settled files waiting for the captioner.
    pub queue: usize,
}

impl WatchSettings {
    /// The `[vision]` section's folders, settle time and queue.
    pub fn from_config(config: &crate::config::VisionConfig) -> WatchSettings {
        WatchSettings {
            folders: config.folders.clone(),
            settle: Duration::from_millis(config.settle_ms),
            queue: config.queue as usize,
        }
    }
}

/// The watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("image folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot watch {path}: {source}")]
    Notify {
        path: PathBuf,
        source: notify::Error,
    },
}

/// A change notify reported.
#[derive(Debug)]
enum Change {
    Written(PathBuf),
    /// Deleted (`renamed`: false) or moved away (`renamed`: true).
    Removed {
        path: PathBuf,
        renamed: bool,
    },
    Rescan,
}

/// Work for the processor.
#[derive(Debug)]
enum Job {
    File(PathBuf),
    Removed(PathBuf),
}

/// Raw changes buffered between notify's thread and the settler.
const CHANGE_BUFFER: usize = 4096;

/// Starts watching. The returned task ends when `shutdown` is cancelled.
pub fn spawn(
    vision: Arc<Vision>,
    settings: WatchSettings,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, WatchError> {
    let mut folders = Vec::new();
    for folder in &settings.folders {
        let err = |source| WatchError::Folder {
            path: folder.clone(),
            source,
        };
        std::fs::create_dir_all(folder).map_err(err)?;
        folders.push(folder.canonicalize().map_err(err)?);
    }
    let (change_tx, change_rx) = mpsc::channel(CHANGE_BUFFER);
    let rescan_tx = change_tx.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        for change in changes(res) {
            // Waiting here is the backpressure: the kernel queues meanwhile.
            if change_tx.blocking_send(change).is_err() {
                return; // shutting down
            }
        }
    })
    .map_err(|source| WatchError::Notify {
        path: PathBuf::new(),
        source,
    })?;
    for folder in &folders {
        watcher
            .watch(folder, RecursiveMode::Recursive)
            .map_err(|source| WatchError::Notify {
                path: folder.clone(),
                source,
            })?;
        tracing::info!(folder = %folder.display(), "watching for images");
    }
    let (job_tx, job_rx) = mpsc::channel(settings.queue.max(1));
    // Watching started first, so nothing that lands during the scan is missed.
    let scan = tokio::spawn(scan(vision.clone(), folders.clone(), rescan_tx.clone()));
    let settler = tokio::spawn(settle(
        change_rx,
        rescan_tx,
        job_tx,
        vision.clone(),
        folders,
        settings.settle,
        shutdown.clone(),
    ));
    Ok(tokio::spawn(async move {
        process(vision, job_rx, shutdown).await;
        drop(watcher);
        scan.abort();
        settler.abort();
    }))
}

/// Turns one notify event into changes.
fn changes(res: notify::Result<notify::Event>) -> Vec<Change> {
    let event = match res {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(error = %e, "image watcher error; rescanning");
            return vec![Change::Rescan];
        }
    };
    if event.need_rescan() {
        return vec![Change::Rescan];
    }
    let mut paths = event.paths.into_iter();
    match event.kind {
        EventKind::Remove(_) => paths
            .map(|path| Change::Removed {
                path,
                renamed: false,
            })
            .collect(),
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => paths
            .map(|path| Change::Removed {
                path,
                renamed: true,
            })
            .collect(),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            let mut out = Vec::new();
            if let Some(path) = paths.next() {
                out.push(Change::Removed {
                    path,
                    renamed: true,
                });
            }
            out.extend(paths.map(Change::Written));
            out
        }
        EventKind::Modify(ModifyKind::Name(_)) => paths
            .map(|path| {
                if path.exists() {
                    Change::Written(path)
                } else {
                    Change::Removed {
                        path,
                        renamed: true,
                    }
                }
            })
            .collect(),
        EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
            paths.map(Change::Written).collect()
        }
        _ => Vec::new(),
    }
}

/// A file's size and mtime, to tell when it stops changing.
type Stat = Option<(u64, Option<SystemTime>)>;

fn stat(path: &Path) -> Stat {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.len(), m.modified().ok()))
}

struct Pending {
    changed: Instant,
    stat: Stat,
    /// Found missing once already.
    vanished: bool,
}

/// Stage 2: waits for files to settle, then queues them.
async fn settle(
    mut changes: mpsc::Receiver<Change>,
    rescans: mpsc::Sender<Change>,
    jobs: mpsc::Sender<Job>,
    vision: Arc<Vision>,
    folders: Vec<PathBuf>,
    settle: Duration,
    shutdown: CancellationToken,
) {
    let mut pending: HashMap<PathBuf, Pending> = HashMap::new();
    let mut tick = tokio::time::interval((settle / 4).max(Duration::from_millis(20)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            change = changes.recv() => match change {
                None => return,
                Some(Change::Written(path)) => {
                    // Image files, and folders (moved in with their files).
                    if is_candidate(&path) || path.is_dir() {
                        let stat = stat(&path);
                        pending.insert(path, Pending { changed: Instant::now(), stat, vanished: false });
                    }
                }
                Some(Change::Removed { path, renamed }) => {
                    if pending.remove(&path).is_some() && !renamed && is_candidate(&path) {
                        // Written, then deleted before it settled.
                        let (v, p) = (vision.clone(), path.clone());
                        let _ = tokio::task::spawn_blocking(move || v.vanished(&p)).await;
                    }
                    if jobs.send(Job::Removed(path)).await.is_err() {
                        return;
                    }
                }
                Some(Change::Rescan) => {
                    tokio::spawn(scan(vision.clone(), folders.clone(), rescans.clone()));
                }
            },
            _ = tick.tick() => {
                let due: Vec<PathBuf> = pending
                    .iter()
                    .filter(|(_, p)| p.changed.elapsed() >= settle)
                    .map(|(path, _)| path.clone())
                    .collect();
                for path in due {
                    let now = stat(&path);
                    let Some(entry) = pending.get_mut(&path) else { continue };
                    if now.is_none() && entry.vanished {
                        // Gone for a whole settle time with no removal or
                        // rename reported: it vanished before we read it.
                        pending.remove(&path);
                        let v = vision.clone();
                        let _ = tokio::task::spawn_blocking(move || v.vanished(&path)).await;
                    } else if now.is_none() {
                        // Its removal event may still be on the way.
                        entry.vanished = true;
                        entry.changed = Instant::now();
                    } else if now == entry.stat {
                        pending.remove(&path);
                        if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                            // A folder moved in: its files raised no events.
                            tokio::spawn(scan(vision.clone(), vec![path], rescans.clone()));
                        } else if is_candidate(&path) && jobs.send(Job::File(path)).await.is_err() {
                            return;
                        }
                    } else {
                        entry.stat = now;
                        entry.changed = Instant::now();
                        entry.vanished = false;
                    }
                }
            }
        }
    }
}

/// Stage 3: one file at a time, on the blocking pool.
async fn process(vision: Arc<Vision>, mut jobs: mpsc::Receiver<Job>, shutdown: CancellationToken) {
    loop {
        let job = tokio::select! {
            _ = shutdown.cancelled() => return,
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        let vision = vision.clone();
        let done = tokio::task::spawn_blocking(move || match job {
            Job::File(path) => {
                vision.process(&path);
            }
            Job::Removed(path) => vision.remove(&path),
        })
        .await;
        if let Err(e) = done {
            tracing::error!(error = %e, "image job panicked; the watcher goes on");
        }
    }
}

/// Hands every image under `folders` that is not recorded as it is now to
/// the settler (like a change notify reported, so a file still being
/// written waits, and a file both scanned and reported is read once), and
/// reports records of files that are gone.
async fn scan(vision: Arc<Vision>, folders: Vec<PathBuf>, changes: mpsc::Sender<Change>) {
    for folder in folders {
        let v = vision.clone();
        let dir = folder.clone();
        let found = tokio::task::spawn_blocking(move || {
            let mut work = Vec::new();
            walk(&dir, &mut |path, meta| {
                if v.needs_work(path, meta) {
                    work.push(Change::Written(path.to_path_buf()));
                }
            });
            for recorded in v.recorded_under(&dir) {
                if !recorded.exists() {
                    work.push(Change::Removed {
                        path: recorded,
                        renamed: true,
                    });
                }
            }
            work
        })
        .await
        .unwrap_or_default();
        tracing::info!(folder = %folder.display(), queued = found.len(), "image folder scanned");
        for change in found {
            if changes.send(change).await.is_err() {
                return;
            }
        }
    }
}

/// Calls `f` for every candidate image under `dir`, skipping hidden
/// entries ([`crate::folders::walk`]: link loops end).
fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    let hidden = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
    };
    crate::folders::walk(dir, &hidden, &mut |path, meta| {
        if is_candidate(path) {
            f(path, meta);
        }
    });
}
