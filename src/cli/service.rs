//! `voxd service install|uninstall|status`: run voxd under the user's
//! service manager (systemd on Linux, launchd on macOS).

use std::path::PathBuf;

use anyhow::Context as _;

use super::client::Client;
use crate::config::{Loaded, Origin};
use crate::service::{self, Manager, Unit};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// Service manager (default: systemd on Linux, launchd on macOS).
    #[arg(long, value_enum, global = true)]
    manager: Option<Manager>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Write the unit (or plist) for this user and enable and start it.
    Install {
        /// Only write the file; print the commands that enable it.
        #[arg(long)]
        no_enable: bool,
    },
    /// Stop and disable the service and remove its file.
    Uninstall,
    /// Show whether the service is installed, enabled and answering.
    Status,
}

pub fn run(args: Args, config: &Loaded, config_file: Option<PathBuf>) -> anyhow::Result<()> {
    let manager = args.manager.unwrap_or_else(Manager::native);
    match args.action {
        Action::Install { no_enable } => install(manager, config, config_file, !no_enable),
        Action::Uninstall => {
            match service::uninstall(manager)? {
                Some(path) => println!("removed {}", path.display()),
                None => println!(
                    "not installed ({} does not exist)",
                    service::unit_path(manager)?.display()
                ),
            }
            Ok(())
        }
        Action::Status => {
            let s = service::status(manager)?;
            if s.installed {
                println!("installed: {}", s.path.display());
            } else {
                println!("not installed ({} does not exist)", s.path.display());
            }
            if let Some(exe) = &s.exe {
                let note = if exe.exists() { "" } else { " (missing!)" };
                println!("runs: {}{note}", exe.display());
            }
            println!("{manager:?}: {}", s.manager);
            match Client::connect(config).and_then(|mut c| c.call("ping", serde_json::json!({}))) {
                Ok(_) => println!("daemon: answering"),
                Err(e) => println!("daemon: not answering ({e:#})"),
            }
            Ok(())
        }
    }
}

fn install(
    manager: Manager,
    config: &Loaded,
    config_file: Option<PathBuf>,
    enable: bool,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot tell where this voxd executable is")?;
    let mut args = vec!["serve".to_string(), "--log-format".into(), "json".into()];
    if let Some(file) = config_file {
        let file = file
            .canonicalize()
            .with_context(|| format!("config file {}", file.display()))?;
        args.extend(["--config".into(), file.display().to_string()]);
    }
    // A profile chosen by VOXD_PROFILE now would be lost under the service
    // manager's environment: pass it on.
    if matches!(config.origins.get("profile"), Some(Origin::Env(_))) {
        args.extend(["--profile".into(), config.config.profile.to_string()]);
    }
    let models_dir = &config.config.models.dir;
    let unit = Unit {
        exe,
        args,
        memory_budget_mb: config.config.engines.memory_budget_mb,
        writable: if models_dir.as_os_str().is_empty() {
            vec![]
        } else {
            vec![models_dir.clone()]
        },
    };
    let installed = service::install(manager, &unit, enable)?;
    println!(
        "wrote {} (profile {}, memory budget {})",
        installed.path.display(),
        config.config.profile,
        match unit.memory_budget_mb {
            0 => "none".to_string(),
            mb => format!("{mb} MiB"),
        }
    );
    if installed.enabled {
        println!("enabled and started");
    } else {
        if enable {
            println!(
                "the service manager is not reachable from here; to enable and start voxd run:"
            );
        } else {
            println!("to enable and start voxd run:");
        }
        for step in installed.next_steps {
            println!("  {step}");
        }
    }
    Ok(())
}
