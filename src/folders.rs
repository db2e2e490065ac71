//! The folders voxd watches (notes, images), walked and read safely
//! whatever is put in them: each directory is visited once by device and
//! inode, so symlink loops end; only regular files are read, checked on
//! the open handle (opened non-blocking, so a FIFO never blocks a thread,
//! and a link to a device is refused); and no read goes past its limit,
//! whatever the file's size said a moment before. A path a client names
//! is served only when it lies inside a folder ([`inside`], [`serve`]).

use std::collections::HashSet;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{ErrorKind, Kind};

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not a regular file")]
    NotRegular,
    #[error("{size} bytes is more than the limit of {max}")]
    TooLarge { size: u64, max: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Why a path a client named is not served from the folders.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0} is not inside the folders voxd serves")]
    Outside(PathBuf),
    #[error("{0} leaves the folders voxd serves (a `..` or a link out of them)")]
    Leaves(PathBuf),
    #[error("no such file: {0}")]
    Missing(PathBuf),
}

/// The real path of `path` if it names something inside one of `roots`
/// (canonical folders), with no `..` and no link leading out of them.
/// A path that is not lexically inside a folder is refused before the
/// file system is asked, so that the answer does not say what exists
/// elsewhere.
pub fn inside(roots: &[PathBuf], path: &Path) -> Result<PathBuf, Refused> {
    if !path.is_absolute() || !roots.iter().any(|root| path.starts_with(root)) {
        return Err(Refused::Outside(path.to_path_buf()));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(Refused::Leaves(path.to_path_buf()));
    }
    let real = path.canonicalize().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
            Refused::Missing(path.to_path_buf())
        }
        _ => Refused::Leaves(path.to_path_buf()),
    })?;
    if roots.iter().any(|root| real.starts_with(root)) {
        Ok(real)
    } else {
        Err(Refused::Leaves(path.to_path_buf()))
    }
}

/// A file served from inside the folders.
#[derive(Debug)]
pub struct Served {
    /// Its real path.
    pub path: PathBuf,
    /// Its path relative to its folder.
    pub relative: PathBuf,
    pub bytes: Vec<u8>,
}

/// Why a file a client named is not served.
#[derive(Debug, thiserror::Error)]
pub enum Unserved {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("{path} is not {what}")]
    NotServed { path: PathBuf, what: &'static str },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: ReadError },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Kind for Unserved {
    fn kind(&self) -> ErrorKind {
        match self {
            Unserved::Refused(Refused::Missing(_))
            | Unserved::Read {
                source: ReadError::NotRegular,
                ..
            } => ErrorKind::NotFound,
            Unserved::Refused(_)
            | Unserved::NotServed { .. }
            | Unserved::Read {
                source: ReadError::TooLarge { .. },
                ..
            } => ErrorKind::Forbidden,
            Unserved::Read { .. } | Unserved::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// Reads the file at `path` for a client: only [`inside`] `roots`, only
/// what `serves` accepts (given the path relative to its folder; `what`
/// names what it accepts), at most `max` bytes.
pub fn serve(
    roots: &[PathBuf],
    path: &Path,
    max: u64,
    what: &'static str,
    serves: impl Fn(&Path) -> bool,
) -> Result<Served, Unserved> {
    let real = inside(roots, path)?;
    let relative = roots
        .iter()
        .find_map(|root| real.strip_prefix(root).ok())
        .unwrap_or(&real)
        .to_path_buf();
    if !serves(&relative) {
        return Err(Unserved::NotServed {
            path: path.to_path_buf(),
            what,
        });
    }
    let read = |source| Unserved::Read {
        path: real.clone(),
        source,
    };
    let (file, meta) = open_regular(&real, max).map_err(read)?;
    // The file opened must be the one checked: a link swapped in since
    // the check would lead elsewhere.
    if opened_path(&file).is_some_and(|opened| !roots.iter().any(|root| opened.starts_with(root))) {
        return Err(Refused::Leaves(path.to_path_buf()).into());
    }
    let (bytes, _) = read_open(file, meta, max).map_err(read)?;
    Ok(Served {
        path: real,
        relative,
        bytes,
    })
}

/// Where an open file really is, where the platform says (Linux).
fn opened_path(file: &File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

/// Calls `f` with every regular file under `root` and its metadata
/// (following links), skipping every entry `skip` names and every
/// directory seen before.
pub fn walk(root: &Path, skip: &dyn Fn(&Path) -> bool, f: &mut dyn FnMut(&Path, &Metadata)) {
    let mut seen = HashSet::new();
    walk_from(root, skip, f, &mut seen);
}

fn walk_from(
    dir: &Path,
    skip: &dyn Fn(&Path) -> bool,
    f: &mut dyn FnMut(&Path, &Metadata),
    seen: &mut HashSet<(u64, u64)>,
) {
    let Ok(meta) = std::fs::metadata(dir) else {
        tracing::warn!(folder = %dir.display(), "cannot read this folder");
        return;
    };
    if !seen.insert((meta.dev(), meta.ino())) {
        tracing::debug!(folder = %dir.display(), "seen before (a link loop or a second link); skipped");
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(folder = %dir.display(), error = %e, "cannot list this folder");
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if skip(&path) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk_from(&path, skip, f, seen);
        } else if meta.is_file() {
            f(&path, &meta);
        }
    }
}

/// Opens `path` if it is a regular file of at most `max` bytes.
pub fn open_regular(path: &Path, max: u64) -> Result<(File, Metadata), ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            max,
        });
    }
    Ok((file, meta))
}

/// Reads the regular file `path` whole, if it has at most `max` bytes (also
/// while it is read), and its metadata from the open handle.
pub fn read_regular(path: &Path, max: u64) -> Result<(Vec<u8>, Metadata), ReadError> {
    let (file, meta) = open_regular(path, max)?;
    read_open(file, meta, max)
}

/// Reads an opened regular file whole, if it has at most `max` bytes.
fn read_open(file: File, meta: Metadata, max: u64) -> Result<(Vec<u8>, Metadata), ReadError> {
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            max,
        });
    }
    Ok((bytes, meta))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn only_paths_inside_the_folders_are_served() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let root = base.join("notes");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.md"), "a").unwrap();
        std::fs::write(base.join("secret.md"), "s").unwrap();
        symlink(base.join("secret.md"), root.join("out.md")).unwrap();
        symlink(root.join("sub/a.md"), root.join("in.md")).unwrap();
        let roots = [root.clone()];
        assert_eq!(
            inside(&roots, &root.join("sub/a.md")).unwrap(),
            root.join("sub/a.md")
        );
        assert_eq!(
            inside(&roots, &root.join("in.md")).unwrap(),
            root.join("sub/a.md")
        );
        assert!(matches!(
            inside(&roots, &root.join("sub/../../secret.md")),
            Err(Refused::Leaves(_))
        ));
        assert!(matches!(
            inside(&roots, &root.join("sub/../sub/a.md")),
            Err(Refused::Leaves(_))
        ));
        assert!(matches!(
            inside(&roots, &root.join("out.md")),
            Err(Refused::Leaves(_))
        ));
        assert!(matches!(
            inside(&roots, &base.join("secret.md")),
            Err(Refused::Outside(_))
        ));
        assert!(matches!(
            inside(&roots, Path::new("notes/sub/a.md")),
            Err(Refused::Outside(_))
        ));
        assert!(matches!(
            inside(&roots, &base.join("notes-other/x.md")),
            Err(Refused::Outside(_))
        ));
        assert!(matches!(
            inside(&roots, &root.join("none.md")),
            Err(Refused::Missing(_))
        ));
    }

    #[test]
    fn link_loops_end_and_only_regular_files_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/note.md"), "hello").unwrap();
        std::fs::write(root.join(".hidden.md"), "no").unwrap();
        // Two loops: each would double the paths at every level.
        symlink(root, root.join("a/b/up")).unwrap();
        symlink(root.join("a"), root.join("a/b/back")).unwrap();
        symlink("/dev/zero", root.join("zero.md")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("fifo.md"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let mut found = Vec::new();
        let hidden = |p: &Path| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        };
        walk(root, &hidden, &mut |p, _| found.push(p.to_path_buf()));
        assert_eq!(found, [root.join("a/b/note.md")]);

        assert_eq!(
            read_regular(&root.join("a/b/note.md"), 5).unwrap().0,
            b"hello"
        );
        for (name, max) in [("fifo.md", 100), ("zero.md", 100)] {
            assert!(
                matches!(
                    read_regular(&root.join(name), max),
                    Err(ReadError::NotRegular)
                ),
                "{name}"
            );
        }
        assert!(matches!(
            read_regular(&root.join("a/b/note.md"), 4),
            Err(ReadError::TooLarge { size: 5, max: 4 })
        ));
    }
}
