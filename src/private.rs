//! Private files. What voxd keeps about its user (the notes' text in the
//! index, the conversation history, image captions) is readable by that
//! user only, whatever the umask: directories voxd creates are 0700, and
//! its databases are 0600 (SQLite gives its `-wal` and `-shm` files the
//! database's mode).

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

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
}
