//! The notes folders on disk: walking them for note files (hidden entries
//! and editors' temp files skipped) with their modification times, the
//! most recently changed note, and reading one note for the indexer unless
//! it is unchanged, too large or binary.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use super::chunk::Format;
use super::index::{self, Index};
use super::{is_temp, Rag};
use crate::folders::{read_regular, ReadError};

impl Rag {
    /// The most recently changed note in the notes folders ("read my last
    /// note"), from the files themselves, not the index.
    pub async fn latest_note(&self) -> Option<PathBuf> {
        let roots = self.roots.clone();
        tokio::task::spawn_blocking(move || {
            let mut files = Vec::new();
            for root in &roots {
                walk(root, &mut files);
            }
            files
                .into_iter()
                .max_by_key(|(path, mtime)| (*mtime, path.clone()))
        })
        .await
        .ok()
        .flatten()
        .map(|(path, _)| path)
    }
}

/// What `read_note` found.
pub(super) enum Read {
    Unchanged,
    Deferred,
    Skip(String),
    Text {
        text: String,
        hash: String,
        size: u64,
        mtime_ns: i64,
    },
}

pub(super) fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Reads a note unless it is unchanged (same size and mtime, or same
/// content hash, embedded by the same model), too large, or binary.
pub(super) fn read_note(
    index: &Index,
    path: &Path,
    max_bytes: u64,
    model: Option<&str>,
) -> Result<Read, index::IndexError> {
    let Ok(before) = std::fs::metadata(path) else {
        return Ok(Read::Deferred);
    };
    let size = before.len();
    if size > max_bytes {
        return Ok(Read::Skip(format!(
            "{} KiB is larger than rag.max_file_kb ({} KiB)",
            size / 1024,
            max_bytes / 1024
        )));
    }
    let key = path.display().to_string();
    let known = index.file_state(&key)?;
    let same_model = |k: &index::FileState| k.embed_model.as_deref() == model;
    if let Some(k) = &known {
        if k.size == size && k.mtime_ns == mtime_ns(&before) && same_model(k) {
            return Ok(Read::Unchanged);
        }
    }
    // A regular file, checked on the handle (a FIFO or a link to a device
    // named like a note is skipped, never read), and never read past the
    // limit even if it grew since.
    let bytes = match read_regular(path, max_bytes) {
        Ok((bytes, _)) => bytes,
        Err(ReadError::NotRegular) => return Ok(Read::Skip("not a regular file".into())),
        Err(ReadError::TooLarge { .. }) | Err(ReadError::Io(_)) => return Ok(Read::Deferred),
    };
    match std::fs::metadata(path) {
        Ok(after) if after.len() == bytes.len() as u64 && mtime_ns(&after) == mtime_ns(&before) => {
        }
        _ => return Ok(Read::Deferred),
    }
    let hash = hex::encode(Sha256::digest(&bytes));
    if let Some(k) = &known {
        if k.hash == hash && same_model(k) {
            return Ok(Read::Unchanged);
        }
    }
    if bytes.contains(&0) {
        return Ok(Read::Skip("binary file (contains NUL bytes)".into()));
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok(Read::Skip("binary file (not UTF-8 text)".into()));
    };
    Ok(Read::Text {
        text,
        hash,
        size,
        mtime_ns: mtime_ns(&before),
    })
}

/// Note files under `dir` (hidden entries and editor temp files skipped),
/// with their modification time ([`crate::folders::walk`]: link loops end).
pub(super) fn walk(dir: &Path, out: &mut Vec<(PathBuf, i64)>) {
    crate::folders::walk(dir, &is_temp, &mut |path, meta| {
        if Format::of(path).is_some() {
            out.push((path.to_path_buf(), mtime_ns(meta)));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rag::chunk::chunk;
    use crate::rag::index::FileUpdate;

    #[test]
    fn walk_finds_note_files_and_skips_hidden_temp_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        for file in [
            "home.md",
            "todo.txt",
            "sub/work.markdown",
            "sub/deeper/ideas.org",
            ".hidden.md",
            ".home.md.swp",
            "home.md~",
            "sub/draft.md.tmp",
            "photo.png",
            ".git/notes.md",
        ] {
            std::fs::write(root.join(file), "text").unwrap();
        }
        let mut files = Vec::new();
        walk(root, &mut files);
        let mut found: Vec<String> = files
            .iter()
            .map(|(p, _)| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                "home.md",
                "sub/deeper/ideas.org",
                "sub/work.markdown",
                "todo.txt"
            ]
        );
        assert!(files.iter().all(|(_, mtime)| *mtime > 0), "{files:?}");
    }

    #[test]
    fn walk_of_a_missing_folder_finds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        walk(&dir.path().join("gone"), &mut files);
        assert!(files.is_empty());
    }

    #[test]
    fn read_note_reads_text_and_skips_large_binary_missing_and_unchanged_files() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("i.sqlite")).unwrap();
        let note = dir.path().join("home.md");
        std::fs::write(&note, "The door code is 4417.\n").unwrap();
        let Read::Text {
            text,
            hash,
            size,
            mtime_ns,
        } = read_note(&index, &note, 1024, None).unwrap()
        else {
            panic!("a note is read");
        };
        assert_eq!(text, "The door code is 4417.\n");
        assert_eq!(size, text.len() as u64);

        // Once indexed with the same model, it is unchanged; with another, not.
        let key = note.display().to_string();
        let chunks = chunk(&text, Format::Markdown);
        index
            .replace_file(&FileUpdate {
                path: &key,
                hash: &hash,
                size,
                mtime_ns,
                embed_model: Some("m"),
                chunks: &chunks,
                vectors: None,
            })
            .unwrap();
        assert!(matches!(
            read_note(&index, &note, 1024, Some("m")).unwrap(),
            Read::Unchanged
        ));
        assert!(matches!(
            read_note(&index, &note, 1024, Some("other")).unwrap(),
            Read::Text { .. }
        ));

        assert!(matches!(
            read_note(&index, &note, 4, None).unwrap(),
            Read::Skip(reason) if reason.contains("rag.max_file_kb")
        ));
        let binary = dir.path().join("nul.txt");
        std::fs::write(&binary, b"abc\0def").unwrap();
        assert!(matches!(
            read_note(&index, &binary, 1024, None).unwrap(),
            Read::Skip(reason) if reason.contains("NUL")
        ));
        let latin1 = dir.path().join("latin1.txt");
        std::fs::write(&latin1, b"caf\xe9").unwrap();
        assert!(matches!(
            read_note(&index, &latin1, 1024, None).unwrap(),
            Read::Skip(reason) if reason.contains("UTF-8")
        ));
        assert!(matches!(
            read_note(&index, &dir.path().join("gone.md"), 1024, None).unwrap(),
            Read::Deferred
        ));
    }
}
