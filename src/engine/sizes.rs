//! Engine sizes remembered across restarts: the largest peak RSS measured
//! of an engine's workers, per model, kept in a small JSON file
//! (`$XDG_CACHE_HOME/voxd/engine-sizes.json` for the daemon).
//!
//! Without it every daemon start would budget its engines by their
//! configured estimates until each had served a request, and on a small
//! board those estimates can be too large for the engines to stay resident
//! side by side (or for the model to be warmed while a question is spoken).
//!
//! A size belongs to a *workload*: what a request's `data.model` names
//! (the model file and the settings it is loaded with), stamped with the
//! length and modification time of every model file it names. A re-pulled
//! model, another context size or another model altogether is another
//! workload, so a size is never carried over to what it was not measured
//! on. The file is a cache: losing it costs only the estimates until the
//! next measurement, and a corrupt one is ignored (and replaced).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Workloads kept per engine, most recently used first.
const KEEP_PER_ENGINE: usize = 8;

/// What an engine's workers run, with the stamp of its model files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Workload {
    /// A request's `data.model` (`null` for workers that name none).
    pub model: Value,
    /// `model` and the length and mtime of each file it names.
    pub key: String,
}

impl Workload {
    /// The workload of requests whose `data.model` is `model`.
    pub(crate) fn of(model: Value) -> Workload {
        let mut key = model.to_string();
        stamp_files(&model, &mut key);
        Workload { model, key }
    }

    /// Whether the files it names are still the ones it was stamped with.
    fn is_current(&self) -> bool {
        Workload::of(self.model.clone()).key == self.key
    }
}

/// Appends `|path:len:mtime` for every absolute path in `model` that names
/// a file.
fn stamp_files(model: &Value, key: &mut String) {
    match model {
        Value::String(s) if Path::new(s).is_absolute() => {
            if let Some(meta) = std::fs::metadata(s).ok().filter(|m| m.is_file()) {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                key.push_str(&format!("|{s}:{}:{mtime}", meta.len()));
            }
        }
        Value::Array(items) => items.iter().for_each(|v| stamp_files(v, key)),
        Value::Object(map) => map.values().for_each(|v| stamp_files(v, key)),
        _ => {}
    }
}

/// A workload and the largest peak RSS measured on it, in MiB (0: none yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Measured {
    #[serde(flatten)]
    pub workload: Workload,
    pub mb: u64,
}

impl Measured {
    /// `workload`, not measured yet.
    pub(crate) fn unmeasured(workload: Workload) -> Measured {
        Measured { workload, mb: 0 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    engine: String,
    #[serde(flatten)]
    measured: Measured,
}

#[derive(Default, Serialize, Deserialize)]
struct File {
    /// Most recently used first.
    sizes: Vec<Entry>,
}

/// The remembered sizes, shared by every engine of a host.
pub(crate) struct SizeBook {
    /// `None`: remembered for the life of the host only.
    path: Option<PathBuf>,
    entries: Mutex<Vec<Entry>>,
}

impl SizeBook {
    /// The book kept in `path` (read now, missing or unreadable: empty), or
    /// one kept in memory only.
    pub(crate) fn open(path: Option<PathBuf>) -> SizeBook {
        let entries = path
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| match serde_json::from_slice::<File>(&bytes) {
                Ok(file) => Some(file.sizes),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring the unreadable engine sizes file");
                    None
                }
            })
            .unwrap_or_default();
        SizeBook {
            path,
            entries: Mutex::new(entries),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `engine`'s most recent workload and its size (0: not measured), if
    /// its model files are unchanged since.
    pub(crate) fn last(&self, engine: &str) -> Option<Measured> {
        let entries = self.entries();
        let measured = &entries.iter().find(|e| e.engine == engine)?.measured;
        measured.workload.is_current().then(|| measured.clone())
    }

    /// Makes `workload` `engine`'s most recent one and returns its size
    /// (0: never measured).
    pub(crate) fn switch_to(&self, engine: &str, workload: &Workload) -> u64 {
        self.update(engine, workload, |mb| mb)
    }

    /// Records `mb` as `engine`'s size on `workload`.
    pub(crate) fn record(&self, engine: &str, workload: &Workload, mb: u64) {
        self.update(engine, workload, |_| mb);
    }

    /// Moves `engine`'s entry for `workload` to the front (creating it),
    /// sets its size to `f(size)` and saves the book.
    fn update(&self, engine: &str, workload: &Workload, f: impl FnOnce(u64) -> u64) -> u64 {
        let mut entries = self.entries();
        let old = entries
            .iter()
            .position(|e| e.engine == engine && e.measured.workload.key == workload.key)
            .map(|i| entries.remove(i));
        let mb = f(old.as_ref().map_or(0, |e| e.measured.mb));
        entries.insert(
            0,
            Entry {
                engine: engine.to_owned(),
                measured: Measured {
                    workload: workload.clone(),
                    mb,
                },
            },
        );
        let mut kept = 0;
        entries.retain(|e| {
            kept += usize::from(e.engine == engine);
            e.engine != engine || kept <= KEEP_PER_ENGINE
        });
        self.save(&entries);
        mb
    }

    fn save(&self, entries: &[Entry]) {
        let Some(path) = &self.path else { return };
        let file = File {
            sizes: entries.to_vec(),
        };
        if let Err(e) = write_atomically(path, &file) {
            tracing::warn!(path = %path.display(), error = %e, "cannot save the engine sizes");
        }
    }
}

fn write_atomically(path: &Path, file: &File) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, file)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_survive_a_reopen_per_engine_and_workload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sizes.json");
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, b"weights").unwrap();
        let a = Workload::of(json!({"path": model, "context": 1024}));
        let b = Workload::of(json!({"path": model, "context": 2048}));
        assert_ne!(a.key, b.key, "settings are part of the workload");

        let book = SizeBook::open(Some(path.clone()));
        assert_eq!(book.last("llm"), None);
        assert_eq!(book.switch_to("llm", &a), 0);
        book.record("llm", &a, 315);
        book.record("stt", &Workload::of(Value::Null), 131);
        assert_eq!(book.switch_to("llm", &b), 0);
        assert_eq!(book.switch_to("llm", &a), 315);

        let book = SizeBook::open(Some(path.clone()));
        let measured = |workload: &Workload, mb| {
            Some(Measured {
                workload: workload.clone(),
                mb,
            })
        };
        assert_eq!(book.last("llm"), measured(&a, 315));
        assert_eq!(book.last("stt"), measured(&Workload::of(Value::Null), 131));

        // The same path re-pulled is another workload.
        std::fs::write(&model, b"other weights").unwrap();
        assert_eq!(SizeBook::open(Some(path.clone())).last("llm"), None);
        assert_ne!(Workload::of(a.model.clone()).key, a.key);

        // A corrupt file is ignored, and replaced on the next record.
        std::fs::write(&path, b"{not json").unwrap();
        let book = SizeBook::open(Some(path.clone()));
        assert_eq!(book.last("stt"), None);
        book.record("stt", &Workload::of(Value::Null), 120);
        assert_eq!(SizeBook::open(Some(path)).last("stt").unwrap().mb, 120);
    }

    #[test]
    fn only_the_most_recent_workloads_are_kept() {
        let book = SizeBook::open(None);
        for context in 0..20 {
            book.record("llm", &Workload::of(json!({ "context": context })), 100);
        }
        book.record("stt", &Workload::of(Value::Null), 50);
        let entries = book.entries();
        assert_eq!(entries.iter().filter(|e| e.engine == "llm").count(), 8);
        assert_eq!(entries[1].measured.workload.model, json!({"context": 19}));
        assert_eq!(entries[0].engine, "stt");
    }
}
