//! Private stores. What voxd keeps about its user (the notes' text in the
//! index, the conversation history, image captions) is readable by that
//! user only, whatever the umask: directories voxd creates are 0700, and
//! its databases are 0600 (SQLite gives its `-wal` and `-shm` files the
//! database's mode). A store found corrupt is set aside (the newest
//! [`ASIDE_KEPT`] copies kept) and started afresh, so that voxd starts
//! instead of failing in a loop under its service manager.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Corrupt copies of one store kept beside it.
pub const ASIDE_KEPT: usize = 3;

/// Creates `dir` and any missing parents as 0700. Directories that exist
/// keep their mode: they may be the user's own (`$HOME`).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Makes sure the file `path` exists and is 0600 (created so, or narrowed
/// if it was wider), creating its directory as [`create_dir`] does: call
/// it before SQLite opens a database there.
pub fn prepare_file(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(path, Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Whether SQLite says the file is no (sound) database.
pub fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// Renames the database `path` to `<path>.corrupt-<unix nanoseconds>`, drops
/// its `-wal` and `-shm` files, and removes all but the newest
/// [`ASIDE_KEPT`] copies set aside before. Returns where it went.
pub fn set_aside(path: &Path) -> io::Result<PathBuf> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let aside = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    fs::rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(aside);
    };
    let prefix = format!("{}.corrupt-", name.to_string_lossy());
    let mut copies: Vec<PathBuf> = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .collect();
    copies.sort();
    let extra = copies.len().saturating_sub(ASIDE_KEPT);
    for old in &copies[..extra] {
        let _ = fs::remove_file(old);
    }
    Ok(aside)
}

/// Opens the store at `path` with `open` (which runs its pragmas and
/// schema, and `PRAGMA quick_check`); one found corrupt is set aside with
/// a warning naming `what`, and a fresh one opened.
pub fn open_store<T>(
    path: &Path,
    what: &str,
    open: impl Fn(&Path) -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    match open(path) {
        Err(e) if is_corruption(&e) => {
            let aside = set_aside(path).map_err(|io| {
                rusqlite::Error::InvalidPath(format!("{}: {io}", path.display()).into())
            })?;
            tracing::warn!(store = what, path = %path.display(), moved_to = %aside.display(), error = %e,
                "the store is corrupt; set aside, starting afresh");
            prepare_file(path).map_err(|io| {
                rusqlite::Error::InvalidPath(format!("{}: {io}", path.display()).into())
            })?;
            open(path)
        }
        other => other,
    }
}

/// `PRAGMA quick_check`, as an error when the database is damaged.
pub fn quick_check(conn: &rusqlite::Connection) -> Result<(), rusqlite::Error> {
    let verdict: String = conn.pragma_query_value(None, "quick_check", |r| r.get(0))?;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(verdict),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_0600_in_0700_directories_and_wider_ones_are_narrowed() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a/b/store.sqlite");
        prepare_file(&file).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
        fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        fs::write(&file, b"kept").unwrap();
        prepare_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(fs::read(&file).unwrap(), b"kept", "never truncated");
    }

    #[test]
    fn a_corrupt_store_is_set_aside_and_started_afresh_keeping_three_copies() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("store.db");
        let open = |p: &Path| {
            let conn = rusqlite::Connection::open(p)?;
            conn.execute_batch("CREATE TABLE IF NOT EXISTS t (x)")?;
            quick_check(&conn)?;
            Ok(conn)
        };
        for round in 0..5 {
            fs::write(&path, vec![b'x'; 4096]).unwrap();
            let conn = open_store(&path, "test", open).unwrap();
            conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
            drop(conn);
            let aside: Vec<_> = fs::read_dir(tmp.path())
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
                .collect();
            assert_eq!(aside.len(), (round + 1).min(ASIDE_KEPT), "round {round}");
        }
    }
}
