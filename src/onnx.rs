//! ONNX Runtime for every ONNX model voxd runs (Piper voices now; VAD and
//! wake word share it): finds the `libonnxruntime.so` to load, loads it
//! once per process, and builds sessions. The only module that calls
//! `ort::init*`; everything else asks [`session`] for a model.
//!
//! # How voxd gets ONNX Runtime without a build-time download
//! `ort` is built with its `load-dynamic` feature, so nothing is downloaded
//! or linked at build time and `cargo build` works on any machine. At run
//! time voxd loads the library that the PyPI `onnxruntime` wheel ships
//! (Debian packages none), which `scripts/bootstrap.sh` unpacks into
//! `~/.cache/voxd/onnxruntime/<ORT_VERSION>/`. [`library_path`] lists where
//! voxd looks; a library that is missing or too old is a clear error
//! naming every place tried — never `ort`'s own fallback, which hangs when
//! no library is found.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{RunOptions, Session};

use crate::config::OnnxConfig;

/// The ONNX Runtime release voxd is built and tested against; the
/// bootstrap installs this one (`ORT_VERSION` in `scripts/bootstrap.sh`).
pub const ORT_VERSION: &str = "1.32.0";

/// The library's file name on this platform.
const LIB_NAME: &str = "libonnxruntime.so";

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error(
        "ONNX Runtime ({LIB_NAME}) not found; looked in: {tried}. Run `bash scripts/bootstrap.sh run` \
         (it installs ONNX Runtime {ORT_VERSION} from PyPI) or set onnx.library"
    )]
    NotFound { tried: String },
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("ONNX Runtime was already loaded from {loaded}; cannot switch to {wanted} in a running process")]
    Conflict { loaded: PathBuf, wanted: PathBuf },
    #[error("cannot load the ONNX model {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("cannot set ONNX Runtime run options: {0}")]
    RunOptions(String),
}

/// The library loaded into this process, once loaded.
static LOADED: OnceLock<PathBuf> = OnceLock::new();
/// Serialises the first load.
static LOADING: Mutex<()> = Mutex::new(());

/// Where voxd looks for ONNX Runtime, in order: `onnx.library`,
/// `$ORT_DYLIB_PATH`, beside the voxd executable, `$XDG_CACHE_HOME` or
/// `~/.cache` `/voxd/onnxruntime/<version>/`, and the same cache of the user
/// who built voxd (so tests with a private `$HOME` find it).
pub fn candidates(config: &OnnxConfig) -> Vec<PathBuf> {
    if !config.library.as_os_str().is_empty() {
        return vec![config.library.clone()];
    }
    let mut paths = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        paths.push(PathBuf::from(p));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        paths.push(dir.join(LIB_NAME));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")));
    if let Some(cache) = cache {
        paths.push(
            cache
                .join("voxd/onnxruntime")
                .join(ORT_VERSION)
                .join(LIB_NAME),
        );
    }
    let built = env!("ORT_BUILD_CACHE_DIR");
    if !built.is_empty() {
        paths.push(Path::new(built).join(ORT_VERSION).join(LIB_NAME));
    }
    paths.dedup();
    paths
}

/// The first existing candidate.
pub fn library_path(config: &OnnxConfig) -> Result<PathBuf, OnnxError> {
    let candidates = candidates(config);
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| OnnxError::NotFound {
            tried: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The PyPI build of ONNX Runtime carries Microsoft's 1DS telemetry: some
/// seconds after a session is created it looks up
/// mobile.events.data.microsoft.com and uploads usage data. Its one full
/// opt-out is `ORT_DISABLE_TELEMETRY`, read once when the library starts
/// (`DisableTelemetryEvents`, which ort calls too, leaves the uploader
/// running). The `voxd` binary calls this first thing, before any thread
/// exists; [`init`] calls it again for library users. Nothing leaves the
/// machine (tests/offline.rs).
pub fn opt_out_of_telemetry() {
    const OPT_OUT: &str = "ORT_DISABLE_TELEMETRY";
    if std::env::var_os(OPT_OUT).is_none() {
        std::env::set_var(OPT_OUT, "1");
    }
}

/// Loads ONNX Runtime into this process (once; later calls return the
/// path loaded first).
pub fn init(config: &OnnxConfig) -> Result<&'static Path, OnnxError> {
    let _guard = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    let wanted = library_path(config)?;
    if let Some(loaded) = LOADED.get() {
        if !config.library.as_os_str().is_empty() && loaded != &wanted {
            return Err(OnnxError::Conflict {
                loaded: loaded.clone(),
                wanted,
            });
        }
        return Ok(loaded);
    }
    let load_err = |e: ort::Error| OnnxError::Load {
        path: wanted.clone(),
        message: e.to_string(),
    };
    opt_out_of_telemetry();
    let builder = ort::init_from(&wanted).map_err(load_err)?;
    builder.with_name("voxd").with_telemetry(false).commit();
    tracing::info!(library = %wanted.display(), "ONNX Runtime loaded");
    Ok(LOADED.get_or_init(|| wanted))
}

/// How a model's input shapes vary between runs, which decides how ONNX
/// Runtime should allocate for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shapes {
    /// The same shapes every run (VAD and wake-word frames): ONNX Runtime's
    /// CPU arena and memory patterns reuse one plan, the fastest choice.
    Fixed,
    /// Shapes that differ every run (a Piper sentence's phonemes): no
    /// memory pattern (it is planned for one shape); end each batch of runs
    /// with [`shrink_after_run`], or the arena grows to the longest input
    /// ever seen and keeps it for the life of the process.
    Varying,
}

/// Opens an ONNX model with `threads` intra-op threads (0: ONNX Runtime's
/// choice), loading ONNX Runtime first if needed.
pub fn session(
    config: &OnnxConfig,
    model: &Path,
    threads: u32,
    shapes: Shapes,
) -> Result<Session, OnnxError> {
    init(config)?;
    let model_err = |e: ort::Error| OnnxError::Model {
        path: model.to_path_buf(),
        message: e.to_string(),
    };
    let mut builder = Session::builder()
        .map_err(model_err)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| model_err(e.into()))?;
    if threads > 0 {
        builder = builder
            .with_intra_threads(threads as usize)
            .map_err(|e| model_err(e.into()))?;
    }
    if shapes == Shapes::Varying {
        builder = builder
            .with_memory_pattern(false)
            .map_err(|e| model_err(e.into()))?;
    }
    builder.commit_from_file(model).map_err(model_err)
}

/// Run options that give the CPU arena's unused memory back at the end of
/// the run, for [`Shapes::Varying`] sessions: the arena serves the run's
/// buffers (a lower peak than the heap's), and what it grew by is freed
/// when the run ends. Runs straight after each other (a backlog of
/// sentences) are faster without it: each would map its buffers afresh.
pub fn shrink_after_run() -> Result<RunOptions, OnnxError> {
    let fail = |e: ort::Error| OnnxError::RunOptions(e.to_string());
    let mut options = RunOptions::new().map_err(fail)?;
    options
        .add_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        .map_err(fail)?;
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_installs_the_version_voxd_expects() {
        let script = include_str!("../scripts/bootstrap.sh");
        assert!(
            script.contains(&format!("ORT_VERSION={ORT_VERSION}\n")),
            "scripts/bootstrap.sh must install ONNX Runtime {ORT_VERSION}"
        );
    }

    #[test]
    fn a_configured_library_is_the_only_candidate_and_missing_is_a_clear_error() {
        let config = OnnxConfig {
            library: PathBuf::from("/nonexistent/libonnxruntime.so"),
        };
        assert_eq!(candidates(&config), vec![config.library.clone()]);
        let err = library_path(&config).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/libonnxruntime.so"), "{err}");
        assert!(err.contains("bootstrap"), "{err}");
    }
}
