//! `voxd models pull` against the real PyPI: silero-vad (an 11 MB wheel) is
//! the only package fetched. The hub is pointed at a closed local port so the
//! tests behave the same online and offline.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use voxd::config::{Config, SourceKind};
use voxd::models::{self, Manifest, ModelState, ModelsError, PullOptions, PullProgress, Store};

const SILERO_SHA256: &str = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3";
const SILERO_SIZE: u64 = 2_327_524;
const CLOSED_PORT: &str = "http://127.0.0.1:9";

struct Env {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    cache: PathBuf,
    hf: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (data, cache, hf) = (
            tmp.path().join("data"),
            tmp.path().join("cache"),
            tmp.path().join("hf"),
        );
        Env {
            _tmp: tmp,
            data,
            cache,
            hf,
        }
    }

    fn store_dir(&self) -> PathBuf {
        self.data.join("voxd/models")
    }

    fn voxd(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_voxd"))
            .args(args)
            .env("XDG_DATA_HOME", &self.data)
            .env("XDG_CACHE_HOME", &self.cache)
            .env("HF_HOME", &self.hf)
            .env("HF_ENDPOINT", CLOSED_PORT)
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("voxd runs")
    }

    /// Library-level options: PyPI only, wheels in this test's cache, one try.
    fn options(&self) -> PullOptions {
        PullOptions {
            sources: vec![SourceKind::Pypi],
            pypi_cache: self.cache.join("voxd/pypi"),
            attempts: 1,
            retry_delay: std::time::Duration::ZERO,
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("readable")))
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Records notes and the labels of the steps started.
#[derive(Default)]
struct Notes(Vec<String>, Vec<String>);

impl PullProgress for Notes {
    fn start(&mut self, label: &str, _: Option<u64>) {
        self.1.push(label.to_string());
    }
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
    fn note(&mut self, line: &str) {
        self.0.push(line.to_string());
    }
}

#[test]
fn pull_silero_vad_from_pypi_when_the_hub_is_unreachable() {
    let env = Env::new();
    let out = env.voxd(&["models", "pull", "silero-vad"]);
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("cannot connect to 127.0.0.1:9 (offline?); trying the next source"),
        "{all}"
    );
    assert!(all.contains("from pypi silero-vad==6.2.3"), "{all}");

    let installed = env.store_dir().join("silero-vad/silero_vad.onnx");
    assert_eq!(sha256(&installed), SILERO_SHA256);
    assert_eq!(
        std::fs::metadata(&installed).expect("exists").len(),
        SILERO_SIZE
    );
    assert_eq!(
        files_under(&env.store_dir()),
        vec![installed.clone()],
        "no temp files"
    );

    let out = env.voxd(&["models", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let silero = list
        .as_array()
        .and_then(|l| l.iter().find(|m| m["id"] == "silero-vad"))
        .expect("listed");
    assert_eq!(silero["state"], "installed");
    assert_eq!(silero["size"], SILERO_SIZE);
    assert_eq!(
        silero["path"],
        env.store_dir().join("silero-vad").display().to_string()
    );
    assert!(silero["used_by"].as_array().is_some_and(|u| u
        .iter()
        .any(|u| u["profile"] == "tiny" && u["role"] == "vad")));
    let whisper = list
        .as_array()
        .and_then(|l| l.iter().find(|m| m["id"] == "whisper-tiny.en"))
        .expect("listed");
    assert_eq!(whisper["state"], "missing");

    // Pulling again is a no-op that needs no network.
    let out = env.voxd(&["models", "pull", "silero-vad"]);
    assert!(text(&out).contains("already installed"), "{}", text(&out));

    let out = env.voxd(&["models", "list"]);
    let table = text(&out);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("silero-vad") && l.contains("installed")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("qwen2.5-0.5b-instruct-q4km") && l.contains("hub-only")),
        "{table}"
    );

    let out = env.voxd(&["models", "verify", "silero-vad"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_wrong_checksum_is_rejected_and_leaves_nothing_installed() {
    let env = Env::new();
    let mut text_manifest = models::BUILTIN_MANIFEST.to_string();
    let wrong = "0".repeat(64);
    assert!(text_manifest.contains(SILERO_SHA256));
    text_manifest = text_manifest.replace(SILERO_SHA256, &wrong);
    let path = env.data.with_file_name("manifest.toml");
    std::fs::write(&path, text_manifest).expect("write manifest");

    let mut config = Config::builtin().models;
    config.manifest = path;
    config.dir = env.store_dir();
    let manifest = Manifest::load(&config).expect("valid manifest");
    let store = Store::from_config(&config).expect("store");

    let err = models::pull(
        &manifest,
        &store,
        "silero-vad",
        &env.options(),
        &mut Notes::default(),
    )
    .expect_err("checksum mismatch");
    let msg = err.to_string();
    assert!(matches!(err, ModelsError::Unreachable { .. }), "{msg}");
    assert!(
        msg.contains("checksum mismatch for silero_vad.onnx"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("expected sha256 {wrong}, got {SILERO_SHA256}")),
        "{msg}"
    );
    assert_eq!(
        files_under(store.dir()),
        Vec::<PathBuf>::new(),
        "nothing in the store: {msg}"
    );
    assert_eq!(
        store
            .status(manifest.get("silero-vad").expect("known"))
            .state,
        ModelState::Missing
    );
}

#[test]
fn a_corrupt_cached_wheel_is_discarded_and_fetched_again() {
    let env = Env::new();
    let options = env.options();
    let wheel_dir = options.pypi_cache.join("silero-vad-6.2.3");
    std::fs::create_dir_all(&wheel_dir).expect("mkdir");
    let wheel = wheel_dir.join("silero_vad-6.2.3-py3-none-any.whl");
    std::fs::write(&wheel, b"PK\x03\x04 not really a wheel").expect("write");

    let manifest = Manifest::builtin().expect("valid");
    let store = Store::new(env.store_dir());
    let mut notes = Notes::default();
    let report =
        models::pull(&manifest, &store, "silero-vad", &options, &mut notes).expect("pulls");
    assert!(
        notes
            .0
            .iter()
            .any(|n| n.contains("discarded, fetching it again")),
        "{:?}",
        notes.0
    );
    assert_eq!(report.installed.len(), 1);
    assert_eq!(report.installed[0].sha256, SILERO_SHA256);
    assert_eq!(
        std::fs::metadata(&wheel).expect("re-fetched").len(),
        11_317_527
    );

    assert!(
        notes.1.iter().any(|l| l.starts_with("pip download")),
        "{:?}",
        notes.1
    );

    // The verified wheel is now used from the cache without running pip.
    let other = Store::new(env.data.join("other"));
    let mut notes = Notes::default();
    let report =
        models::pull(&manifest, &other, "silero-vad", &options, &mut notes).expect("from cache");
    assert_eq!(report.installed[0].sha256, SILERO_SHA256);
    assert!(
        !notes.1.iter().any(|l| l.starts_with("pip download")),
        "{:?}",
        notes.1
    );
}

#[test]
fn no_reachable_source_is_one_clear_error() {
    let env = Env::new();
    // Hub-only model, hub unreachable.
    let out = env.voxd(&["models", "pull", "whisper-small.en"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot install `whisper-small.en`: no source could provide it"),
        "{err}"
    );
    assert!(
        err.contains(
            "hf Systran/faster-whisper-small.en@main: cannot connect to 127.0.0.1:9 (offline?)"
        ),
        "{err}"
    );
    assert!(
        err.contains("check your network, or copy the files into"),
        "{err}"
    );
    assert!(!err.contains("backtrace"), "{err}");

    // Both sources down: PyPI pointed at the same closed port.
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["models", "pull", "silero-vad"])
        .env("XDG_DATA_HOME", &env.data)
        .env("XDG_CACHE_HOME", &env.cache)
        .env("HF_HOME", &env.hf)
        .env("HF_ENDPOINT", CLOSED_PORT)
        .env("PIP_INDEX_URL", format!("{CLOSED_PORT}/simple"))
        .env("PIP_FIND_LINKS", "")
        .env("PIP_RETRIES", "0")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hf onnx-community/silero-vad@main: cannot connect to 127.0.0.1:9 (offline?) · pypi silero-vad==6.2.3: `python3 -m pip download"), "{err}");
    assert!(err.contains("exited with"), "{err}");
    assert!(files_under(&env.store_dir()).is_empty());
}
