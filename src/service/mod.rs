//! Living under a service manager: `voxd service install|uninstall|status`
//! for a systemd user unit (`systemd`, from `systemd/voxd.service`) or a
//! launchd agent (`launchd`, from `launchd/io.github.voxd.plist`), and the
//! daemon's side of systemd's notify protocol ([`notify`]).
//!
//! It owns the unit/plist file in the user's service directory and runs
//! `systemctl --user` / `launchctl` to enable it; nothing else.

mod launchd;
pub mod notify;
mod systemd;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Which service manager a unit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Manager {
    /// A systemd user unit (Linux).
    Systemd,
    /// A launchd user agent (macOS).
    Launchd,
}

impl Manager {
    /// The manager of this operating system.
    pub fn native() -> Manager {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else {
            Manager::Systemd
        }
    }
}

/// What the installed service runs.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The voxd executable.
    pub exe: PathBuf,
    /// Arguments after the executable: `serve …`.
    pub args: Vec<String>,
    /// The profile's memory budget in MiB; 0 means none.
    pub memory_budget_mb: u64,
    /// Paths besides voxd's own data, cache and state directories that
    /// the service must be able to write (a custom model store).
    pub writable: Vec<PathBuf>,
}

/// Why a service command failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot tell where your {0} goes: set HOME")]
    NoHome(&'static str),
    #[error("the service template is not valid: {0}")]
    Template(String),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {detail}")]
    Manager { command: String, detail: String },
}

/// Where the unit file of `manager` lives for this user.
pub fn unit_path(manager: Manager) -> Result<PathBuf, ServiceError> {
    match manager {
        Manager::Systemd => systemd::unit_path(),
        Manager::Launchd => launchd::plist_path(),
    }
}

/// The unit file's contents for `unit`.
pub fn render(manager: Manager, unit: &Unit) -> Result<String, ServiceError> {
    match manager {
        Manager::Systemd => Ok(systemd::render(unit)),
        Manager::Launchd => launchd::render(unit),
    }
}

/// What `install` did, for the user.
#[derive(Debug)]
pub struct Installed {
    pub path: PathBuf,
    /// Whether the service manager enabled and started it.
    pub enabled: bool,
    /// Commands the user should run (when it was not enabled here).
    pub next_steps: Vec<String>,
}

/// Writes the unit for `unit` (replacing an older one) and, when `enable`
/// and the manager is reachable, enables and starts it.
pub fn install(manager: Manager, unit: &Unit, enable: bool) -> Result<Installed, ServiceError> {
    let path = unit_path(manager)?;
    let contents = render(manager, unit)?;
    for dir in manager_dirs(manager, unit)?
        .iter()
        .chain(path.parent().map(Path::to_path_buf).as_ref())
    {
        std::fs::create_dir_all(dir).map_err(|source| ServiceError::Write {
            path: dir.clone(),
            source,
        })?;
    }
    write_atomically(&path, contents.as_bytes())?;
    let commands = match manager {
        Manager::Systemd => systemd::enable_commands(),
        Manager::Launchd => launchd::enable_commands(&path),
    };
    let reachable = enable && manager_reachable(manager);
    if reachable {
        for args in &commands {
            run(args)?;
        }
    }
    Ok(Installed {
        path,
        enabled: reachable,
        next_steps: if reachable {
            vec![]
        } else {
            commands.iter().map(|c| c.join(" ")).collect()
        },
    })
}

/// Stops and disables the service when the manager is reachable, then
/// removes the unit file. Returns the removed path, or `None` when there
/// was none.
pub fn uninstall(manager: Manager) -> Result<Option<PathBuf>, ServiceError> {
    let path = unit_path(manager)?;
    if !path.exists() {
        return Ok(None);
    }
    if manager_reachable(manager) {
        let commands = match manager {
            Manager::Systemd => systemd::disable_commands(),
            Manager::Launchd => launchd::disable_commands(),
        };
        for args in &commands {
            // Not loaded or already stopped is fine: the file goes anyway.
            if let Err(e) = run(args) {
                tracing::warn!(error = %e, "continuing with the removal");
            }
        }
    }
    std::fs::remove_file(&path).map_err(|source| ServiceError::Remove {
        path: path.clone(),
        source,
    })?;
    if manager == Manager::Systemd && manager_reachable(manager) {
        let _ = run(&systemd::reload_command());
    }
    Ok(Some(path))
}

/// The service as its manager sees it.
#[derive(Debug)]
pub struct ServiceStatus {
    pub path: PathBuf,
    pub installed: bool,
    /// The executable the installed unit runs, when it names one.
    pub exe: Option<PathBuf>,
    /// The manager's own words (`enabled`, `active (running)`, …), or why
    /// it could not be asked.
    pub manager: String,
}

pub fn status(manager: Manager) -> Result<ServiceStatus, ServiceError> {
    let path = unit_path(manager)?;
    let contents = std::fs::read_to_string(&path).ok();
    let exe = contents.as_deref().and_then(|c| match manager {
        Manager::Systemd => systemd::exec_path(c),
        Manager::Launchd => launchd::exec_path(c),
    });
    let manager_says = if !manager_reachable(manager) {
        match manager {
            Manager::Systemd => "no systemd user instance is reachable".to_string(),
            Manager::Launchd => "launchctl is not available".to_string(),
        }
    } else {
        match manager {
            Manager::Systemd => systemd::describe(),
            Manager::Launchd => launchd::describe(),
        }
    };
    Ok(ServiceStatus {
        installed: contents.is_some(),
        path,
        exe,
        manager: manager_says,
    })
}

/// Directories the service needs before it first starts (the unit names
/// them writable).
fn manager_dirs(manager: Manager, unit: &Unit) -> Result<Vec<PathBuf>, ServiceError> {
    match manager {
        Manager::Systemd => systemd::writable_dirs(unit),
        Manager::Launchd => launchd::log_dir().map(|d| vec![d]),
    }
}

/// Whether the manager answers: a systemd user instance, or launchctl.
fn manager_reachable(manager: Manager) -> bool {
    let args: &[&str] = match manager {
        Manager::Systemd => &["systemctl", "--user", "show-environment"],
        Manager::Launchd => &["launchctl", "version"],
    };
    Command::new(args[0])
        .args(&args[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a manager command; its stderr is the error.
fn run(args: &[String]) -> Result<String, ServiceError> {
    let failed = |detail: String| ServiceError::Manager {
        command: args.join(" "),
        detail,
    };
    let out = Command::new(&args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), ServiceError> {
    let err = |source| ServiceError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    std::io::Write::write_all(&mut tmp, contents).map_err(err)?;
    // Readable by the service manager; the unit holds no secrets.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// `$HOME`, needed for every per-user service path.
fn home(what: &'static str) -> Result<PathBuf, ServiceError> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or(ServiceError::NoHome(what))
}
