//! `voxd config show [--json]`: the effective configuration, computed
//! locally from the same layers the daemon would read.

use std::io::Write;

use serde_json::json;

use crate::config::Loaded;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print every key with its effective value and where it came from.
    Show {
        /// Print JSON: {"config": {...}, "origins": {"key": "origin"}}.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Command, load: impl FnOnce() -> anyhow::Result<Loaded>) -> anyhow::Result<()> {
    let loaded = load()?;
    let mut stdout = std::io::stdout().lock();
    match cmd {
        Command::Show { json: true } => {
            let out = json!({ "config": loaded.config, "origins": loaded.origins });
            writeln!(stdout, "{}", serde_json::to_string_pretty(&out)?)?;
        }
        Command::Show { json: false } => {
            let entries = loaded.entries();
            let width = entries
                .iter()
                .map(|(k, v, _)| k.len() + v.to_string().len() + 3)
                .max()
                .unwrap_or(0);
            for (key, value, origin) in entries {
                let line = format!("{key} = {value}");
                writeln!(stdout, "{line:width$}  # {origin}")?;
            }
        }
    }
    Ok(())
}
