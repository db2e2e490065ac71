//! What `voxd models list` and the daemon's `models` command report: per
//! model, whether it is installed, its size and path, and who uses it.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::{ModelsConfig, Profile};

use super::error::ModelsError;
use super::manifest::{Manifest, ModelKind, ModelSpec};
use super::roles::{profile_models, Role};
use super::store::Store;

/// Whether a model can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelState {
    /// Every file is present (with its pinned size).
    Installed,
    /// No file is present.
    Missing,
    /// Some files are present, some missing.
    Partial,
    /// A file has the wrong size or sha256, or cannot be read.
    Corrupt,
}

impl ModelState {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            ModelState::Installed => "installed",
            ModelState::Missing => "missing",
            ModelState::Partial => "partial",
            ModelState::Corrupt => "corrupt",
        }
    }
}

/// The state of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileState {
    /// Present (size matches the pin; sha256 too when hashed).
    Present,
    /// Not there.
    Missing,
    /// Size differs from the pin.
    WrongSize,
    /// sha256 differs from the pin.
    BadChecksum,
    /// Present but could not be read.
    Unreadable,
}

/// One file of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileStatus {
    /// Install name.
    pub name: String,
    /// Its state.
    pub state: FileState,
    /// Size on disk.
    pub size: Option<u64>,
    /// Pinned size.
    pub expected_size: Option<u64>,
    /// sha256 on disk, when hashed (`verify`).
    pub sha256: Option<String>,
    /// Whether the manifest pins its sha256.
    pub pinned: bool,
}

/// A profile (or the effective configuration) that uses a model for a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// The profile, or `None` for the effective configuration.
    pub profile: Option<String>,
    /// The role.
    pub role: Role,
    /// Position in the role's preference list (0 = first choice).
    pub rank: usize,
}

/// One model's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelStatus {
    /// Model id.
    pub id: String,
    /// What it is for.
    pub kind: ModelKind,
    /// File layout.
    pub format: String,
    /// One line.
    pub description: String,
    /// License, if known.
    pub license: Option<String>,
    /// Caveat, if any.
    pub note: Option<String>,
    /// Overall state.
    pub state: ModelState,
    /// Whether every file's sha256 is pinned (else: checked against the hub's LFS sha256).
    pub pinned: bool,
    /// Total pinned size, when every size is pinned.
    pub size: Option<u64>,
    /// Bytes present on disk.
    pub installed_bytes: u64,
    /// The model's directory.
    pub path: PathBuf,
    /// Per file.
    pub files: Vec<FileStatus>,
    /// Who uses it.
    pub used_by: Vec<Usage>,
}

impl ModelStatus {
    pub(crate) fn new(spec: &ModelSpec, path: PathBuf, files: Vec<FileStatus>) -> ModelStatus {
        let bad = files.iter().any(|f| {
            matches!(
                f.state,
                FileState::WrongSize | FileState::BadChecksum | FileState::Unreadable
            )
        });
        let present = files
            .iter()
            .filter(|f| f.state == FileState::Present)
            .count();
        let state = if bad {
            ModelState::Corrupt
        } else if present == files.len() {
            ModelState::Installed
        } else if present == 0 {
            ModelState::Missing
        } else {
            ModelState::Partial
        };
        ModelStatus {
            id: spec.id.clone(),
            kind: spec.kind,
            format: spec.format.clone(),
            description: spec.description.clone(),
            license: spec.license.clone(),
            note: spec.note.clone(),
            state,
            pinned: spec.is_pinned(),
            size: spec.total_size(),
            installed_bytes: files.iter().filter_map(|f| f.size).sum(),
            path,
            files,
            used_by: Vec::new(),
        }
    }
}

/// Every model in the manifest with its state and who uses it: the effective
/// configuration `config` and each built-in profile.
pub fn list(
    manifest: &Manifest,
    store: &Store,
    config: &ModelsConfig,
) -> Result<Vec<ModelStatus>, ModelsError> {
    let mut lists = vec![(None, config.clone())];
    for p in Profile::ALL {
        lists.push((Some(p.name().to_string()), profile_models(p, config)?));
    }
    Ok(manifest
        .models
        .iter()
        .map(|spec| {
            let mut status = store.status(spec);
            for (profile, models) in &lists {
                for role in Role::ALL {
                    if let Some(rank) = role.candidates(models).iter().position(|id| *id == spec.id)
                    {
                        status.used_by.push(Usage {
                            profile: profile.clone(),
                            role,
                            rank,
                        });
                    }
                }
            }
            status
        })
        .collect())
}
