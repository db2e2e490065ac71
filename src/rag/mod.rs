//! Retrieval over the user's notes folders (markdown and plain text):
//! [`chunk`] splits notes, [`embed`] runs the sentence embedder in-process,
//! [`index`] stores everything in SQLite, [`rank`] fuses BM25 and cosine
//! rankings, `watch` follows changes, and [`answer`] turns retrieved
//! sources into grounded answers.
//!
//! [`Rag`] is the running service: one indexer task (`indexer`) applies
//! every change (a full rescan at start, then the watcher's batches, and
//! the image captions it receives as the vision service's
//! [`CaptionSink`](crate::vision::CaptionSink), `captions`) in order, so
//! the index has a single writer; queries (`query`) read concurrently.
//! `files` walks and reads the notes folders, `view` shows one note to a
//! reader, `paths` places the data files. The embedder is loaded when needed and may be unloaded when idle (`resident`). Owns the index file and the
//! watcher; reaches the model store (read-only) and the event bus.
//!
//! Image captions are documents of their own kind ([`DocKind::Image`]): one
//! chunk per caption, embedded like a note, cited as the image file at
//! line 1. The notes rescan and watcher never touch them; the vision service adds,
//! replaces and removes them, and [`Rag::sync_captions`] brings them in step
//! with the image store at start.
//!
//! This file holds the [`Rag`] handle: start-up, the lazily opened index
//! and embedder, the on/off switch and `notes status`.

pub mod answer;
mod captions;
pub mod chunk;
pub mod embed;
mod events;
mod files;
pub mod index;
mod indexer;
mod paths;
mod query;
pub mod rank;
mod resident;
mod view;
mod watch;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, RagConfig};
use crate::engine::release_free_heap;
use crate::events::Events;
use crate::metrics::Pipeline;
use index::Index;
use rank::Vectors;
use resident::Resident;

pub use captions::{CaptionJob, CaptionSource};
pub use events::RagEvent;
pub use indexer::{Job, ScanReport};
pub use paths::{data_file, index_path};
pub use query::{Hit, Prepared};
pub use view::Note;
pub use watch::is_temp;

#[derive(Debug, thiserror::Error)]
pub enum RagError {
    #[error(transparent)]
    Index(#[from] index::IndexError),
    #[error(transparent)]
    Embed(#[from] embed::EmbedError),
    #[error("the notes indexer has stopped")]
    Stopped,
    #[error("internal error: {0}")]
    Internal(String),
    #[error("no embedding model is installed; run `voxd models pull`")]
    NoEmbedder,
}

impl crate::error::Kind for RagError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            RagError::NoEmbedder => crate::error::ErrorKind::NoModel,
            _ => crate::error::ErrorKind::Internal,
        }
    }
}

/// What an indexed document is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// A note file: cited by path and line range.
    #[default]
    Note,
    /// An image's caption: cited as the image file, lines 1-1.
    Image,
}

/// A file left out of the index, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// `notes status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub enabled: bool,
    pub folders: Vec<String>,
    pub index: String,
    /// Note files indexed.
    pub files: u64,
    /// Image captions indexed.
    pub images: u64,
    /// Chunks of notes and captions.
    pub chunks: u64,
    pub embedded_chunks: u64,
    /// Sentences of those chunks, and how many have their embedding yet
    /// (computed while the indexer is otherwise idle).
    pub sentences: u64,
    pub embedded_sentences: u64,
    /// Unix seconds of the last change to the index.
    pub last_update: Option<u64>,
    pub indexing: bool,
    /// The embedding model (installed; `None`: BM25 only), and whether it
    /// is in memory now (`rag.idle_unload_secs` drops it when idle).
    pub embedder: Option<String>,
    pub embedder_loaded: bool,
    pub error: Option<String>,
    pub skipped: Vec<Skipped>,
}

#[derive(Default)]
struct State {
    indexing: bool,
    error: Option<String>,
    skipped: Vec<Skipped>,
}

/// The running retrieval service.
pub struct Rag {
    config: RagConfig,
    roots: Vec<PathBuf>,
    index_path: PathBuf,
    index: tokio::sync::Mutex<Option<Arc<Index>>>,
    embedder: Resident,
    vectors: RwLock<Vectors>,
    vectors_loaded: AtomicBool,
    enabled: AtomicBool,
    state: Mutex<State>,
    jobs: mpsc::UnboundedSender<Job>,
    events: Events,
    metrics: Pipeline,
}

impl Rag {
    /// Starts the service: opens the index, then (in the background) runs
    /// a full rescan and watches the notes folders until `shutdown`.
    pub fn start(
        config: &Config,
        events: Events,
        shutdown: CancellationToken,
        metrics: Pipeline,
    ) -> Arc<Rag> {
        let cfg = config.rag.clone();
        let roots: Vec<PathBuf> = cfg
            .notes
            .iter()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .map(|p| p.canonicalize().unwrap_or(p))
            .collect();
        let index_path = index_path(&cfg);
        let (tx, rx) = mpsc::unbounded_channel();
        let rag = Arc::new(Rag {
            enabled: AtomicBool::new(cfg.enabled),
            roots,
            index_path,
            index: tokio::sync::Mutex::new(None),
            embedder: Resident::new(&cfg, &config.models),
            config: cfg,
            vectors: RwLock::new(Vectors::default()),
            vectors_loaded: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            jobs: tx,
            events,
            metrics,
        });
        if !rag.roots.is_empty() {
            let _ = rag.jobs.send(Job::Rescan(None));
        }
        if let Some(idle) = rag.embedder.idle_check() {
            tokio::spawn(rag.clone().unload_when_idle(idle, shutdown.clone()));
        }
        tokio::spawn(rag.clone().run(rx, shutdown));
        rag
    }

    /// Loads the embedder now, in the background, if it is not loaded: a
    /// question is coming (the wake word was heard).
    pub fn warm(self: &Arc<Rag>) {
        let rag = self.clone();
        tokio::spawn(async move { rag.embedder.get().await });
    }

    /// Drops the embedder whenever it goes unused for `idle`
    /// (`rag.idle_unload_secs`), and gives its memory back to the OS.
    async fn unload_when_idle(self: Arc<Rag>, idle: Duration, shutdown: CancellationToken) {
        let every = (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.cancelled() => return,
            }
            if self.embedder.unload_if_idle().await {
                release_free_heap();
            }
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
        self.events.publish(RagEvent::State { enabled: on });
    }

    pub fn config(&self) -> &RagConfig {
        &self.config
    }

    /// The id of the notes' embedding model, without loading it; `None`
    /// when none is installed.
    pub fn embedder(&self) -> Option<&str> {
        self.embedder.model_id()
    }

    /// Sentence embeddings (unit vectors) of `texts` by the notes'
    /// embedding model, loaded if needed.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, RagError> {
        let pool = self.embedder.get().await.ok_or(RagError::NoEmbedder)?;
        Ok(pool.embed(texts).await?)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The index, opening it (and loading its vectors) if needed. A failure
    /// is reported and retried on the next call. One caller opens it at a
    /// time: two opens racing on a corrupt index would each set aside the
    /// file the other had just rebuilt.
    async fn index(&self) -> Result<Arc<Index>, RagError> {
        let mut slot = self.index.lock().await;
        if let Some(index) = slot.as_ref() {
            return Ok(index.clone());
        }
        let path = self.index_path.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let index = Index::open(&path)?;
            let vectors = index.vectors()?;
            Ok::<_, index::IndexError>((index, vectors))
        })
        .await
        .map_err(|e| RagError::Internal(e.to_string()))?;
        match opened {
            Ok((index, vectors)) => {
                let index = Arc::new(index);
                let mut table = self.vectors.write().unwrap_or_else(|e| e.into_inner());
                *table = Vectors::default();
                for (id, v) in &vectors {
                    table.insert(*id, v);
                }
                drop(table);
                self.vectors_loaded.store(true, Ordering::Relaxed);
                *slot = Some(index.clone());
                self.state().error = None;
                Ok(index)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot open the notes index");
                self.state().error = Some(e.to_string());
                Err(e.into())
            }
        }
    }

    /// Runs a full rescan now and waits for it.
    pub async fn reindex(&self) -> Result<ScanReport, RagError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Rescan(Some(tx)))
            .map_err(|_| RagError::Stopped)?;
        rx.await
            .map_err(|_| RagError::Stopped)?
            .map_err(RagError::Internal)
    }

    /// Every indexed note with its chunks (`notes files`).
    pub async fn files(&self) -> Result<Vec<index::IndexedFile>, RagError> {
        let index = self.index().await?;
        tokio::task::spawn_blocking(move || index.files())
            .await
            .map_err(|e| RagError::Internal(e.to_string()))?
            .map_err(RagError::from)
    }

    /// `notes status`.
    pub async fn status(&self) -> Status {
        let totals = match self.index().await {
            Ok(index) => tokio::task::spawn_blocking(move || index.totals())
                .await
                .map_err(|e| e.to_string())
                .and_then(|t| t.map_err(|e| e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        let embedder = self.embedder.model_id().map(str::to_string);
        let embedder_loaded = self.embedder.is_loaded();
        let state = self.state();
        let (totals, error) = match totals {
            Ok(t) => (Some(t), state.error.clone()),
            Err(e) => (None, Some(e)),
        };
        Status {
            enabled: self.enabled(),
            folders: self.roots.iter().map(|p| p.display().to_string()).collect(),
            index: self.index_path.display().to_string(),
            files: totals.as_ref().map_or(0, |t| t.files),
            images: totals.as_ref().map_or(0, |t| t.images),
            chunks: totals.as_ref().map_or(0, |t| t.chunks),
            embedded_chunks: totals.as_ref().map_or(0, |t| t.with_vectors),
            sentences: totals.as_ref().map_or(0, |t| t.sentences),
            embedded_sentences: totals.as_ref().map_or(0, |t| t.sentences_with_vectors),
            last_update: totals.as_ref().and_then(|t| t.last_update),
            indexing: state.indexing,
            embedder,
            embedder_loaded,
            error,
            skipped: state.skipped.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Callers racing to open a corrupt index set it aside once, and all
    /// then use the one rebuilt index.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_opens_of_a_corrupt_index_set_it_aside_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        std::fs::write(&path, b"SQLite format 3\0not a database".repeat(200)).unwrap();
        let mut config = Config::builtin();
        config.rag.index = path.clone();
        let shutdown = CancellationToken::new();
        let rag = Rag::start(
            &config,
            Events::new(16),
            shutdown.clone(),
            Pipeline::default(),
        );
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let rag = rag.clone();
                tokio::spawn(async move { rag.status().await })
            })
            .collect();
        for racer in racers {
            let status = racer.await.unwrap();
            assert_eq!(status.error, None);
        }
        shutdown.cancel();
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("index.sqlite.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
    }
}
