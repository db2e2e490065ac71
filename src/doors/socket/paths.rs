//! Where the control socket lives, and making that place private: the
//! directory is 0700 and owned by the user, the socket 0600.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::DaemonConfig;

/// The socket path: `daemon.socket` if set, else
/// `$XDG_RUNTIME_DIR/voxd/voxd.sock`, else `/tmp/voxd-<uid>/voxd.sock`.
pub fn socket_path(cfg: &DaemonConfig) -> PathBuf {
    if !cfg.socket.as_os_str().is_empty() {
        return cfg.socket.clone();
    }
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(runtime) => PathBuf::from(runtime).join("voxd"),
        None => std::env::temp_dir().join(format!("voxd-{}", rustix::process::getuid().as_raw())),
    };
    dir.join("voxd.sock")
}

/// The single-instance lock file that sits beside the socket.
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    socket.with_file_name(name)
}

/// Creates the socket's directory as 0700, or checks an existing one: it
/// must be a real directory owned by this user, and is tightened to 0700.
pub fn prepare_private_dir(dir: &Path) -> io::Result<()> {
    match fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let uid = rustix::process::getuid().as_raw();
    if meta.uid() != uid {
        return Err(io::Error::other(format!(
            "{} belongs to uid {}, not to you (uid {uid}); refusing to put the control socket there",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
