//! Image captions as documents of the notes index: the [`CaptionJob`]s the
//! indexer applies (add or replace one, remove one, sync with the image
//! store) and [`Rag`] as the vision service's [`CaptionSink`], whose calls
//! return once the index holds the change.

use std::collections::HashSet;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::chunk::{self, Format};
use super::files::mtime_ns;
use super::index::Index;
use super::indexer::{Job, Stored};
use super::{Rag, RagError};
use crate::vision::{CaptionDoc, CaptionSink, SinkError};

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

impl Rag {
    /// Applies one change from the image captioner.
    pub(super) async fn apply_caption(&self, job: CaptionJob) -> Result<(), RagError> {
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
        let model = self.embedder.model_id().map(str::to_string);
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
