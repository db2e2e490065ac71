//! The notes index in SQLite (WAL): files with their content hash, chunks
//! with line ranges, sentences, an FTS5 table for BM25, and each chunk's
//! embedding as a little-endian f32 BLOB. Every change to a file is one
//! transaction, so a crash mid-indexing leaves the index as it was before
//! or after that file, never between. A monotonically increasing revision
//! per sentence (kept when the sentence survives an edit) records
//! modification order: "newer content wins". The index holds only what the
//! notes and the image store can rebuild: an index that fails its integrity
//! check is set aside and rebuilt, one of another schema version rebuilt.
//! Sentences get their embeddings after their file is stored, when the
//! indexer is idle ([`Index::sentences_to_embed`]), so a note is searchable
//! as soon as its chunks are.
//!
//! Two kinds of documents share the tables: notes, keyed by their absolute
//! path, and image captions, keyed by their document id (`image:` + the
//! image's path, [`CaptionDoc::id_for`]). No note path starts with
//! `image:`, so the notes' path and folder-prefix operations never touch a
//! caption; [`Index::paths`] lists notes only. Owns the index file; touches
//! nothing else.

use crate::vision::CaptionDoc;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

use super::chunk::{sentence_embed_text, Chunk, Lines};

/// Bumped when the schema changes; an index of another version is rebuilt.
const SCHEMA_VERSION: i64 = 2;

/// How long a write waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta (key, value) VALUES ('revision', 0), ('updated_at', 0);
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    embed_model TEXT,
    indexed_at INTEGER NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    line_start INTEGER NOT NULL,
    line_end INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    vector BLOB
);
CREATE INDEX chunks_file ON chunks(file_id);
CREATE TABLE sentences (
    id INTEGER PRIMARY KEY,
    chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    text TEXT NOT NULL,
    line_start INTEGER NOT NULL,
    line_end INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    vector BLOB
);
CREATE INDEX sentences_chunk ON sentences(chunk_id);
CREATE INDEX sentences_unembedded ON sentences(id) WHERE vector IS NULL;
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    heading, text, content='chunks', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, heading, text) VALUES (new.id, new.heading, new.text);
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, heading, text)
        VALUES ('delete', old.id, old.heading, old.text);
END;
";

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("notes index {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot prepare the notes index {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the index remembers of a file, to skip unchanged ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub hash: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub embed_model: Option<String>,
}

/// A file's new content, ready to store.
pub struct FileUpdate<'a> {
    pub path: &'a str,
    pub hash: &'a str,
    pub size: u64,
    pub mtime_ns: i64,
    pub embed_model: Option<&'a str>,
    pub chunks: &'a [Chunk],
    /// One per chunk, or none when no embedder is available. Sentences are
    /// stored without theirs: [`Index::sentences_to_embed`] finds them.
    pub vectors: Option<&'a [Vec<f32>]>,
}

/// What a write changed, for the in-memory vector table.
#[derive(Debug, Default)]
pub struct Changed {
    pub removed: Vec<i64>,
    pub added: Vec<(i64, Vec<f32>)>,
}

/// A stored sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceRow {
    pub text: String,
    pub lines: Lines,
    pub revision: i64,
    /// Its embedding, when the chunk was indexed with an embedder.
    pub vector: Option<Vec<f32>>,
}

/// A stored chunk with its file and sentences.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRow {
    pub id: i64,
    pub path: String,
    pub heading: String,
    pub text: String,
    pub lines: Lines,
    pub revision: i64,
    pub sentences: Vec<SentenceRow>,
}

/// One indexed note, for `notes files`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndexedFile {
    pub path: String,
    pub size: u64,
    /// Unix seconds it was (re)indexed.
    pub indexed_at: u64,
    pub chunks: u64,
    /// Chunks with their embedding (searchable by meaning).
    pub embedded_chunks: u64,
}

/// Totals for `notes status`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Totals {
    /// Note files.
    pub files: u64,
    /// Image caption documents.
    pub images: u64,
    /// Chunks of both.
    pub chunks: u64,
    pub with_vectors: u64,
    /// Sentences of the chunks, and how many have their embedding yet.
    pub sentences: u64,
    pub sentences_with_vectors: u64,
    /// Unix seconds of the last change; `None` before the first.
    pub last_update: Option<u64>,
    pub revision: i64,
}

/// The index: one connection for writes, one for reads (WAL lets readers
/// proceed during a write).
pub struct Index {
    path: PathBuf,
    write: Mutex<Connection>,
    read: Mutex<Connection>,
}

impl Index {
    /// Opens (creating if needed) the index at `path`. An unreadable,
    /// corrupt or other-version index is renamed to `<path>.corrupt-<time>`
    /// (or dropped, for another version) and rebuilt from scratch.
    pub fn open(path: &Path) -> Result<Index, IndexError> {
        let private = || {
            crate::private::prepare_file(path).map_err(|source| IndexError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        private()?;
        match Index::open_checked(path) {
            Ok(index) => Ok(index),
            Err(Reject::Sqlite(source)) if !is_corruption(&source) => Err(IndexError::Sqlite {
                path: path.to_path_buf(),
                source,
            }),
            Err(why) => {
                let moved = if let Reject::Version(_) = why {
                    tracing::info!(index = %path.display(), reason = %why,
                        "the notes index was written by another voxd version; rebuilding it");
                    std::fs::remove_file(path)
                } else {
                    crate::private::set_aside(path).map(|aside| {
                        tracing::warn!(index = %path.display(), moved_to = %aside.display(), reason = %why,
                            "the notes index is unusable; setting it aside and rebuilding it");
                    })
                };
                moved.map_err(|source| IndexError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                private()?;
                Index::open_checked(path).map_err(|why| match why {
                    Reject::Sqlite(source) => IndexError::Sqlite {
                        path: path.to_path_buf(),
                        source,
                    },
                    other => IndexError::Io {
                        path: path.to_path_buf(),
                        source: std::io::Error::other(other.to_string()),
                    },
                })
            }
        }
    }

    fn open_checked(path: &Path) -> Result<Index, Reject> {
        let write = connect(path)?;
        let ok: String = write.pragma_query_value(None, "quick_check", |r| r.get(0))?;
        if ok != "ok" {
            return Err(Reject::Corrupt(ok));
        }
        // The version is read under the write lock: another opener may
        // be creating the schema right now, and its tables are not
        // "unknown tables" once it has committed.
        let tx = Transaction::new_unchecked(&write, TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version == 0 {
            let tables: i64 =
                tx.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
            if tables != 0 {
                return Err(Reject::Corrupt("unknown tables in a new index".into()));
            }
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        } else if version != SCHEMA_VERSION {
            return Err(Reject::Version(version));
        }
        tx.commit()?;
        let read = connect(path)?;
        Ok(Index {
            path: path.to_path_buf(),
            write: Mutex::new(write),
            read: Mutex::new(read),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> IndexError {
        IndexError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.read.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the index holds for `path`, if anything.
    pub fn file_state(&self, path: &str) -> Result<Option<FileState>, IndexError> {
        self.reader()
            .query_row(
                "SELECT hash, size, mtime_ns, embed_model FROM files WHERE path = ?1",
                [path],
                |r| {
                    Ok(FileState {
                        hash: r.get(0)?,
                        size: r.get::<_, i64>(1)? as u64,
                        mtime_ns: r.get(2)?,
                        embed_model: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every indexed note path (caption documents left out).
    pub fn paths(&self) -> Result<Vec<String>, IndexError> {
        self.keys("SELECT path FROM files WHERE substr(path, 1, length(?1)) != ?1 ORDER BY path")
    }

    /// Every indexed note (caption documents left out), by path, with its
    /// chunks.
    pub fn files(&self) -> Result<Vec<IndexedFile>, IndexError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT f.path, f.size, f.indexed_at, count(c.id), count(c.vector)
                 FROM files f LEFT JOIN chunks c ON c.file_id = f.id
                 WHERE substr(f.path, 1, length(?1)) != ?1
                 GROUP BY f.id ORDER BY f.path",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([CaptionDoc::ID_PREFIX], |r| {
                Ok(IndexedFile {
                    path: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    indexed_at: r.get::<_, i64>(2)? as u64,
                    chunks: r.get::<_, i64>(3)? as u64,
                    embedded_chunks: r.get::<_, i64>(4)? as u64,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.err(e))
    }

    /// Every caption document id.
    pub fn image_docs(&self) -> Result<Vec<String>, IndexError> {
        self.keys("SELECT path FROM files WHERE substr(path, 1, length(?1)) = ?1 ORDER BY path")
    }

    fn keys(&self, sql: &str) -> Result<Vec<String>, IndexError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([CaptionDoc::ID_PREFIX], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<String>, _>>());
        rows.map_err(|e| self.err(e))
    }

    /// The chunks of the caption document indexed last (the newest picture):
    /// documents are rows of `files`, and a replaced one is inserted anew, so
    /// the highest row id is the most recently added.
    pub fn newest_image(&self) -> Result<Vec<i64>, IndexError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT c.id FROM chunks c WHERE c.file_id = (
                     SELECT id FROM files WHERE substr(path, 1, length(?1)) = ?1
                     ORDER BY id DESC LIMIT 1)
                 ORDER BY c.ord",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([CaptionDoc::ID_PREFIX], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<i64>, _>>());
        rows.map_err(|e| self.err(e))
    }

    /// Replaces a file's chunks in one transaction. Sentences that survive
    /// unchanged keep their revision; new or changed ones get a new one.
    pub fn replace_file(&self, update: &FileUpdate<'_>) -> Result<Changed, IndexError> {
        let mut conn = self.writer();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let changed = replace_in(&tx, update).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(changed)
    }

    /// Removes `path`, or every file under it when it was a directory.
    pub fn remove(&self, path: &str) -> Result<Changed, IndexError> {
        let mut conn = self.writer();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let removed = (|| {
            let prefix = format!("{}/", path.trim_end_matches('/'));
            let mut stmt = tx.prepare(
                "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id
                 WHERE f.path = ?1 OR substr(f.path, 1, length(?2)) = ?2",
            )?;
            let ids = stmt
                .query_map(params![path, prefix], |r| r.get(0))?
                .collect::<Result<Vec<i64>, _>>()?;
            drop(stmt);
            let n = tx.execute(
                "DELETE FROM files WHERE path = ?1 OR substr(path, 1, length(?2)) = ?2",
                params![path, prefix],
            )?;
            if n > 0 {
                touch(&tx)?;
            }
            Ok(ids)
        })()
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Changed {
            removed,
            added: Vec::new(),
        })
    }

    /// Moves `from` (a file, or a directory's files) to `to`, keeping
    /// chunks, vectors and revisions. Returns how many files moved.
    pub fn rename(&self, from: &str, to: &str) -> Result<usize, IndexError> {
        let mut conn = self.writer();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let moved = (|| {
            // A file already indexed at the destination is replaced.
            tx.execute("DELETE FROM files WHERE path = ?1", [to])?;
            let mut n = tx.execute("UPDATE files SET path = ?2 WHERE path = ?1", [from, to])?;
            let from_dir = format!("{}/", from.trim_end_matches('/'));
            let to_dir = format!("{}/", to.trim_end_matches('/'));
            n += tx.execute(
                "UPDATE files SET path = ?2 || substr(path, length(?1) + 1)
                 WHERE substr(path, 1, length(?1)) = ?1",
                [&from_dir, &to_dir],
            )?;
            if n > 0 {
                touch(&tx)?;
            }
            Ok(n)
        })()
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(moved)
    }

    /// Chunk ids by BM25 (best first) for the words of `query`.
    pub fn bm25(&self, query: &str, limit: usize) -> Result<Vec<i64>, IndexError> {
        let Some(expr) = fts_query(query) else {
            return Ok(Vec::new());
        };
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY rank LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![expr, limit as i64], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<i64>, _>>());
        rows.map_err(|e| self.err(e))
    }

    /// The chunks with these ids, in the order given (missing ids skipped).
    pub fn chunks(&self, ids: &[i64]) -> Result<Vec<ChunkRow>, IndexError> {
        let conn = self.reader();
        let mut out = Vec::with_capacity(ids.len());
        let mut chunk = conn
            .prepare_cached(
                "SELECT f.path, c.heading, c.text, c.line_start, c.line_end, c.revision
                 FROM chunks c JOIN files f ON f.id = c.file_id WHERE c.id = ?1",
            )
            .map_err(|e| self.err(e))?;
        let mut sentences = conn
            .prepare_cached(
                "SELECT text, line_start, line_end, revision, vector FROM sentences
                 WHERE chunk_id = ?1 ORDER BY ord",
            )
            .map_err(|e| self.err(e))?;
        for &id in ids {
            let row = chunk
                .query_row([id], |r| {
                    Ok(ChunkRow {
                        id,
                        path: r.get(0)?,
                        heading: r.get(1)?,
                        text: r.get(2)?,
                        lines: Lines {
                            start: r.get(3)?,
                            end: r.get(4)?,
                        },
                        revision: r.get(5)?,
                        sentences: Vec::new(),
                    })
                })
                .optional()
                .map_err(|e| self.err(e))?;
            let Some(mut row) = row else { continue };
            row.sentences = sentences
                .query_map([id], |r| {
                    Ok(SentenceRow {
                        text: r.get(0)?,
                        lines: Lines {
                            start: r.get(1)?,
                            end: r.get(2)?,
                        },
                        revision: r.get(3)?,
                        vector: r.get::<_, Option<Vec<u8>>>(4)?.map(|b| from_blob(&b)),
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.err(e))?;
            out.push(row);
        }
        Ok(out)
    }

    /// Up to `limit` sentences still without an embedding, of chunks that
    /// have one (indexed with an embedder): their ids and what the embedder
    /// reads for each.
    pub fn sentences_to_embed(&self, limit: usize) -> Result<Vec<(i64, String)>, IndexError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT s.id, c.heading, s.text FROM sentences s JOIN chunks c ON c.id = s.chunk_id
                 WHERE s.vector IS NULL AND c.vector IS NOT NULL ORDER BY s.id LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([limit as i64], |r| {
            let (heading, text): (String, String) = (r.get(1)?, r.get(2)?);
            Ok((r.get(0)?, sentence_embed_text(&heading, &text)))
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    /// Stores sentence embeddings by sentence id, in one transaction (ids
    /// whose sentence a newer edit removed are ignored).
    pub fn set_sentence_vectors(&self, vectors: &[(i64, Vec<f32>)]) -> Result<(), IndexError> {
        let mut conn = self.writer();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare_cached("UPDATE sentences SET vector = ?2 WHERE id = ?1")
                .map_err(|e| self.err(e))?;
            for (id, v) in vectors {
                stmt.execute(params![id, to_blob(v)])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Every stored vector, for the in-memory table.
    pub fn vectors(&self) -> Result<Vec<(i64, Vec<f32>)>, IndexError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare("SELECT id, vector FROM chunks WHERE vector IS NOT NULL")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, from_blob(&r.get::<_, Vec<u8>>(1)?))))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.err(e))
    }

    pub fn totals(&self) -> Result<Totals, IndexError> {
        self.reader()
            .query_row(
                "SELECT (SELECT count(*) FROM files WHERE substr(path, 1, length(?1)) != ?1),
                        (SELECT count(*) FROM files WHERE substr(path, 1, length(?1)) = ?1),
                        (SELECT count(*) FROM chunks),
                        (SELECT count(*) FROM chunks WHERE vector IS NOT NULL),
                        (SELECT value FROM meta WHERE key = 'updated_at'),
                        (SELECT value FROM meta WHERE key = 'revision'),
                        (SELECT count(*) FROM sentences),
                        (SELECT count(*) FROM sentences WHERE vector IS NOT NULL)",
                [CaptionDoc::ID_PREFIX],
                |r| {
                    let updated: i64 = r.get(4)?;
                    Ok(Totals {
                        files: r.get::<_, i64>(0)? as u64,
                        images: r.get::<_, i64>(1)? as u64,
                        chunks: r.get::<_, i64>(2)? as u64,
                        with_vectors: r.get::<_, i64>(3)? as u64,
                        last_update: (updated > 0).then_some(updated as u64),
                        revision: r.get(5)?,
                        sentences: r.get::<_, i64>(6)? as u64,
                        sentences_with_vectors: r.get::<_, i64>(7)? as u64,
                    })
                },
            )
            .map_err(|e| self.err(e))
    }
}

/// Why an existing file is not used as the index.
#[derive(Debug, thiserror::Error)]
enum Reject {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("integrity check failed: {0}")]
    Corrupt(String),
    #[error("schema version {0}, this voxd writes {SCHEMA_VERSION}")]
    Version(i64),
}

use crate::private::is_corruption;

fn connect(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    wal(&conn)?;
    // WAL + NORMAL: a crash loses at most the last commits, never consistency.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Switches `conn` to WAL. The switch needs the file to itself, and
/// SQLite answers "busy" at once, without the busy handler, while another
/// connection opens it: retried here up to [`BUSY_TIMEOUT`].
fn wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn touch(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    tx.execute("UPDATE meta SET value = ?1 WHERE key = 'updated_at'", [now])?;
    Ok(())
}

fn replace_in(tx: &Transaction<'_>, u: &FileUpdate<'_>) -> rusqlite::Result<Changed> {
    let revision: i64 = tx.query_row(
        "UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value",
        [],
        |r| r.get(0),
    )?;
    // Revisions of the sentences the file had, by text.
    let mut old: HashMap<String, i64> = HashMap::new();
    let mut removed = Vec::new();
    {
        let mut stmt = tx.prepare(
            "SELECT c.id, s.text, s.revision FROM files f JOIN chunks c ON c.file_id = f.id
             LEFT JOIN sentences s ON s.chunk_id = c.id WHERE f.path = ?1",
        )?;
        let mut rows = stmt.query([u.path])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            if removed.last() != Some(&id) {
                removed.push(id);
            }
            if let (Some(text), Some(rev)) = (r.get::<_, Option<String>>(1)?, r.get(2)?) {
                let e = old.entry(text).or_insert(rev);
                *e = (*e).min(rev);
            }
        }
    }
    removed.dedup();
    tx.execute("DELETE FROM files WHERE path = ?1", [u.path])?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    tx.execute(
        "INSERT INTO files (path, hash, size, mtime_ns, embed_model, indexed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            u.path,
            u.hash,
            u.size as i64,
            u.mtime_ns,
            u.embed_model,
            now
        ],
    )?;
    let file_id = tx.last_insert_rowid();
    let mut added = Vec::new();
    let mut insert_chunk = tx.prepare(
        "INSERT INTO chunks (file_id, ord, heading, text, line_start, line_end, revision, vector)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut insert_sentence = tx.prepare(
        "INSERT INTO sentences (chunk_id, ord, text, line_start, line_end, revision)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (ord, chunk) in u.chunks.iter().enumerate() {
        let revs: Vec<i64> = chunk
            .sentences
            .iter()
            .map(|s| old.get(&s.text).copied().unwrap_or(revision))
            .collect();
        let chunk_rev = revs.iter().copied().max().unwrap_or(revision);
        let vector = u.vectors.and_then(|v| v.get(ord));
        insert_chunk.execute(params![
            file_id,
            ord as i64,
            chunk.heading,
            chunk.text,
            chunk.lines.start,
            chunk.lines.end,
            chunk_rev,
            vector.map(|v| to_blob(v)),
        ])?;
        let chunk_id = tx.last_insert_rowid();
        for (i, (s, rev)) in chunk.sentences.iter().zip(&revs).enumerate() {
            insert_sentence.execute(params![
                chunk_id,
                i as i64,
                s.text,
                s.lines.start,
                s.lines.end,
                rev
            ])?;
        }
        if let Some(v) = vector {
            added.push((chunk_id, v.clone()));
        }
    }
    touch(tx)?;
    Ok(Changed { removed, added })
}

fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The most distinct words a query searches for: a question has a few; a
/// pasted page of 32,000 words once took 38 s and held up every other
/// search.
pub const MAX_QUERY_TERMS: usize = 32;

/// An FTS5 query matching any content word of `text` (stop words left
/// out: "what is the" matches every note and only costs ranking time; all
/// words when nothing else is left), its first [`MAX_QUERY_TERMS`]
/// distinct ones. Each word is quoted, so no FTS5 syntax can leak in.
/// `None` when `text` has no words.
pub fn fts_query(text: &str) -> Option<String> {
    let mut words = super::answer::content_words(text);
    if words.is_empty() {
        words = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
    }
    let mut seen = std::collections::HashSet::new();
    let quoted: Vec<String> = words
        .iter()
        .filter(|w| seen.insert(w.as_str()))
        .take(MAX_QUERY_TERMS)
        .map(|w| format!("\"{w}\""))
        .collect();
    (!quoted.is_empty()).then(|| quoted.join(" OR "))
}

#[cfg(test)]
mod tests {
    use super::super::chunk::{chunk, Format};
    use super::*;

    #[test]
    fn a_huge_query_searches_its_first_distinct_words_only() {
        let page: String = (0..32_000).map(|i| format!("word{} ", i % 5000)).collect();
        let query = fts_query(&page).unwrap();
        assert_eq!(query.matches(" OR ").count(), MAX_QUERY_TERMS - 1);
        assert!(query.starts_with("\"word0\" OR \"word1\""), "{query}");
        assert_eq!(
            fts_query("kettle moon kettle").unwrap(),
            "\"kettle\" OR \"moon\""
        );
    }

    /// Opens racing on a new index all get the one index: none takes the
    /// schema another has just written for corruption and sets it aside.
    #[test]
    fn concurrent_opens_of_a_new_index_share_it() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("i.sqlite");
            let start = std::sync::Barrier::new(4);
            let opened: Vec<Index> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            Index::open(&path).unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let names: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("corrupt"))
                .collect();
            assert!(names.is_empty(), "set aside: {names:?}");
            opened[0].replace_file(&update("/n/a.md", &[])).unwrap();
            for index in &opened {
                assert_eq!(index.paths().unwrap(), ["/n/a.md"]);
            }
        }
    }

    fn update<'a>(path: &'a str, chunks: &'a [Chunk]) -> FileUpdate<'a> {
        FileUpdate {
            path,
            hash: "h",
            size: 1,
            mtime_ns: 1,
            embed_model: None,
            chunks,
            vectors: None,
        }
    }

    #[test]
    fn sentences_keep_their_revision_across_edits_and_new_ones_are_newer() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("i.sqlite")).unwrap();
        let v1 = chunk(
            "- The door code is 4417.\n- The bins go out on Monday.\n",
            Format::Markdown,
        );
        index.replace_file(&update("/n/home.md", &v1)).unwrap();
        let v2 = chunk(
            "- The door code is 4417.\n- The bins go out on Monday.\n- Updated: the door code is now 5820.\n",
            Format::Markdown,
        );
        index.replace_file(&update("/n/home.md", &v2)).unwrap();
        let ids = index.bm25("door code", 10).unwrap();
        let rows = index.chunks(&ids).unwrap();
        assert_eq!(rows.len(), 1);
        let s = &rows[0].sentences;
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].revision, s[1].revision);
        assert!(s[2].revision > s[0].revision, "{s:?}");
        assert_eq!(rows[0].revision, s[2].revision);
        assert_eq!(s[2].lines, Lines { start: 3, end: 3 });
    }

    #[test]
    fn remove_and_rename_cover_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("i.sqlite")).unwrap();
        let c = chunk("alpha beta", Format::Plain);
        for p in ["/n/a.md", "/n/sub/b.md", "/n/sub/c.md", "/n/subway.md"] {
            index.replace_file(&update(p, &c)).unwrap();
        }
        assert_eq!(index.rename("/n/sub", "/n/moved").unwrap(), 2);
        assert_eq!(index.rename("/n/a.md", "/n/z.md").unwrap(), 1);
        assert_eq!(
            index.paths().unwrap(),
            ["/n/moved/b.md", "/n/moved/c.md", "/n/subway.md", "/n/z.md"]
        );
        let removed = index.remove("/n/moved").unwrap().removed;
        assert_eq!(removed.len(), 2);
        assert_eq!(index.paths().unwrap(), ["/n/subway.md", "/n/z.md"]);
        assert_eq!(index.totals().unwrap().chunks, 2);
        // The FTS table follows the deletes.
        assert_eq!(index.bm25("alpha", 10).unwrap().len(), 2);
    }

    #[test]
    fn caption_documents_stay_out_of_note_operations() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("i.sqlite")).unwrap();
        let c = chunk("alpha beta", Format::Plain);
        index.replace_file(&update("/n/a.md", &c)).unwrap();
        let cap = chunk("a dog on a red sofa", Format::Plain);
        let first = CaptionDoc::id_for(Path::new("/n/old.png"));
        let second = CaptionDoc::id_for(Path::new("/pics/new.png"));
        index.replace_file(&update(&first, &cap)).unwrap();
        index.replace_file(&update(&second, &cap)).unwrap();
        assert_eq!(index.paths().unwrap(), ["/n/a.md"]);
        assert_eq!(index.image_docs().unwrap(), [first.clone(), second.clone()]);
        let totals = index.totals().unwrap();
        assert_eq!((totals.files, totals.images, totals.chunks), (1, 2, 3));
        // The notes folder going away takes its notes, not the captions.
        assert_eq!(index.remove("/n").unwrap().removed.len(), 1);
        assert_eq!(index.rename("/pics", "/moved").unwrap(), 0);
        assert_eq!(index.image_docs().unwrap().len(), 2);
        // The newest caption is the one indexed last; replacing the older
        // one makes it the newest.
        let newest = index.chunks(&index.newest_image().unwrap()).unwrap();
        assert_eq!(newest[0].path, second);
        index.replace_file(&update(&first, &cap)).unwrap();
        let newest = index.chunks(&index.newest_image().unwrap()).unwrap();
        assert_eq!(newest[0].path, first);
    }

    #[test]
    fn fts_queries_are_quoted_words() {
        assert_eq!(
            fts_query("what's the wifi \"password\" NEAR x*?").unwrap(),
            "\"wifi\" OR \"password\" OR \"near\""
        );
        assert_eq!(
            fts_query("what is it").unwrap(),
            "\"what\" OR \"is\" OR \"it\""
        );
        assert_eq!(fts_query(" ?! "), None);
    }

    #[test]
    fn a_corrupt_index_is_set_aside_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.sqlite");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let index = Index::open(&path).unwrap();
        assert_eq!(index.totals().unwrap().files, 0);
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
    }

    #[test]
    fn an_index_of_another_version_is_rebuilt_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.sqlite");
        let c = chunk("one", Format::Plain);
        Index::open(&path)
            .unwrap()
            .replace_file(&update("/n/a.txt", &c))
            .unwrap();
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 1)
            .unwrap();
        let index = Index::open(&path).unwrap();
        assert_eq!(index.totals().unwrap().files, 0);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".corrupt-"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn vectors_round_trip_through_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("i.sqlite")).unwrap();
        let c = chunk("One.\n\nTwo is here. Three is there.", Format::Plain);
        let vectors = vec![vec![0.5, -1.25], vec![3.0, 0.0]];
        let changed = index
            .replace_file(&FileUpdate {
                vectors: Some(&vectors),
                embed_model: Some("m"),
                ..update("/n/a.txt", &c)
            })
            .unwrap();
        assert_eq!(changed.added.len(), 2);
        let mut stored = index.vectors().unwrap();
        stored.sort_by_key(|(id, _)| *id);
        assert_eq!(stored[0].1, vectors[0]);
        assert_eq!(stored[1].1, vectors[1]);
        // The sentences get theirs afterwards, in any batches.
        let pending = index.sentences_to_embed(10).unwrap();
        let texts: Vec<&str> = pending.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["One.", "Two is here.", "Three is there."]);
        assert_eq!(index.sentences_to_embed(2).unwrap().len(), 2);
        let sentence_vectors: Vec<(i64, Vec<f32>)> = pending
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, vec![i as f32, -0.5]))
            .collect();
        index.set_sentence_vectors(&sentence_vectors).unwrap();
        assert!(index.sentences_to_embed(10).unwrap().is_empty());
        let totals = index.totals().unwrap();
        assert_eq!((totals.sentences, totals.sentences_with_vectors), (3, 3));
        let rows = index.chunks(&[stored[0].0, stored[1].0]).unwrap();
        let got: Vec<Option<Vec<f32>>> = rows
            .iter()
            .flat_map(|r| r.sentences.iter().map(|s| s.vector.clone()))
            .collect();
        let want: Vec<Option<Vec<f32>>> =
            sentence_vectors.into_iter().map(|(_, v)| Some(v)).collect();
        assert_eq!(got, want);
        assert_eq!(
            index
                .file_state("/n/a.txt")
                .unwrap()
                .unwrap()
                .embed_model
                .as_deref(),
            Some("m")
        );
    }
}
