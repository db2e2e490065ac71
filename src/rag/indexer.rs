//! The single writer: one task applies the indexer's [`Job`]s in order (a
//! full rescan, the watcher's changes and renames, caption changes), embeds
//! each note's chunks and stores them in one transaction, keeps the vector
//! table in step, and embeds the sentences still lacking vectors while it
//! is otherwise idle.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::captions::CaptionJob;
use super::chunk::{self, Format};
use super::files::{read_note, walk, Read};
use super::index::{FileUpdate, Index};
use super::{is_temp, watch, Rag, RagError, RagEvent, Skipped};

/// Skipped files remembered for `notes status`.
const SKIPPED_KEPT: usize = 100;

/// Work for the indexer task.
#[derive(Debug)]
pub enum Job {
    /// Walk every notes folder: index new and changed files, drop vanished ones.
    Rescan(Option<oneshot::Sender<Result<ScanReport, String>>>),
    /// These paths changed (created, modified, deleted).
    Changed(Vec<PathBuf>),
    /// A file or folder was renamed.
    Renamed(PathBuf, PathBuf),
    /// A change to the image captions, answered when applied.
    Caption(CaptionJob, Option<oneshot::Sender<Result<(), String>>>),
}

/// What a rescan did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScanReport {
    pub files: usize,
    pub indexed: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub skipped: usize,
    pub chunks: usize,
    pub elapsed_ms: u64,
}

impl Rag {
    /// Puts the index's size in the metrics (after each indexer job).
    async fn count(&self) {
        let Ok(index) = self.index().await else {
            return;
        };
        if let Ok(Ok(t)) = tokio::task::spawn_blocking(move || index.totals()).await {
            self.metrics.set_rag_index(t.files, t.images, t.chunks);
        }
    }

    fn root_of(&self, path: &Path) -> Option<&PathBuf> {
        self.roots.iter().find(|root| path.starts_with(root))
    }

    /// The indexer: applies jobs one at a time until shutdown.
    pub(super) async fn run(
        self: Arc<Rag>,
        mut rx: mpsc::UnboundedReceiver<Job>,
        shutdown: CancellationToken,
    ) {
        let _watcher = if self.roots.is_empty() {
            None
        } else {
            let debounce = Duration::from_millis(self.config.debounce_ms);
            match watch::watch(&self.roots, debounce, self.jobs.clone()) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::error!(error = %e, "cannot watch the notes folders; changes need `voxd notes reindex`");
                    None
                }
            }
        };
        // Sentences may still lack embeddings (an index left mid-way).
        let mut sentences_pending = true;
        loop {
            if sentences_pending && rx.is_empty() && !shutdown.is_cancelled() {
                sentences_pending = self.embed_sentences().await;
                continue;
            }
            let job = tokio::select! {
                job = rx.recv() => job,
                _ = shutdown.cancelled() => None,
            };
            let Some(job) = job else { break };
            sentences_pending = true;
            self.state().indexing = true;
            match job {
                Job::Rescan(reply) => {
                    let result = self.rescan().await.map_err(|e| e.to_string());
                    // An index-wide failure (locked, a full disk) stops the
                    // scan and shows in `notes status` until one succeeds.
                    match &result {
                        Err(e) => {
                            tracing::error!(error = %e, "notes rescan failed");
                            self.state().error = Some(format!("the last rescan failed: {e}"));
                        }
                        Ok(_) => self.state().error = None,
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(result);
                    }
                }
                Job::Changed(paths) => {
                    for path in paths {
                        if let Err(e) = self.sync_path(&path).await {
                            tracing::warn!(path = %path.display(), error = %e, "cannot index this change");
                        }
                    }
                }
                Job::Renamed(from, to) => {
                    if let Err(e) = self.rename(&from, &to).await {
                        tracing::warn!(from = %from.display(), to = %to.display(), error = %e, "cannot apply this rename");
                    }
                }
                Job::Caption(job, reply) => {
                    let what = format!("{job:?}");
                    let result = self.apply_caption(job).await.map_err(|e| e.to_string());
                    if let Err(e) = &result {
                        tracing::warn!(job = %what, error = %e, "cannot apply this caption change");
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(result);
                    }
                }
            }
            self.state().indexing = !rx.is_empty();
            self.count().await;
        }
        self.state().indexing = false;
    }

    /// Embeds one batch of the sentences the index has no embedding for
    /// yet (answers then find them stored instead of embedding them while
    /// the asker waits). Returns whether more may be left.
    async fn embed_sentences(&self) -> bool {
        let Ok(index) = self.index().await else {
            return false;
        };
        // Small batches: a question's own embedding waits for at most one.
        let batch = self.config.embed_batch.clamp(1, 4);
        let result = async {
            let pending = {
                let index = index.clone();
                tokio::task::spawn_blocking(move || index.sentences_to_embed(batch))
                    .await
                    .map_err(|e| RagError::Internal(e.to_string()))??
            };
            // Only now the embedder: an index with nothing to embed loads none.
            let pool = match pending.is_empty() {
                true => None,
                false => self.embedder.get().await,
            };
            let Some(pool) = pool else {
                return Ok(false);
            };
            let (ids, texts): (Vec<i64>, Vec<String>) = pending.into_iter().unzip();
            let vectors: Vec<(i64, Vec<f32>)> =
                ids.into_iter().zip(pool.embed(texts).await?).collect();
            tokio::task::spawn_blocking(move || index.set_sentence_vectors(&vectors))
                .await
                .map_err(|e| RagError::Internal(e.to_string()))??;
            Ok::<_, RagError>(true)
        };
        result.await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot store sentence embeddings; answers embed them as needed");
            false
        })
    }

    async fn rescan(&self) -> Result<ScanReport, RagError> {
        let started = Instant::now();
        let index = self.index().await?;
        let roots = self.roots.clone();
        // Oldest first, so that first-time revisions follow modification order.
        let files = tokio::task::spawn_blocking(move || {
            let mut files = Vec::new();
            for root in &roots {
                walk(root, &mut files);
            }
            files.sort_by_key(|(path, mtime)| (*mtime, path.clone()));
            files
        })
        .await
        .map_err(|e| RagError::Internal(e.to_string()))?;
        let mut report = ScanReport {
            files: files.len(),
            ..ScanReport::default()
        };
        let present: HashSet<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        // A file that cannot be read is skipped (`notes status` says why)
        // and the scan goes on; an error of the index itself ends it.
        for (path, _) in &files {
            match self.index_file(&index, path).await? {
                Indexed::Chunks(n) => {
                    report.indexed += 1;
                    report.chunks += n;
                }
                Indexed::Unchanged => report.unchanged += 1,
                Indexed::Skipped | Indexed::Deferred => report.skipped += 1,
            }
        }
        let stale: Vec<String> = {
            let index = index.clone();
            tokio::task::spawn_blocking(move || index.paths())
                .await
                .map_err(|e| RagError::Internal(e.to_string()))??
                .into_iter()
                .filter(|p| !present.contains(p))
                .collect()
        };
        for path in stale {
            self.remove(&index, &path).await?;
            report.removed += 1;
        }
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::info!(?report, "notes rescanned");
        self.events.publish(RagEvent::Indexed(report.clone()));
        Ok(report)
    }

    async fn sync_path(&self, path: &Path) -> Result<(), RagError> {
        if self.root_of(path).is_none() {
            return Ok(());
        }
        let index = self.index().await?;
        let meta = std::fs::metadata(path);
        match meta {
            Ok(m) if m.is_dir() => {
                let dir = path.to_path_buf();
                let files = tokio::task::spawn_blocking(move || {
                    let mut files = Vec::new();
                    walk(&dir, &mut files);
                    files
                })
                .await
                .map_err(|e| RagError::Internal(e.to_string()))?;
                for (file, _) in files {
                    self.index_file(&index, &file).await?;
                }
            }
            Ok(_) => {
                let outcome = self.index_file(&index, path).await?;
                if let Indexed::Chunks(n) = outcome {
                    self.events.publish(RagEvent::Changed {
                        path: path.to_path_buf(),
                        chunks: n,
                    });
                }
            }
            Err(_) => {
                if self.remove(&index, &path.display().to_string()).await? > 0 {
                    self.events.publish(RagEvent::Removed {
                        path: path.to_path_buf(),
                    });
                }
            }
        }
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path) -> Result<(), RagError> {
        let index = self.index().await?;
        let moved = if self.root_of(to).is_some() && (to.is_dir() || Format::of(to).is_some()) {
            let (f, t) = (from.display().to_string(), to.display().to_string());
            let index = index.clone();
            tokio::task::spawn_blocking(move || index.rename(&f, &t))
                .await
                .map_err(|e| RagError::Internal(e.to_string()))??
        } else {
            0
        };
        if moved == 0 {
            // Not indexed before (or moved out of the folders): treat as two changes.
            self.sync_path(from).await?;
            self.sync_path(to).await?;
        } else {
            // The content may have changed with the move (save-by-rename).
            self.sync_path(to).await?;
            self.events.publish(RagEvent::Renamed {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
            });
        }
        Ok(())
    }

    pub(super) async fn remove(&self, index: &Arc<Index>, path: &str) -> Result<usize, RagError> {
        let index = index.clone();
        let path = path.to_string();
        let changed = tokio::task::spawn_blocking(move || index.remove(&path))
            .await
            .map_err(|e| RagError::Internal(e.to_string()))??;
        let mut table = self.vectors.write().unwrap_or_else(|e| e.into_inner());
        for id in &changed.removed {
            table.remove(*id);
        }
        Ok(changed.removed.len())
    }

    fn skip(&self, path: &Path, reason: String) {
        tracing::info!(path = %path.display(), %reason, "skipping a file in the notes folder");
        let mut state = self.state();
        let path = path.display().to_string();
        state.skipped.retain(|s| s.path != path);
        state.skipped.push(Skipped { path, reason });
        if state.skipped.len() > SKIPPED_KEPT {
            state.skipped.remove(0);
        }
    }

    /// Indexes one file if it changed.
    async fn index_file(&self, index: &Arc<Index>, path: &Path) -> Result<Indexed, RagError> {
        let Some(format) = Format::of(path) else {
            return Ok(Indexed::Skipped);
        };
        if is_temp(path) {
            return Ok(Indexed::Skipped);
        }
        let model = self.embedder.model_id().map(str::to_string);
        let read = {
            let index = index.clone();
            let path = path.to_path_buf();
            let max = self.config.max_file_kb * 1024;
            let model = model.clone();
            tokio::task::spawn_blocking(move || read_note(&index, &path, max, model.as_deref()))
                .await
                .map_err(|e| RagError::Internal(e.to_string()))??
        };
        let (text, hash, size, mtime_ns) = match read {
            Read::Unchanged => return Ok(Indexed::Unchanged),
            Read::Deferred => return Ok(Indexed::Deferred),
            Read::Skip(reason) => {
                self.skip(path, reason);
                self.remove(index, &path.display().to_string()).await?;
                return Ok(Indexed::Skipped);
            }
            Read::Text {
                text,
                hash,
                size,
                mtime_ns,
            } => (text, hash, size, mtime_ns),
        };
        let chunks = chunk::chunk(&text, format);
        let stored = Stored {
            key: path.display().to_string(),
            hash,
            size,
            mtime_ns,
            model,
        };
        self.store(index, stored, chunks).await.map(Indexed::Chunks)
    }

    /// Embeds `chunks` and replaces the document's chunks with them (one
    /// transaction), then updates the vector table. Returns the chunk count.
    pub(super) async fn store(
        &self,
        index: &Arc<Index>,
        doc: Stored,
        chunks: Vec<chunk::Chunk>,
    ) -> Result<usize, RagError> {
        let vectors = match self.embedder.get().await {
            Some(pool) => Some(
                pool.embed(chunks.iter().map(chunk::Chunk::embed_text).collect())
                    .await?,
            ),
            None => None,
        };
        let n = chunks.len();
        let changed = {
            let index = index.clone();
            tokio::task::spawn_blocking(move || {
                index.replace_file(&FileUpdate {
                    path: &doc.key,
                    hash: &doc.hash,
                    size: doc.size,
                    mtime_ns: doc.mtime_ns,
                    // Without vectors (the embedder failed to load), no
                    // model: the next scan embeds it.
                    embed_model: doc.model.as_deref().filter(|_| vectors.is_some()),
                    chunks: &chunks,
                    vectors: vectors.as_deref(),
                })
            })
            .await
            .map_err(|e| RagError::Internal(e.to_string()))??
        };
        let mut table = self.vectors.write().unwrap_or_else(|e| e.into_inner());
        for id in &changed.removed {
            table.remove(*id);
        }
        for (id, v) in &changed.added {
            table.insert(*id, v);
        }
        Ok(n)
    }
}

/// A document's key and stamp as the index stores them.
pub(super) struct Stored {
    /// The note's path, or the caption's document id.
    pub(super) key: String,
    pub(super) hash: String,
    pub(super) size: u64,
    pub(super) mtime_ns: i64,
    pub(super) model: Option<String>,
}

enum Indexed {
    Chunks(usize),
    Unchanged,
    Skipped,
    /// The file changed while it was read; its next change event retries.
    Deferred,
}
