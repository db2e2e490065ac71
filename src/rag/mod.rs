//! Retrieval over the user's notes folders (markdown and plain text):
//! [`chunk`] splits notes, [`embed`] runs the sentence embedder in-process,
//! [`index`] stores everything in SQLite, [`rank`] fuses BM25 and cosine
//! rankings, `watch` follows changes, and [`answer`] turns retrieved
//! sources into grounded answers.
//!
//! [`Rag`] is the running service: one indexer task applies every change
//! (a full rescan at start, then the watcher's batches, and the image
//! captions it receives as the vision service's [`CaptionSink`]) in order,
//! so the index has a single writer; queries read concurrently. The
//! embedder is loaded on first use. Owns the index file and the watcher;
//! reaches the model store (read-only) and the event bus.
//!
//! Image captions are documents of their own kind ([`DocKind::Image`]): one
//! chunk per caption, embedded like a note, cited as the image file at
//! line 1. The notes rescan and watcher never touch them; the vision service adds,
//! replaces and removes them, and [`Rag::sync_captions`] brings them in step
//! with the image store at start.

pub mod answer;
pub mod chunk;
pub mod embed;
pub mod index;
pub mod rank;
mod watch;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, OnceCell};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, RagConfig};
use crate::events::{Event, Events};
use crate::metrics::Pipeline;
use crate::models::{self, Manifest, Role, Store};
use crate::vision::{CaptionDoc, CaptionSink, SinkError};
use answer::{At, Source};
use chunk::Format;
use embed::Pool;
use index::{ChunkRow, FileUpdate, Index};
use rank::Vectors;

pub use watch::is_temp;

/// Candidates taken from each ranking before fusion.
const CANDIDATES: usize = 50;

/// Skipped files remembered for `notes status`.
const SKIPPED_KEPT: usize = 100;

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
}

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

/// Where the caption documents come from for [`CaptionJob::Sync`].
pub type CaptionSource = Box<dyn FnOnce() -> Result<Vec<CaptionDoc>, String> + Send>;

/// A change from the image captioner.
pub enum CaptionJob {
    /// Add or replace one caption document.
    Upsert(CaptionDoc),
    /// Remove the caption document with this id.
    Remove(String),
    /// Make the caption documents exactly what the source gives (read when
    /// the job runs, so no change queued before it is undone), oldest first.
    Sync(CaptionSource),
}

impl std::fmt::Debug for CaptionJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptionJob::Upsert(doc) => f.debug_tuple("Upsert").field(&doc.doc_id).finish(),
            CaptionJob::Remove(id) => f.debug_tuple("Remove").field(id).finish(),
            CaptionJob::Sync(_) => f.write_str("Sync"),
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
    pub embedder: Option<String>,
    pub error: Option<String>,
    pub skipped: Vec<Skipped>,
}

/// One retrieved chunk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub kind: DocKind,
    /// The note, or the captioned image.
    pub path: String,
    /// Relative to its notes folder; an image's file name.
    pub name: String,
    pub heading: String,
    pub line_start: u32,
    pub line_end: u32,
    pub text: String,
    /// Fused (RRF) score.
    pub score: f32,
    /// Cosine similarity to the query, when embeddings are available.
    pub cosine: Option<f32>,
    pub bm25_rank: Option<usize>,
    pub cosine_rank: Option<usize>,
    /// The newest picture, put first because the query asks for the latest
    /// one ([`rank::asks_for_latest_image`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub latest: bool,
    #[serde(skip)]
    pub chunk: ChunkRow,
}

/// Everything an answer needs: numbered sources, the question's vector,
/// each source sentence's vector, and the superseded sentences.
#[derive(Debug, Default)]
pub struct Prepared {
    pub sources: Vec<Source>,
    pub query: Vec<f32>,
    pub sentence_vectors: Vec<Vec<Vec<f32>>>,
    pub dropped: HashSet<At>,
    /// The best source's cosine similarity (the abstain decision).
    pub best_score: f32,
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
    models: crate::config::ModelsConfig,
    roots: Vec<PathBuf>,
    index_path: PathBuf,
    index: Mutex<Option<Arc<Index>>>,
    embedder: OnceCell<Result<(String, Pool), String>>,
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
            config: cfg,
            models: config.models.clone(),
            roots,
            index_path,
            index: Mutex::new(None),
            embedder: OnceCell::new(),
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
        tokio::spawn(rag.clone().run(rx, shutdown));
        rag
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
        self.events.publish(Event::new(
            "rag.state",
            serde_json::json!({ "enabled": on }),
        ));
    }

    pub fn config(&self) -> &RagConfig {
        &self.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The index, opening it (and loading its vectors) if needed. A failure
    /// is reported and retried on the next call.
    async fn index(&self) -> Result<Arc<Index>, RagError> {
        if let Some(index) = self.index.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(index);
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
                *self.index.lock().unwrap_or_else(|e| e.into_inner()) = Some(index.clone());
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

    /// The embedder (loaded on first use), or `None` when the embedding
    /// model is not installed or fails to load (BM25 only then).
    async fn embedder(&self) -> Option<&(String, Pool)> {
        let loaded = self
            .embedder
            .get_or_init(|| async {
                let models = self.models.clone();
                let (workers, batch) = (self.config.embed_workers, self.config.embed_batch);
                let started = Instant::now();
                let result = tokio::task::spawn_blocking(move || {
                    let manifest = Manifest::load(&models).map_err(|e| e.to_string())?;
                    let store = Store::from_config(&models).map_err(|e| e.to_string())?;
                    let id = models::resolve(Role::Embed, &models, &manifest, &store).ok_or_else(
                        || "no embedding model is installed; run `voxd models pull`".to_string(),
                    )?;
                    let embedder =
                        embed::Embedder::load(&store.model_dir(&id)).map_err(|e| e.to_string())?;
                    Ok((id, Pool::new(embedder, workers, batch)))
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                match &result {
                    Ok((id, _)) => tracing::info!(model = %id, load_ms = started.elapsed().as_millis() as u64, "embedder loaded"),
                    Err(e) => tracing::warn!(error = %e, "no embeddings: retrieval uses BM25 only"),
                }
                result
            })
            .await;
        loaded.as_ref().ok()
    }

    /// Puts the index's size in the metrics (after each indexer job).
    async fn count(&self) {
        let Ok(index) = self.index().await else {
            return;
        };
        if let Ok(Ok(t)) = tokio::task::spawn_blocking(move || index.totals()).await {
            self.metrics.set_rag_index(t.files, t.images, t.chunks);
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

    /// `notes status`.
    pub async fn status(&self) -> Status {
        let totals = match self.index().await {
            Ok(index) => tokio::task::spawn_blocking(move || index.totals())
                .await
                .map_err(|e| e.to_string())
                .and_then(|t| t.map_err(|e| e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        let embedder = match self.embedder.get() {
            Some(Ok((id, _))) => Some(id.clone()),
            _ => None,
        };
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
            error,
            skipped: state.skipped.clone(),
        }
    }

    /// Hybrid search: BM25 and cosine rankings fused by RRF, best `k`.
    pub async fn search(&self, query: &str, k: usize) -> Result<(Vec<Hit>, Vec<f32>), RagError> {
        let started = Instant::now();
        let index = self.index().await?;
        let qvec = match self.embedder().await {
            Some((_, pool)) => pool
                .embed(vec![query.to_string()])
                .await?
                .pop()
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let bm25 = {
            let index = index.clone();
            let query = query.to_string();
            tokio::task::spawn_blocking(move || index.bm25(&query, CANDIDATES))
                .await
                .map_err(|e| RagError::Internal(e.to_string()))??
        };
        let (cosine, scores) = {
            let table = self.vectors.read().unwrap_or_else(|e| e.into_inner());
            let top = table.top(&qvec, CANDIDATES);
            let mut scores: HashMap<i64, f32> = top.iter().copied().collect();
            for id in &bm25 {
                if let Some(s) = table.score(*id, &qvec) {
                    scores.insert(*id, s);
                }
            }
            (
                top.into_iter().map(|(id, _)| id).collect::<Vec<_>>(),
                scores,
            )
        };
        let mut fused = rank::rrf(&[&bm25, &cosine]);
        let latest = if rank::asks_for_latest_image(query) {
            let index = index.clone();
            tokio::task::spawn_blocking(move || index.newest_image())
                .await
                .map_err(|e| RagError::Internal(e.to_string()))??
        } else {
            Vec::new()
        };
        if !latest.is_empty() {
            let top = fused.first().map_or(0.0, |(_, s)| *s);
            fused.retain(|(id, _)| !latest.contains(id));
            fused.splice(0..0, latest.iter().map(|id| (*id, top)));
        }
        let ids: Vec<i64> = fused.iter().take(k).map(|(id, _)| *id).collect();
        let rows = tokio::task::spawn_blocking(move || index.chunks(&ids))
            .await
            .map_err(|e| RagError::Internal(e.to_string()))??;
        let fused: HashMap<i64, f32> = fused.into_iter().collect();
        let hits = rows
            .into_iter()
            .map(|row| Hit {
                kind: self.kind_of(&row.path),
                name: self.display_name(&row.path),
                path: CaptionDoc::path_of(&row.path)
                    .map_or_else(|| row.path.clone(), |p| p.display().to_string()),
                latest: latest.contains(&row.id),
                heading: row.heading.clone(),
                line_start: row.lines.start,
                line_end: row.lines.end,
                text: row.text.clone(),
                score: fused.get(&row.id).copied().unwrap_or(0.0),
                cosine: scores.get(&row.id).copied(),
                bm25_rank: bm25.iter().position(|x| *x == row.id).map(|r| r + 1),
                cosine_rank: cosine.iter().position(|x| *x == row.id).map(|r| r + 1),
                chunk: row,
            })
            .collect();
        self.metrics.observe_rag_query(started.elapsed());
        Ok((hits, qvec))
    }

    /// Retrieves and prepares the sources for answering `question`.
    /// A question about the latest picture is answered from that picture
    /// alone: older pictures and notes that merely resemble the question
    /// would only compete with it.
    pub async fn prepare(&self, question: &str) -> Result<Prepared, RagError> {
        let (mut hits, query) = self.search(question, self.config.top_k).await?;
        if hits.first().is_some_and(|h| h.latest) {
            hits.retain(|h| h.latest);
        }
        let mut sources: Vec<Source> = hits
            .into_iter()
            .enumerate()
            .map(|(i, hit)| Source {
                n: i + 1,
                kind: hit.kind,
                path: hit.path,
                name: hit.name,
                heading: hit.heading,
                lines: hit.chunk.lines,
                // What the question asks for by recency is relevant, whatever
                // its words.
                score: if hit.latest {
                    1.0
                } else {
                    hit.cosine.unwrap_or(0.0)
                },
                sentences: hit.chunk.sentences,
            })
            .collect();
        let best_score = if query.is_empty() {
            // No embeddings: any lexical match counts as relevant.
            if sources.is_empty() {
                0.0
            } else {
                1.0
            }
        } else {
            sources.iter().map(|s| s.score).fold(0.0, f32::max)
        };
        let mut sentence_vectors = vec![Vec::new(); sources.len()];
        if let (Some((_, pool)), false) = (self.embedder().await, query.is_empty()) {
            // Stored when the note was indexed; embedded now only where the
            // index has none (a note indexed while no embedder was loaded).
            let missing: Vec<String> = sources
                .iter()
                .flat_map(|s| {
                    s.sentences
                        .iter()
                        .filter(|x| x.vector.is_none())
                        .map(|x| chunk::sentence_embed_text(&s.heading, &x.text))
                })
                .collect();
            let mut fresh = pool.embed(missing).await?.into_iter();
            for (s, source) in sources.iter_mut().enumerate() {
                sentence_vectors[s] = source
                    .sentences
                    .iter_mut()
                    .map(|x| x.vector.take().or_else(|| fresh.next()).unwrap_or_default())
                    .collect();
            }
        }
        let dropped = answer::superseded(&sources, &sentence_vectors);
        Ok(Prepared {
            sources,
            query,
            sentence_vectors,
            dropped,
            best_score,
        })
    }

    /// The most recently changed note in the notes folders ("read my last
    /// note"), from the files themselves, not the index.
    pub async fn latest_note(&self) -> Option<PathBuf> {
        let roots = self.roots.clone();
        tokio::task::spawn_blocking(move || {
            let mut files = Vec::new();
            for root in &roots {
                walk(root, &mut files);
            }
            files
                .into_iter()
                .max_by_key(|(path, mtime)| (*mtime, path.clone()))
        })
        .await
        .ok()
        .flatten()
        .map(|(path, _)| path)
    }

    /// `path` relative to the notes folder that holds it; a caption
    /// document's image file name.
    fn display_name(&self, path: &str) -> String {
        if let Some(image) = CaptionDoc::path_of(path) {
            return image.file_name().map_or_else(
                || image.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
        }
        let p = Path::new(path);
        self.roots
            .iter()
            .find_map(|root| p.strip_prefix(root).ok())
            .map_or_else(|| path.to_string(), |rel| rel.display().to_string())
    }

    fn kind_of(&self, key: &str) -> DocKind {
        if CaptionDoc::path_of(key).is_some() {
            DocKind::Image
        } else {
            DocKind::Note
        }
    }

    fn root_of(&self, path: &Path) -> Option<&PathBuf> {
        self.roots.iter().find(|root| path.starts_with(root))
    }

    /// The indexer: applies jobs one at a time until shutdown.
    async fn run(
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
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "notes rescan failed");
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
        let (Some((_, pool)), Ok(index)) = (self.embedder().await, self.index().await) else {
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
            if pending.is_empty() {
                return Ok(false);
            }
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
        self.events.publish(Event::new(
            "notes.indexed",
            serde_json::to_value(&report).unwrap_or_default(),
        ));
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
                    self.events.publish(Event::new(
                        "notes.changed",
                        serde_json::json!({ "path": path, "chunks": n }),
                    ));
                }
            }
            Err(_) => {
                if self.remove(&index, &path.display().to_string()).await? > 0 {
                    self.events.publish(Event::new(
                        "notes.removed",
                        serde_json::json!({ "path": path }),
                    ));
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
            self.events.publish(Event::new(
                "notes.renamed",
                serde_json::json!({ "from": from, "to": to }),
            ));
        }
        Ok(())
    }

    async fn remove(&self, index: &Arc<Index>, path: &str) -> Result<usize, RagError> {
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
        let model = self.embedder().await.map(|(id, _)| id.clone());
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
    async fn store(
        &self,
        index: &Arc<Index>,
        doc: Stored,
        chunks: Vec<chunk::Chunk>,
    ) -> Result<usize, RagError> {
        let vectors = match self.embedder().await {
            Some((_, pool)) => Some(
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
                    embed_model: doc.model.as_deref(),
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

    /// Applies one change from the image captioner.
    async fn apply_caption(&self, job: CaptionJob) -> Result<(), RagError> {
        let index = self.index().await?;
        match job {
            CaptionJob::Upsert(doc) => {
                self.index_caption(&index, &doc).await?;
            }
            CaptionJob::Remove(doc_id) => {
                self.remove(&index, &doc_id).await?;
            }
            CaptionJob::Sync(source) => {
                let docs = tokio::task::spawn_blocking(source)
                    .await
                    .map_err(|e| RagError::Internal(e.to_string()))?
                    .map_err(RagError::Internal)?;
                let wanted: HashSet<&str> = docs.iter().map(|d| d.doc_id.as_str()).collect();
                let known = {
                    let index = index.clone();
                    tokio::task::spawn_blocking(move || index.image_docs())
                        .await
                        .map_err(|e| RagError::Internal(e.to_string()))??
                };
                let mut removed = 0;
                for doc_id in known.iter().filter(|id| !wanted.contains(id.as_str())) {
                    removed += self.remove(&index, doc_id).await?.min(1);
                }
                let mut added = 0;
                for doc in &docs {
                    added += usize::from(self.index_caption(&index, doc).await?);
                }
                tracing::info!(
                    captions = docs.len(),
                    added,
                    removed,
                    "image captions in step with the index"
                );
            }
        }
        Ok(())
    }

    /// Indexes one caption unless the same text is indexed already with the
    /// same embedder. Returns whether it wrote.
    async fn index_caption(&self, index: &Arc<Index>, doc: &CaptionDoc) -> Result<bool, RagError> {
        let model = self.embedder().await.map(|(id, _)| id.clone());
        let hash = hex::encode(Sha256::digest(doc.text.as_bytes()));
        let known = {
            let index = index.clone();
            let key = doc.doc_id.clone();
            tokio::task::spawn_blocking(move || index.file_state(&key))
                .await
                .map_err(|e| RagError::Internal(e.to_string()))??
        };
        if known.is_some_and(|k| k.hash == hash && k.embed_model == model) {
            return Ok(false);
        }
        let mtime_ns = std::fs::metadata(&doc.path).map_or(0, |m| mtime_ns(&m));
        let stored = Stored {
            key: doc.doc_id.clone(),
            hash,
            size: doc.text.len() as u64,
            mtime_ns,
            model,
        };
        self.store(index, stored, chunk::chunk(&doc.text, Format::Plain))
            .await?;
        Ok(true)
    }

    /// Makes the caption documents exactly what `source` gives (the image
    /// store's records, oldest first); queued behind earlier changes and
    /// read when it runs.
    pub fn sync_captions(
        &self,
        source: impl FnOnce() -> Result<Vec<CaptionDoc>, String> + Send + 'static,
    ) {
        let _ = self
            .jobs
            .send(Job::Caption(CaptionJob::Sync(Box::new(source)), None));
    }

    /// Sends a caption change to the indexer and waits until it is applied.
    /// Blocks: call from a blocking thread (as [`CaptionSink`] promises).
    fn caption_job(&self, job: CaptionJob) -> Result<(), SinkError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Caption(job, Some(tx)))
            .map_err(|_| SinkError(RagError::Stopped.to_string()))?;
        rx.blocking_recv()
            .map_err(|_| SinkError(RagError::Stopped.to_string()))?
            .map_err(SinkError)
    }
}

/// The vision service's captions become documents of the notes index; each
/// call returns once the index holds the change (one transaction).
impl CaptionSink for Rag {
    fn upsert(&self, doc: &CaptionDoc) -> Result<(), SinkError> {
        self.caption_job(CaptionJob::Upsert(doc.clone()))
    }

    fn remove(&self, doc_id: &str) -> Result<(), SinkError> {
        self.caption_job(CaptionJob::Remove(doc_id.to_string()))
    }
}

/// A document's key and stamp as the index stores them.
struct Stored {
    /// The note's path, or the caption's document id.
    key: String,
    hash: String,
    size: u64,
    mtime_ns: i64,
    model: Option<String>,
}

enum Indexed {
    Chunks(usize),
    Unchanged,
    Skipped,
    /// The file changed while it was read; its next change event retries.
    Deferred,
}

enum Read {
    Unchanged,
    Deferred,
    Skip(String),
    Text {
        text: String,
        hash: String,
        size: u64,
        mtime_ns: i64,
    },
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Reads a note unless it is unchanged (same size and mtime, or same
/// content hash, embedded by the same model), too large, or binary.
fn read_note(
    index: &Index,
    path: &Path,
    max_bytes: u64,
    model: Option<&str>,
) -> Result<Read, index::IndexError> {
    let Ok(before) = std::fs::metadata(path) else {
        return Ok(Read::Deferred);
    };
    let size = before.len();
    if size > max_bytes {
        return Ok(Read::Skip(format!(
            "{} KiB is larger than rag.max_file_kb ({} KiB)",
            size / 1024,
            max_bytes / 1024
        )));
    }
    let key = path.display().to_string();
    let known = index.file_state(&key)?;
    let same_model = |k: &index::FileState| k.embed_model.as_deref() == model;
    if let Some(k) = &known {
        if k.size == size && k.mtime_ns == mtime_ns(&before) && same_model(k) {
            return Ok(Read::Unchanged);
        }
    }
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(Read::Deferred);
    };
    match std::fs::metadata(path) {
        Ok(after) if after.len() == bytes.len() as u64 && mtime_ns(&after) == mtime_ns(&before) => {
        }
        _ => return Ok(Read::Deferred),
    }
    let hash = hex::encode(Sha256::digest(&bytes));
    if let Some(k) = &known {
        if k.hash == hash && same_model(k) {
            return Ok(Read::Unchanged);
        }
    }
    if bytes.contains(&0) {
        return Ok(Read::Skip("binary file (contains NUL bytes)".into()));
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok(Read::Skip("binary file (not UTF-8 text)".into()));
    };
    Ok(Read::Text {
        text,
        hash,
        size,
        mtime_ns: mtime_ns(&before),
    })
}

/// Note files under `dir` (hidden entries and editor temp files skipped),
/// with their modification time.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, i64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(folder = %dir.display(), "cannot read this notes folder");
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if is_temp(&path) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, out);
        } else if meta.is_file() && Format::of(&path).is_some() {
            out.push((path, mtime_ns(&meta)));
        }
    }
}

/// `rag.index`, or `$XDG_DATA_HOME/voxd/index.sqlite`.
pub fn index_path(cfg: &RagConfig) -> PathBuf {
    data_file(&cfg.index, "index.sqlite")
}

/// `configured`, or `$XDG_DATA_HOME/voxd/<name>` when it is empty.
pub fn data_file(configured: &Path, name: &str) -> PathBuf {
    if !configured.as_os_str().is_empty() {
        return configured.to_path_buf();
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("voxd").join(name)
}
