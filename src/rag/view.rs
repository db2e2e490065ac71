//! A note as a reader sees it (the web page's viewer of cited lines): the
//! whole text of a note file, served only from inside the notes folders
//! ([`crate::folders::inside`]: no `..`, no link out of them), and only
//! files the index would read (note extensions, not hidden or an editor's
//! temp file, within `rag.max_file_kb`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::chunk::Format;
use super::{is_temp, Rag};
use crate::error::{ErrorKind, Kind};
use crate::folders::{inside, read_regular, ReadError, Refused};

/// A note file's text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// The note's real path.
    pub path: PathBuf,
    /// Its path relative to its notes folder.
    pub name: String,
    pub text: String,
}

/// Why a note is not shown.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("{0} is not a note (voxd shows .md and .txt files that are not hidden)")]
    NotANote(PathBuf),
    #[error("cannot read the note {path}: {source}")]
    Read { path: PathBuf, source: ReadError },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Kind for NoteError {
    fn kind(&self) -> ErrorKind {
        match self {
            NoteError::Refused(Refused::Missing(_)) => ErrorKind::NotFound,
            NoteError::Refused(_) | NoteError::NotANote(_) => ErrorKind::Forbidden,
            NoteError::Read {
                source: ReadError::NotRegular,
                ..
            } => ErrorKind::NotFound,
            NoteError::Read {
                source: ReadError::TooLarge { .. },
                ..
            } => ErrorKind::Forbidden,
            NoteError::Read { .. } | NoteError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl Rag {
    /// The note at `path`, if it lies inside a notes folder.
    pub async fn note(&self, path: PathBuf) -> Result<Note, NoteError> {
        let roots = self.roots.clone();
        let max = self.config.max_file_kb * 1024;
        tokio::task::spawn_blocking(move || read(&roots, &path, max))
            .await
            .map_err(|e| NoteError::Internal(e.to_string()))?
    }
}

fn read(roots: &[PathBuf], path: &Path, max: u64) -> Result<Note, NoteError> {
    let real = inside(roots, path)?;
    let root = roots
        .iter()
        .find(|root| real.starts_with(root))
        .ok_or_else(|| NoteError::NotANote(path.to_path_buf()))?;
    let relative = real.strip_prefix(root).unwrap_or(&real);
    let hidden = relative.components().any(|c| is_temp(Path::new(&c)));
    if hidden || Format::of(&real).is_none() {
        return Err(NoteError::NotANote(path.to_path_buf()));
    }
    let (bytes, _) = read_regular(&real, max).map_err(|source| NoteError::Read {
        path: real.clone(),
        source,
    })?;
    Ok(Note {
        name: relative.display().to_string(),
        path: real,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_only_not_hidden_files_or_other_kinds() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("home.md"), "line one\nline two\n").unwrap();
        std::fs::write(root.join(".git/config.md"), "x").unwrap();
        std::fs::write(root.join("photo.png"), "x").unwrap();
        std::fs::write(root.join("big.md"), "x".repeat(2048)).unwrap();
        let roots = [root.clone()];
        let note = read(&roots, &root.join("home.md"), 1024).unwrap();
        assert_eq!(
            (note.name.as_str(), note.text.as_str()),
            ("home.md", "line one\nline two\n")
        );
        for (name, kind) in [
            (".git/config.md", ErrorKind::Forbidden),
            ("photo.png", ErrorKind::Forbidden),
            ("big.md", ErrorKind::Forbidden),
            ("gone.md", ErrorKind::NotFound),
        ] {
            let e = read(&roots, &root.join(name), 1024).unwrap_err();
            assert_eq!(e.kind(), kind, "{name}: {e}");
        }
    }
}
