//! The image store: one SQLite database (WAL, every change in a transaction)
//! of captions by content hash and of the files that hold each content.
//! Keeping captions by hash is what makes captioning exactly-once per
//! content: a renamed, copied or restored file finds its caption here.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// A store failure (the database could not be opened, read or written).
#[derive(Debug, thiserror::Error)]
#[error("image store {path}: {source}")]
pub struct StoreError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

/// A caption of one content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Caption {
    /// sha256 of the file's bytes, hex.
    pub hash: String,
    pub caption: String,
    /// The model that wrote it.
    pub model: String,
    /// The conditional prompt it continues ("" for none).
    pub prompt: String,
    pub width: u32,
    pub height: u32,
    /// jpeg, png, webp, gif or bmp.
    pub format: String,
    /// Unix seconds.
    pub captioned_at: i64,
}

/// What the store knows of one file: its content, size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub path: PathBuf,
    pub hash: String,
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime_ns: i64,
}

/// One row of `voxd images list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub path: PathBuf,
    pub size: u64,
    /// Unix seconds when the file entered the index.
    pub added_at: i64,
    #[serde(flatten)]
    pub caption: Caption,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS captions (
    hash TEXT PRIMARY KEY,
    caption TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    format TEXT NOT NULL,
    captioned_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    hash TEXT NOT NULL REFERENCES captions(hash),
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    added_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS files_added ON files(added_at);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    reason TEXT NOT NULL,
    failed_at INTEGER NOT NULL
);
";

/// The open database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64
}

impl Store {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let err = |source| StoreError {
            path: path.to_path_buf(),
            source,
        };
        let conn = crate::private::open_store(path, "images", |path| {
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.busy_timeout(Duration::from_secs(5))?;
            crate::private::quick_check(&conn)?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        })
        .map_err(err)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError {
            path: self.path.clone(),
            source,
        }
    }

    /// What is recorded for `path`, if it was captioned.
    pub fn file(&self, path: &Path) -> Result<Option<FileMeta>, StoreError> {
        self.conn
            .query_row(
                "SELECT hash, size, mtime_ns FROM files WHERE path = ?1",
                params![path_str(path)],
                |r| {
                    Ok(FileMeta {
                        path: path.to_path_buf(),
                        hash: r.get(0)?,
                        size: r.get::<_, i64>(1)? as u64,
                        mtime_ns: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The failure recorded for `path` (its size and mtime then), if any.
    pub fn failure(&self, path: &Path) -> Result<Option<(u64, i64)>, StoreError> {
        self.conn
            .query_row(
                "SELECT size, mtime_ns FROM failures WHERE path = ?1",
                params![path_str(path)],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The content hash recorded as failed at `path`, if any.
    pub fn failed_hash(&self, path: &Path) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT hash FROM failures WHERE path = ?1",
                params![path_str(path)],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The caption of the content `hash`, if it was captioned before.
    pub fn caption(&self, hash: &str) -> Result<Option<Caption>, StoreError> {
        self.conn
            .query_row(
                "SELECT hash, caption, model, prompt, width, height, format, captioned_at
                 FROM captions WHERE hash = ?1",
                params![hash],
                caption_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records that `file` holds the content of `caption` (adding the
    /// caption when it is new), in one transaction.
    pub fn put(&mut self, file: &FileMeta, caption: &Caption) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT OR IGNORE INTO captions
             (hash, caption, model, prompt, width, height, format, captioned_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                caption.hash,
                caption.caption,
                caption.model,
                caption.prompt,
                caption.width,
                caption.height,
                caption.format,
                caption.captioned_at
            ],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO files (path, hash, size, mtime_ns, added_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(path) DO UPDATE SET hash = ?2, size = ?3, mtime_ns = ?4,
                 added_at = CASE WHEN files.hash = ?2 THEN files.added_at ELSE ?5 END",
            params![
                path_str(&file.path),
                file.hash,
                file.size as i64,
                file.mtime_ns,
                now()
            ],
        )
        .map_err(err)?;
        tx.execute(
            "DELETE FROM failures WHERE path = ?1",
            params![path_str(&file.path)],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Records that `file` could not be captioned; whatever was recorded for
    /// its path before no longer describes it and is dropped. Returns whether
    /// a captioned file was dropped.
    pub fn put_failure(&mut self, file: &FileMeta, reason: &str) -> Result<bool, StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        let dropped = tx
            .execute(
                "DELETE FROM files WHERE path = ?1",
                params![path_str(&file.path)],
            )
            .map_err(err)?;
        tx.execute(
            "INSERT INTO failures (path, hash, size, mtime_ns, reason, failed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(path) DO UPDATE SET hash = ?2, size = ?3, mtime_ns = ?4,
                 reason = ?5, failed_at = ?6",
            params![
                path_str(&file.path),
                file.hash,
                file.size as i64,
                file.mtime_ns,
                reason,
                now()
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(dropped > 0)
    }

    /// Forgets the file at `path` (the caption stays, for its content may
    /// come back). Returns whether a captioned file was recorded there.
    pub fn remove(&mut self, path: &Path) -> Result<bool, StoreError> {
        let path_s = path_str(path);
        let store = self.path.clone();
        let err = |source| StoreError {
            path: store.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        let n = tx
            .execute("DELETE FROM files WHERE path = ?1", params![path_s])
            .map_err(err)?;
        tx.execute("DELETE FROM failures WHERE path = ?1", params![path_s])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(n > 0)
    }

    /// Forgets `path` and, when no other file holds the same content, its
    /// caption too (`voxd images forget`). Returns whether it was recorded.
    pub fn forget(&mut self, path: &Path) -> Result<bool, StoreError> {
        let Some(file) = self.file(path)? else {
            return self.remove(path);
        };
        let store = self.path.clone();
        let err = |source| StoreError {
            path: store.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("DELETE FROM files WHERE path = ?1", params![path_str(path)])
            .map_err(err)?;
        tx.execute(
            "DELETE FROM captions WHERE hash = ?1
             AND NOT EXISTS (SELECT 1 FROM files WHERE hash = ?1)",
            params![file.hash],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(true)
    }

    /// Every recorded path (captioned or failed) under `dir`.
    pub fn paths_under(&self, dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
        let mut prefix = path_str(dir).to_string();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT path FROM files WHERE substr(path, 1, length(?1)) = ?1
                 UNION SELECT path FROM failures WHERE substr(path, 1, length(?1)) = ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![prefix], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map(PathBuf::from).map_err(|e| self.err(e)))
            .collect()
    }

    /// Captioned files, newest first; with `since`, only those added at or
    /// after that unix time.
    pub fn list(&self, since: Option<i64>) -> Result<Vec<Entry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT c.hash, c.caption, c.model, c.prompt, c.width, c.height, c.format,
                        c.captioned_at, f.path, f.size, f.added_at
                 FROM files f JOIN captions c ON c.hash = f.hash
                 WHERE f.added_at >= ?1 ORDER BY f.added_at DESC, f.path",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![since.unwrap_or(i64::MIN)], |r| {
                Ok(Entry {
                    caption: caption_row(r)?,
                    path: PathBuf::from(r.get::<_, String>(8)?),
                    size: r.get::<_, i64>(9)? as u64,
                    added_at: r.get(10)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }
}

fn caption_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Caption> {
    Ok(Caption {
        hash: r.get(0)?,
        caption: r.get(1)?,
        model: r.get(2)?,
        prompt: r.get(3)?,
        width: r.get(4)?,
        height: r.get(5)?,
        format: r.get(6)?,
        captioned_at: r.get(7)?,
    })
}

/// Paths are stored as text; voxd only watches paths that are UTF-8 (the
/// watcher reports others as errors).
fn path_str(path: &Path) -> std::borrow::Cow<'_, str> {
    path.to_string_lossy()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caption(hash: &str) -> Caption {
        Caption {
            hash: hash.into(),
            caption: format!("a picture {hash}"),
            model: "m".into(),
            prompt: String::new(),
            width: 4,
            height: 3,
            format: "png".into(),
            captioned_at: now(),
        }
    }

    fn meta(path: &str, hash: &str) -> FileMeta {
        FileMeta {
            path: path.into(),
            hash: hash.into(),
            size: 10,
            mtime_ns: 5,
        }
    }

    #[test]
    fn keeps_captions_by_content_and_files_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("images.db")).unwrap();
        store.put(&meta("/p/a.png", "h1"), &caption("h1")).unwrap();
        store.put(&meta("/p/b.png", "h1"), &caption("h1")).unwrap();
        assert_eq!(store.list(None).unwrap().len(), 2);
        assert!(store.remove(Path::new("/p/a.png")).unwrap());
        assert!(store.caption("h1").unwrap().is_some());
        assert!(store.forget(Path::new("/p/b.png")).unwrap());
        assert!(store.caption("h1").unwrap().is_none());
        assert!(!store.forget(Path::new("/p/b.png")).unwrap());
    }

    #[test]
    fn failures_replace_files_and_list_filters_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("images.db")).unwrap();
        store.put(&meta("/p/a.png", "h1"), &caption("h1")).unwrap();
        assert!(store.put_failure(&meta("/p/a.png", "h2"), "bad").unwrap());
        assert!(store.file(Path::new("/p/a.png")).unwrap().is_none());
        assert_eq!(store.failure(Path::new("/p/a.png")).unwrap(), Some((10, 5)));
        assert_eq!(
            store.failed_hash(Path::new("/p/a.png")).unwrap().as_deref(),
            Some("h2")
        );
        assert_eq!(
            store.paths_under(Path::new("/p")).unwrap(),
            vec![PathBuf::from("/p/a.png")]
        );
        assert!(store.paths_under(Path::new("/q")).unwrap().is_empty());
        store.put(&meta("/p/a.png", "h1"), &caption("h1")).unwrap();
        assert!(store.failure(Path::new("/p/a.png")).unwrap().is_none());
        assert_eq!(store.list(Some(now() - 60)).unwrap().len(), 1);
        assert!(store.list(Some(now() + 60)).unwrap().is_empty());
    }
}
