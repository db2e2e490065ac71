//! The on-disk model store: one directory per model id holding its files.
//! Owns path layout, status (installed / missing / partial / corrupt) and the
//! atomic install of one file: write to a temp file in the same directory,
//! fsync, check size and sha256, then rename. A failed check leaves nothing.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::ModelsConfig;

use super::error::{FetchError, ModelsError};
use super::manifest::{FileSpec, ModelSpec};
use super::progress::PullProgress;
use super::status::{FileState, FileStatus, ModelStatus};

/// Prefix of in-progress temp files; they never count as installed.
pub const TEMP_PREFIX: &str = ".voxd-tmp-";

/// The model store directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    dir: PathBuf,
}

/// How an installed file was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verified {
    /// Against the size and sha256 pinned in the manifest.
    Pinned,
    /// Against the sha256 the hub publishes for the LFS file.
    HubSha256,
    /// Not verifiable: no pin, and the hub gave no sha256 (small non-LFS file).
    Unverified,
}

/// A file that is now installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledFile {
    /// Install name.
    pub name: String,
    /// Where it lies.
    pub path: PathBuf,
    /// Bytes.
    pub size: u64,
    /// Its sha256.
    pub sha256: String,
    /// How it was checked.
    pub verified: Verified,
}

impl Store {
    /// A store rooted at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// The store `models.dir` names, or `$XDG_DATA_HOME/voxd/models`
    /// (`~/.local/share/voxd/models`) when it is empty.
    pub fn from_config(config: &ModelsConfig) -> Result<Store, ModelsError> {
        if !config.dir.as_os_str().is_empty() {
            return Ok(Store::new(&config.dir));
        }
        xdg_dir("XDG_DATA_HOME", ".local/share")
            .map(|d| Store::new(d.join("voxd").join("models")))
            .ok_or(ModelsError::NoDirectory {
                what: "the model store",
            })
    }

    /// The store's root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of one model.
    pub fn model_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Status from sizes alone (cheap: no hashing).
    pub fn status(&self, spec: &ModelSpec) -> ModelStatus {
        let files = spec
            .files
            .iter()
            .map(|f| self.file_status(spec, f, false))
            .collect();
        ModelStatus::new(spec, self.model_dir(&spec.id), files)
    }

    /// Status with every present file hashed against its pin.
    pub fn verify(&self, spec: &ModelSpec, progress: &mut dyn PullProgress) -> ModelStatus {
        let files = spec
            .files
            .iter()
            .map(|f| {
                progress.start(&format!("{}: verifying {}", spec.id, f.name), f.size);
                let status = self.file_status(spec, f, true);
                progress.finish();
                status
            })
            .collect();
        ModelStatus::new(spec, self.model_dir(&spec.id), files)
    }

    fn file_status(&self, spec: &ModelSpec, file: &FileSpec, hash: bool) -> FileStatus {
        let path = self.model_dir(&spec.id).join(&file.name);
        let size = std::fs::metadata(&path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        let mut state = match (size, file.size) {
            (None, _) => FileState::Missing,
            (Some(have), Some(want)) if have != want => FileState::WrongSize,
            (Some(_), _) => FileState::Present,
        };
        let mut sha256 = None;
        if hash && state == FileState::Present {
            match hash_file(&path) {
                Ok(actual) => {
                    if file.sha256.as_ref().is_some_and(|want| *want != actual) {
                        state = FileState::BadChecksum;
                    }
                    sha256 = Some(actual);
                }
                Err(_) => state = FileState::Unreadable,
            }
        }
        FileStatus {
            name: file.name.clone(),
            state,
            size,
            expected_size: file.size,
            sha256,
            pinned: file.sha256.is_some(),
        }
    }

    /// Whether `file` is installed and, when pinned, has its pinned sha256.
    pub(crate) fn is_file_installed(&self, spec: &ModelSpec, file: &FileSpec) -> bool {
        self.file_status(spec, file, file.sha256.is_some()).state == FileState::Present
    }

    /// Installs one file atomically. `fill` writes its bytes; they are hashed
    /// on the way. The file lands at its final path only if its size and
    /// sha256 match the pin (or `hub_sha256`, for unpinned hub files).
    pub(crate) fn install_file(
        &self,
        spec: &ModelSpec,
        file: &FileSpec,
        hub_sha256: Option<&str>,
        progress: &mut dyn PullProgress,
        fill: impl FnOnce(&mut dyn Write) -> Result<(), FetchError>,
    ) -> Result<InstalledFile, FetchError> {
        let model_dir = self.model_dir(&spec.id);
        let target = model_dir.join(&file.name);
        let parent = target.parent().unwrap_or(&model_dir).to_path_buf();
        let result = self.install_inner(spec, file, hub_sha256, progress, fill, &target, &parent);
        if result.is_err() {
            // Leave no empty directories behind (an empty model dir means nothing installed).
            let mut dir = Some(parent.as_path());
            while let Some(d) = dir.filter(|d| d.starts_with(&model_dir)) {
                if std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn install_inner(
        &self,
        spec: &ModelSpec,
        file: &FileSpec,
        hub_sha256: Option<&str>,
        progress: &mut dyn PullProgress,
        fill: impl FnOnce(&mut dyn Write) -> Result<(), FetchError>,
        target: &Path,
        parent: &Path,
    ) -> Result<InstalledFile, FetchError> {
        let io_err = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| FetchError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(parent).map_err(io_err("cannot create", parent))?;
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(parent)
            .map_err(io_err("cannot create a temp file in", parent))?;
        progress.start(&format!("{}: {}", spec.id, file.name), file.size);
        let mut writer = HashingWriter::new(temp.as_file(), progress);
        let filled = fill(&mut writer);
        let (size, actual) = writer.finish();
        progress.finish();
        filled?;
        temp.as_file()
            .sync_all()
            .map_err(io_err("cannot sync", temp.path()))?;
        if let Some(expected) = file.size {
            if size != expected {
                return Err(FetchError::Size {
                    file: file.name.clone(),
                    expected,
                    actual: size,
                });
            }
        }
        let expected = file.sha256.as_deref().or(hub_sha256);
        if let Some(expected) = expected {
            if expected != actual {
                return Err(FetchError::Checksum {
                    file: file.name.clone(),
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        temp.persist(target).map_err(|e| FetchError::Io {
            action: "cannot move the verified file to",
            path: target.to_path_buf(),
            source: e.error,
        })?;
        // Make the rename itself durable; failure here loses nothing verified.
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
        let verified = match (file.sha256.is_some(), hub_sha256.is_some()) {
            (true, _) => Verified::Pinned,
            (false, true) => Verified::HubSha256,
            (false, false) => Verified::Unverified,
        };
        tracing::info!(model = %spec.id, file = %file.name, size, sha256 = %actual, ?verified, "installed");
        Ok(InstalledFile {
            name: file.name.clone(),
            path: target.to_path_buf(),
            size,
            sha256: actual,
            verified,
        })
    }
}

/// `$<var>`, else `$HOME/<fallback>`.
pub(crate) fn xdg_dir(var: &str, fallback: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(fallback))
        })
}

/// Lower-case hex sha256 of a file.
pub(crate) fn hash_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A writer that hashes, counts and reports what passes through it.
struct HashingWriter<'a, W: Write> {
    inner: W,
    hasher: Sha256,
    written: u64,
    progress: &'a mut dyn PullProgress,
}

impl<'a, W: Write> HashingWriter<'a, W> {
    fn new(inner: W, progress: &'a mut dyn PullProgress) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
            progress,
        }
    }

    fn finish(mut self) -> (u64, String) {
        let _ = self.inner.flush();
        (self.written, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::manifest::{ModelKind, Source};
    use crate::models::progress::NoProgress;
    use crate::models::status::ModelState;

    fn spec(content: &[u8]) -> ModelSpec {
        ModelSpec {
            id: "m".into(),
            kind: ModelKind::Vad,
            format: "onnx".into(),
            description: "test".into(),
            license: None,
            note: None,
            files: vec![FileSpec {
                name: "sub/w.bin".into(),
                size: Some(content.len() as u64),
                sha256: Some(hex::encode(Sha256::digest(content))),
            }],
            sources: Vec::<Source>::new(),
        }
    }

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    }

    #[test]
    fn a_verified_file_is_installed_and_a_bad_one_leaves_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::new(tmp.path());
        let spec = spec(b"weights");
        let file = &spec.files[0];

        let err = store
            .install_file(&spec, file, None, &mut NoProgress, |w| {
                w.write_all(b"weightz").map_err(|e| FetchError::Io {
                    action: "write",
                    path: PathBuf::new(),
                    source: e,
                })
            })
            .expect_err("wrong bytes");
        assert!(matches!(err, FetchError::Checksum { .. }), "{err}");
        assert_eq!(entries(tmp.path()), 0, "nothing left behind");
        assert_eq!(store.status(&spec).state, ModelState::Missing);

        let err = store
            .install_file(&spec, file, None, &mut NoProgress, |w| {
                w.write_all(b"weight").map_err(|e| FetchError::Io {
                    action: "write",
                    path: PathBuf::new(),
                    source: e,
                })
            })
            .expect_err("short");
        assert!(
            matches!(
                err,
                FetchError::Size {
                    expected: 7,
                    actual: 6,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(entries(tmp.path()), 0);

        let done = store
            .install_file(&spec, file, None, &mut NoProgress, |w| {
                w.write_all(b"weights").map_err(|e| FetchError::Io {
                    action: "write",
                    path: PathBuf::new(),
                    source: e,
                })
            })
            .expect("installs");
        assert_eq!(done.verified, Verified::Pinned);
        assert_eq!(store.status(&spec).state, ModelState::Installed);
        assert_eq!(entries(&tmp.path().join("m/sub")), 1, "no temp files");
        assert_eq!(
            store.verify(&spec, &mut NoProgress).state,
            ModelState::Installed
        );

        std::fs::write(&done.path, b"weighty").expect("overwrite");
        assert_eq!(
            store.status(&spec).state,
            ModelState::Installed,
            "same size: cheap status cannot tell"
        );
        assert_eq!(
            store.verify(&spec, &mut NoProgress).state,
            ModelState::Corrupt
        );
        std::fs::write(&done.path, b"w").expect("truncate");
        assert_eq!(store.status(&spec).state, ModelState::Corrupt);
    }

    #[test]
    fn an_unpinned_file_is_checked_against_the_hub_sha256() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::new(tmp.path());
        let mut spec = spec(b"x");
        spec.files[0].size = None;
        spec.files[0].sha256 = None;
        let file = spec.files[0].clone();
        let good = hex::encode(Sha256::digest(b"x"));
        let bad = "0".repeat(64);
        let write_x = |w: &mut dyn Write| {
            w.write_all(b"x").map_err(|e| FetchError::Io {
                action: "write",
                path: PathBuf::new(),
                source: e,
            })
        };
        let err = store
            .install_file(&spec, &file, Some(&bad), &mut NoProgress, write_x)
            .expect_err("mismatch");
        assert!(
            err.to_string().contains(&bad) && err.to_string().contains(&good),
            "{err}"
        );
        let done = store
            .install_file(&spec, &file, Some(&good), &mut NoProgress, write_x)
            .expect("ok");
        assert_eq!(done.verified, Verified::HubSha256);
    }
}
