//! The PyPI source: wheels fetched with `python3 -m pip download --no-deps`
//! into a cache (`$XDG_CACHE_HOME/voxd/pypi/<name>-<version>/`), checked
//! against their pinned sha256, and read with the `zip` crate. A cached wheel
//! that fails its check is discarded and fetched again; a cached wheel that
//! passes is used without touching the network.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use zip::ZipArchive;

use super::error::FetchError;
use super::manifest::{PypiPackage, PypiSource};
use super::progress::PullProgress;
use super::store::hash_file;

/// The interpreter pip runs under.
const PYTHON: &str = "python3";

/// Fetches and opens pinned wheels.
pub(crate) struct Pypi {
    cache: PathBuf,
}

/// The opened wheels of one source.
pub(crate) struct Wheels {
    archives: Vec<(PathBuf, ZipArchive<File>)>,
    packages: String,
}

impl Pypi {
    /// Wheels are cached under `cache`.
    pub fn new(cache: PathBuf) -> Pypi {
        Pypi { cache }
    }

    /// Every wheel of `source`, verified, from the cache or downloaded.
    pub fn wheels(
        &self,
        source: &PypiSource,
        progress: &mut dyn PullProgress,
    ) -> Result<Wheels, FetchError> {
        let mut archives = Vec::new();
        for package in &source.packages {
            let path = self.wheel(package, progress)?;
            let file = File::open(&path).map_err(|e| FetchError::Io {
                action: "cannot open",
                path: path.clone(),
                source: e,
            })?;
            let archive = ZipArchive::new(file).map_err(|e| {
                discard(&path);
                FetchError::Wheel {
                    path: path.clone(),
                    message: format!("not a valid zip ({e}); discarded"),
                }
            })?;
            archives.push((path, archive));
        }
        let packages = source
            .packages
            .iter()
            .map(PypiPackage::requirement)
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Wheels { archives, packages })
    }

    fn wheel(
        &self,
        package: &PypiPackage,
        progress: &mut dyn PullProgress,
    ) -> Result<PathBuf, FetchError> {
        let dir = self
            .cache
            .join(format!("{}-{}", package.name, package.version));
        if let Some(path) = find_wheel(&dir) {
            match check_wheel(&path, package) {
                Ok(()) => {
                    tracing::debug!(wheel = %path.display(), "using cached wheel");
                    return Ok(path);
                }
                Err(e) => {
                    progress.note(&format!("cached {e}; discarded, fetching it again"));
                    discard(&path);
                }
            }
        }
        std::fs::create_dir_all(&dir).map_err(|e| FetchError::Io {
            action: "cannot create",
            path: dir.clone(),
            source: e,
        })?;
        let requirement = package.requirement();
        let args = [
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "--retries",
            "1",
            "--timeout",
            "30",
            "-d",
        ];
        let command = format!(
            "{PYTHON} {} {} {requirement}",
            args.join(" "),
            dir.display()
        );
        progress.start(&format!("pip download {requirement}"), None);
        tracing::info!(%command, "fetching wheel");
        let output = Command::new(PYTHON)
            .args(args)
            .arg(&dir)
            .arg(&requirement)
            .output();
        progress.finish();
        let output = output.map_err(|e| FetchError::PipUnavailable {
            python: PYTHON.to_string(),
            message: e.to_string(),
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("No module named pip") {
                return Err(FetchError::PipUnavailable {
                    python: PYTHON.to_string(),
                    message: "No module named pip".to_string(),
                });
            }
            let offline = connection_failure(&stderr);
            return Err(FetchError::PipFailed {
                command,
                status: output.status.to_string(),
                stderr: match &offline {
                    Some(reason) => format!("cannot reach the package index: {reason} (offline?)"),
                    None => tail(&stderr, 3),
                },
                offline: offline.is_some(),
            });
        }
        let path = find_wheel(&dir).ok_or_else(|| FetchError::NoWheel {
            requirement: requirement.clone(),
            dir: dir.clone(),
        })?;
        if let Err(e) = check_wheel(&path, package) {
            discard(&path);
            return Err(e);
        }
        Ok(path)
    }
}

impl Wheels {
    /// Writes the concatenation of `members` (each found in whichever wheel
    /// holds it) to `out`. The zip reader checks each member's CRC-32.
    pub fn copy_members(
        &mut self,
        members: &[String],
        out: &mut dyn Write,
    ) -> Result<(), FetchError> {
        for member in members {
            let (path, archive) = self
                .archives
                .iter_mut()
                .find(|(_, a)| a.index_for_name(member).is_some())
                .ok_or_else(|| FetchError::MissingMember {
                    member: member.clone(),
                    packages: self.packages.clone(),
                })?;
            let wheel_err = |message: String| FetchError::Wheel {
                path: path.clone(),
                message,
            };
            let mut entry = archive
                .by_name(member)
                .map_err(|e| wheel_err(format!("cannot read {member}: {e}")))?;
            io::copy(&mut entry, out)
                .map_err(|e| wheel_err(format!("cannot extract {member}: {e}")))?;
        }
        Ok(())
    }
}

/// The one `.whl` in `dir`, if any.
fn find_wheel(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl") && p.is_file())
}

fn check_wheel(path: &Path, package: &PypiPackage) -> Result<(), FetchError> {
    let actual = hash_file(path).map_err(|e| FetchError::Wheel {
        path: path.to_path_buf(),
        message: format!("cannot read: {e}"),
    })?;
    if actual == package.sha256 {
        Ok(())
    } else {
        Err(FetchError::Wheel {
            path: path.to_path_buf(),
            message: format!(
                "sha256 is {actual}, expected {} for {}",
                package.sha256,
                package.requirement()
            ),
        })
    }
}

fn discard(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(wheel = %path.display(), error = %e, "cannot remove a bad wheel");
    }
}

/// The reason pip gives when it cannot connect at all (DNS or refused), if so.
fn connection_failure(stderr: &str) -> Option<String> {
    const MARK: &str = "Failed to establish a new connection: ";
    let start = stderr.rfind(MARK)? + MARK.len();
    let reason = stderr[start..]
        .split(['\'', '\n'])
        .next()
        .unwrap_or_default();
    Some(reason.trim().to_string())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}
