//! [`Vision`]: the daemon's captioning service. It owns the lazily loaded
//! captioner, the image store and the link to the [`CaptionSink`], and turns
//! one file into a stored, indexed, announced caption (or a named error).
//! Every method here blocks (file I/O, SQLite, the model): call them from
//! tokio's blocking pool.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::blip::Blip;
use super::decode::{self, DecodeLimits};
use super::store::{self, Caption, Entry, FileMeta, Store, StoreError};
use super::{CaptionDoc, CaptionError, CaptionSink, Captioner, ImageEvent};
use crate::events::Events;
use crate::folders::{read_regular, ReadError};
use crate::metrics::Pipeline;

/// How the service captions; built from the `[vision]` config section.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Hugging Face directory of the BLIP model.
    pub model_dir: PathBuf,
    /// The conditional prompt captions continue, if any.
    pub prompt: Option<String>,
    /// Most tokens in a caption, start token and prompt included.
    pub max_length: usize,
    pub limits: DecodeLimits,
    /// Write `<image>.txt` beside each captioned image.
    pub sidecar: bool,
    /// Drop the model after this long without work (`None`: keep it).
    pub idle_unload: Option<Duration>,
    /// The SQLite database of captions.
    pub db: PathBuf,
    /// The watched folders, whose images [`Vision::image`] serves.
    pub folders: Vec<PathBuf>,
}

impl Settings {
    /// The settings `config` gives: the model resolved in the model store
    /// (or taken as a directory), the database under `$XDG_DATA_HOME/voxd`.
    pub fn from_config(config: &crate::config::Config) -> Result<Settings, VisionError> {
        let v = &config.vision;
        let model_dir = if v.model.contains('/') {
            PathBuf::from(&v.model)
        } else {
            crate::models::Store::from_config(&config.models)
                .map_err(|e| VisionError::Config(e.to_string()))?
                .model_dir(&v.model)
        };
        let db = if v.db.as_os_str().is_empty() {
            crate::models::xdg_dir("XDG_DATA_HOME", ".local/share")
                .ok_or_else(|| {
                    VisionError::Config(
                        "cannot find a directory for the image database: set vision.db, or XDG_DATA_HOME, or HOME".into(),
                    )
                })?
                .join("voxd")
                .join("images.db")
        } else {
            v.db.clone()
        };
        Ok(Settings {
            model_dir,
            prompt: Some(v.prompt.trim().to_string()).filter(|p| !p.is_empty()),
            max_length: v.max_length as usize,
            limits: DecodeLimits {
                max_width: v.max_side,
                max_height: v.max_side,
                max_alloc: v.max_decode_mb << 20,
            },
            sidecar: v.sidecar,
            idle_unload: (v.idle_unload_secs > 0).then(|| Duration::from_secs(v.idle_unload_secs)),
            db,
            folders: v.folders.clone(),
        })
    }
}

/// What became of one file.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptionOutcome {
    /// Captioned now, or (`cached`) its content was captioned before.
    Captioned {
        path: PathBuf,
        size: u64,
        caption: Caption,
        cached: bool,
    },
    /// Already recorded with this content: nothing to do.
    Unchanged,
    /// Not captioned; the reason was published as `image.error`.
    Failed { path: PathBuf, reason: String },
}

/// The captioning service shared by the watcher and the socket commands.
pub struct Vision {
    settings: Settings,
    store: Mutex<Store>,
    model: Mutex<Slot>,
    events: Events,
    sink: Option<Arc<dyn CaptionSink>>,
    metrics: Pipeline,
}

struct Slot {
    captioner: Option<Box<dyn Captioner>>,
    last_used: Instant,
}

/// The service could not start.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("[vision] {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while captioning leaves nothing half-written that matters.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Vision {
    /// Opens the store; the model is loaded on first use.
    pub fn open(
        settings: Settings,
        events: Events,
        sink: Option<Arc<dyn CaptionSink>>,
    ) -> Result<Vision, VisionError> {
        crate::private::prepare_file(&settings.db).map_err(|source| VisionError::Dir {
            path: settings.db.clone(),
            source,
        })?;
        let store = Store::open(&settings.db)?;
        Ok(Vision {
            settings,
            store: Mutex::new(store),
            model: Mutex::new(Slot {
                captioner: None,
                last_used: Instant::now(),
            }),
            events,
            sink,
            metrics: Pipeline::default(),
        })
    }

    /// Reports captions to the daemon's metrics (a private set otherwise).
    pub fn with_metrics(mut self, metrics: Pipeline) -> Vision {
        self.metrics = metrics;
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether the model is in memory now.
    pub fn model_loaded(&self) -> bool {
        lock(&self.model).captioner.is_some()
    }

    /// Drops the model when it has been idle for `vision.idle_unload_secs`.
    pub fn unload_if_idle(&self) {
        let Some(idle) = self.settings.idle_unload else {
            return;
        };
        let mut slot = lock(&self.model);
        if slot.captioner.is_some() && slot.last_used.elapsed() >= idle {
            slot.captioner = None;
            tracing::info!("captioning model unloaded after {idle:?} idle");
        }
    }

    /// Captions `image` with the shared model, loading it if needed.
    fn run_model(
        &self,
        image: &image::RgbImage,
        prompt: Option<&str>,
    ) -> Result<(String, String), CaptionError> {
        let mut slot = lock(&self.model);
        if slot.captioner.is_none() {
            let started = Instant::now();
            let blip = Blip::load(&self.settings.model_dir, self.settings.max_length)?;
            tracing::info!(
                model = %self.settings.model_dir.display(),
                load_ms = started.elapsed().as_millis() as u64,
                "captioning model loaded"
            );
            slot.captioner = Some(Box::new(blip));
        }
        let captioner = slot.captioner.as_mut().expect("loaded above");
        let result = captioner.caption(image, prompt);
        let name = captioner.model_name().to_string();
        slot.last_used = Instant::now();
        result.map(|text| (text, name))
    }

    /// Reads `path` within the size limit: its bytes, metadata and hash.
    fn read(&self, path: &Path) -> Result<(Vec<u8>, FileMeta), String> {
        let limit = self.settings.limits.max_alloc;
        let (bytes, meta) = read_regular(path, limit).map_err(|e| match e {
            ReadError::Io(e) => io_reason(&e),
            ReadError::TooLarge { size, max } => {
                format!("file of {size} bytes is larger than the limit of {max}")
            }
            e => e.to_string(),
        })?;
        let hash = hex::encode(Sha256::digest(&bytes));
        Ok((
            bytes,
            FileMeta {
                path: path.to_path_buf(),
                hash,
                size: meta.len(),
                mtime_ns: mtime_ns(&meta),
            },
        ))
    }

    /// Decodes and captions `bytes`; `Err` is the reason it failed.
    fn caption_bytes(
        &self,
        bytes: &[u8],
        hash: &str,
        prompt: Option<&str>,
    ) -> Result<Caption, String> {
        let decoded = decode::decode(bytes, &self.settings.limits).map_err(|e| e.to_string())?;
        let (text, model) = self
            .run_model(&decoded.rgb, prompt)
            .map_err(|e| e.to_string())?;
        Ok(Caption {
            hash: hash.to_string(),
            caption: text,
            model,
            prompt: prompt.unwrap_or_default().to_string(),
            width: decoded.rgb.width(),
            height: decoded.rgb.height(),
            format: decoded.format.to_string(),
            captioned_at: store::now(),
        })
    }

    /// Captions an image received in memory (an upload) without recording
    /// it. `prompt` overrides `vision.prompt`.
    pub fn caption_upload(&self, bytes: &[u8], prompt: Option<&str>) -> Result<Caption, String> {
        let hash = hex::encode(Sha256::digest(bytes));
        self.caption_bytes(bytes, &hash, prompt.or(self.settings.prompt.as_deref()))
    }

    /// Captions `path` without recording it (`voxd caption`). `prompt`
    /// overrides `vision.prompt`.
    pub fn caption_file(
        &self,
        path: &Path,
        prompt: Option<&str>,
    ) -> Result<(u64, Caption), String> {
        let (bytes, meta) = self.read(path)?;
        let prompt = prompt.or(self.settings.prompt.as_deref());
        let caption = self.caption_bytes(&bytes, &meta.hash, prompt)?;
        Ok((meta.size, caption))
    }

    /// Brings the record of the watched file `path` up to date: captions new
    /// content, reuses the caption of known content, publishes
    /// `image.captioned` or `image.error`.
    pub fn process(&self, path: &Path) -> CaptionOutcome {
        let (bytes, meta) = match self.read(path) {
            Ok(read) => read,
            Err(reason) => {
                if !path.exists() {
                    // Gone before we got to it: whatever was recorded is stale.
                    self.remove(path);
                }
                return self.failed(path, None, reason);
            }
        };
        if self.with_store(|s| s.failed_hash(path)).flatten() == Some(meta.hash.clone()) {
            return CaptionOutcome::Unchanged; // reported already; not retried until it changes
        }
        let known = self.with_store(|s| s.file(path)).flatten();
        if known.as_ref().is_some_and(|k| k.hash == meta.hash) {
            if known.is_some_and(|k| k.mtime_ns != meta.mtime_ns || k.size != meta.size) {
                // Touched, same bytes: remember the new stat for the next scan.
                if let Some(Some(caption)) = self.with_store(|s| s.caption(&meta.hash)) {
                    self.with_store(|s| s.put(&meta, &caption));
                }
            }
            return CaptionOutcome::Unchanged;
        }
        let started = Instant::now();
        let (caption, cached) = match self.with_store(|s| s.caption(&meta.hash)).flatten() {
            Some(caption) => (caption, true),
            None => match self.caption_bytes(&bytes, &meta.hash, self.settings.prompt.as_deref()) {
                Ok(caption) => (caption, false),
                Err(reason) => return self.failed(path, Some(&meta), reason),
            },
        };
        let model_time = (!cached).then(|| started.elapsed());
        drop(bytes);
        if self.with_store(|s| s.put(&meta, &caption)).is_none() {
            return self.failed(path, None, "the image store could not be written".into());
        }
        if self.settings.sidecar {
            let sidecar = sidecar_path(path);
            if let Err(e) = fs::write(&sidecar, format!("{}\n", caption.caption)) {
                tracing::warn!(path = %sidecar.display(), error = %e, "cannot write the caption sidecar");
            }
        }
        if let Some(sink) = &self.sink {
            let doc = CaptionDoc {
                doc_id: CaptionDoc::id_for(path),
                path: path.to_path_buf(),
                text: caption.caption.clone(),
            };
            if let Err(e) = sink.upsert(&doc) {
                tracing::warn!(path = %path.display(), error = %e, "caption not indexed");
            }
        }
        self.metrics
            .observe_caption(if cached { "cached" } else { "captioned" }, model_time);
        tracing::info!(path = %path.display(), cached, caption = %caption.caption, "image captioned");
        self.events.publish(ImageEvent::Captioned {
            path: path.to_path_buf(),
            size: meta.size,
            hash: caption.hash.clone(),
            caption: caption.caption.clone(),
            width: caption.width,
            height: caption.height,
            format: caption.format.clone(),
            model: caption.model.clone(),
            prompt: caption.prompt.clone(),
            cached,
        });
        CaptionOutcome::Captioned {
            path: path.to_path_buf(),
            size: meta.size,
            caption,
            cached,
        }
    }

    /// Reports a file that was written and then vanished before it could be
    /// read (`image.error`).
    pub fn vanished(&self, path: &Path) {
        self.failed(path, None, "removed before it could be captioned".into());
    }

    /// Forgets files that left the watched folders (`path` itself, or all
    /// under it when it was a folder), publishing `image.removed` for each.
    pub fn remove(&self, path: &Path) {
        let mut gone = self.with_store(|s| s.paths_under(path)).unwrap_or_default();
        gone.push(path.to_path_buf());
        for p in gone {
            if self.with_store(|s| s.remove(&p)) == Some(true) {
                self.unindex(&p);
                self.events.publish(ImageEvent::Removed { path: p });
            }
        }
    }

    /// `voxd images forget`: drops the record (and the caption, unless other
    /// files share it) and the indexed document. Returns whether it was known.
    pub fn forget(&self, path: &Path) -> Result<bool, StoreError> {
        let known = lock(&self.store).forget(path)?;
        if known {
            self.unindex(path);
            self.events.publish(ImageEvent::Removed {
                path: path.to_path_buf(),
            });
        }
        Ok(known)
    }

    /// `voxd images list`.
    pub fn list(&self, since: Option<i64>) -> Result<Vec<Entry>, StoreError> {
        lock(&self.store).list(since)
    }

    /// Every recorded caption as a document for the [`CaptionSink`], oldest
    /// first (the order they were added in), so that the sink can be brought
    /// back in step with the store (after its index was rebuilt, say).
    pub fn documents(&self) -> Result<Vec<CaptionDoc>, StoreError> {
        let mut entries = self.list(None)?;
        entries.sort_by(|a, b| (a.added_at, &a.path).cmp(&(b.added_at, &b.path)));
        Ok(entries
            .into_iter()
            .map(|e| CaptionDoc {
                doc_id: CaptionDoc::id_for(&e.path),
                path: e.path,
                text: e.caption.caption,
            })
            .collect())
    }

    /// Whether the scan should hand `path` to [`Vision::process`]: it is not
    /// recorded (as captioned or failed) with its current size and mtime.
    pub fn needs_work(&self, path: &Path, meta: &fs::Metadata) -> bool {
        let (size, mtime) = (meta.len(), mtime_ns(meta));
        let store = lock(&self.store);
        let done = matches!(store.file(path), Ok(Some(f)) if f.size == size && f.mtime_ns == mtime)
            || matches!(store.failure(path), Ok(Some(f)) if f == (size, mtime));
        !done
    }

    /// Recorded paths under `dir` (captioned or failed), for the scan.
    pub fn recorded_under(&self, dir: &Path) -> Vec<PathBuf> {
        self.with_store(|s| s.paths_under(dir)).unwrap_or_default()
    }

    fn unindex(&self, path: &Path) {
        if let Some(sink) = &self.sink {
            if let Err(e) = sink.remove(&CaptionDoc::id_for(path)) {
                tracing::warn!(path = %path.display(), error = %e, "caption not removed from the index");
            }
        }
    }

    fn failed(&self, path: &Path, meta: Option<&FileMeta>, reason: String) -> CaptionOutcome {
        if let Some(meta) = meta {
            if self.with_store(|s| s.put_failure(meta, &reason)) == Some(true) {
                self.unindex(path);
            }
        }
        self.metrics.observe_caption("failed", None);
        tracing::warn!(path = %path.display(), %reason, "image not captioned");
        self.events.publish(ImageEvent::Error {
            path: path.to_path_buf(),
            reason: reason.clone(),
        });
        CaptionOutcome::Failed {
            path: path.to_path_buf(),
            reason,
        }
    }

    /// Runs `f` on the store; a store error is logged and gives `None`.
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T, StoreError>) -> Option<T> {
        match f(&mut lock(&self.store)) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(error = %e, "image store");
                None
            }
        }
    }
}

/// `photo.jpg` → `photo.jpg.txt`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".txt");
    PathBuf::from(name)
}

fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "removed before it could be captioned".into(),
        _ => format!("cannot read: {e}"),
    }
}

/// Drops the model after `vision.idle_unload_secs` without work; ends when
/// `shutdown` is cancelled.
pub async fn unload_when_idle(vision: Arc<Vision>, shutdown: tokio_util::sync::CancellationToken) {
    let Some(idle) = vision.settings().idle_unload else {
        return;
    };
    let period = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let v = vision.clone();
                let _ = tokio::task::spawn_blocking(move || v.unload_if_idle()).await;
            }
        }
    }
}
