//! The embedder's residency. MiniLM holds ~90 MiB once loaded, so it is
//! loaded only when it is needed (notes to embed, a question to answer,
//! or [`Rag::warm`](super::Rag::warm) on the wake word) and, with
//! `rag.idle_unload_secs`, dropped again after that long unused: a daemon
//! on a small board holds no model while nobody talks to it.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Mutex as AsyncMutex;

use super::embed::{Embedder, Pool};
use crate::config::{ModelsConfig, RagConfig};
use crate::models::{self, Manifest, Role, Store};

/// The embedding model: which one, and whether it is loaded.
pub(super) struct Resident {
    models: ModelsConfig,
    workers: usize,
    batch: usize,
    idle: Option<Duration>,
    /// The installed model's id, resolved once (`None`: BM25 only).
    id: OnceLock<Result<String, String>>,
    loaded: AsyncMutex<Option<Pool>>,
    used: Mutex<Instant>,
}

impl Resident {
    pub(super) fn new(config: &RagConfig, models: &ModelsConfig) -> Resident {
        Resident {
            models: models.clone(),
            workers: config.embed_workers,
            batch: config.embed_batch,
            idle: (config.idle_unload_secs > 0)
                .then(|| Duration::from_secs(config.idle_unload_secs)),
            id: OnceLock::new(),
            loaded: AsyncMutex::new(None),
            used: Mutex::new(Instant::now()),
        }
    }

    /// The id of the installed embedding model, without loading it; `None`
    /// when none is installed (retrieval is BM25 only then).
    pub(super) fn model_id(&self) -> Option<&str> {
        self.id
            .get_or_init(|| {
                let manifest = Manifest::load(&self.models).map_err(|e| e.to_string())?;
                let store = Store::from_config(&self.models).map_err(|e| e.to_string())?;
                let id = models::resolve(Role::Embed, &self.models, &manifest, &store);
                id.ok_or_else(|| {
                    let e = "no embedding model is installed; run `voxd models pull`";
                    tracing::warn!(error = e, "no embeddings: retrieval uses BM25 only");
                    e.to_string()
                })
            })
            .as_ref()
            .ok()
            .map(String::as_str)
    }

    /// The embedder, loaded now if it is not; `None` when there is no
    /// model or it fails to load (BM25 only then).
    pub(super) async fn get(&self) -> Option<Pool> {
        self.touch();
        let mut loaded = self.loaded.lock().await;
        if loaded.is_none() {
            *loaded = self.load().await;
        }
        loaded.clone()
    }

    /// Whether the embedder is in memory now.
    pub(super) fn is_loaded(&self) -> bool {
        self.loaded.try_lock().is_ok_and(|l| l.is_some())
    }

    async fn load(&self) -> Option<Pool> {
        let dir = Store::from_config(&self.models)
            .ok()?
            .model_dir(self.model_id()?);
        let (workers, batch) = (self.workers, self.batch);
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || Embedder::load(&dir))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match result {
            Ok(embedder) => {
                tracing::info!(
                    model = self.model_id(),
                    load_ms = started.elapsed().as_millis() as u64,
                    "embedder loaded"
                );
                Some(Pool::new(embedder, workers, batch))
            }
            Err(e) => {
                tracing::warn!(error = %e, "the embedder failed to load: retrieval uses BM25 only until it does");
                None
            }
        }
    }

    fn touch(&self) {
        *self.used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// How long to wait before checking again whether it is idle; `None`
    /// when it is never unloaded.
    pub(super) fn idle_check(&self) -> Option<Duration> {
        self.idle
    }

    /// Drops the embedder if it went unused for `rag.idle_unload_secs`
    /// (an embedding still running keeps its own handle until it ends).
    /// Returns whether it did.
    pub(super) async fn unload_if_idle(&self) -> bool {
        let Some(idle) = self.idle else { return false };
        let mut loaded = self.loaded.lock().await;
        let unused = self
            .used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        if loaded.is_none() || unused < idle {
            return false;
        }
        *loaded = None;
        tracing::info!(idle_secs = unused.as_secs(), "embedder unloaded");
        true
    }
}
