//! A note as a reader sees it (the web page's viewer of cited lines): the
//! whole text of a note file, served only from inside the notes folders
//! ([`crate::folders::serve`]: no `..`, no link out of them), and only
//! files the index would read (note extensions, not hidden or an editor's
//! temp file, within `rag.max_file_kb`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::chunk::Format;
use super::{is_temp, Rag};
use crate::folders::{serve, Unserved};

/// A note file's text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// The note's real path.
    pub path: PathBuf,
    /// Its path relative to its notes folder.
    pub name: String,
    pub text: String,
}

impl Rag {
    /// The note at `path`, if it lies inside a notes folder.
    pub async fn note(&self, path: PathBuf) -> Result<Note, Unserved> {
        let roots = self.roots.clone();
        let max = self.config.max_file_kb * 1024;
        tokio::task::spawn_blocking(move || read(&roots, &path, max))
            .await
            .map_err(|e| Unserved::Internal(e.to_string()))?
    }
}

/// Whether `relative` (to its notes folder) names a note the index reads.
fn is_note(relative: &Path) -> bool {
    Format::of(relative).is_some() && !relative.components().any(|c| is_temp(Path::new(&c)))
}

fn read(roots: &[PathBuf], path: &Path, max: u64) -> Result<Note, Unserved> {
    let served = serve(
        roots,
        path,
        max,
        "a note (a .md or .txt file that is not hidden)",
        is_note,
    )?;
    Ok(Note {
        name: served.relative.display().to_string(),
        path: served.path,
        text: String::from_utf8_lossy(&served.bytes).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, Kind};

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
