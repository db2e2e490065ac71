//! The launchd user agent: `launchd/io.github.voxd.plist` with this user's
//! program path and absolute log paths.

use std::path::{Path, PathBuf};

use plist::{Dictionary, Value};

use super::{home, ServiceError, Unit};

/// The agent as shipped; [`render`] sets the keys it owns.
const TEMPLATE: &str = include_str!("../../launchd/io.github.voxd.plist");
pub(super) const LABEL: &str = "io.github.voxd";

/// `~/Library/LaunchAgents/io.github.voxd.plist`.
pub(super) fn plist_path() -> Result<PathBuf, ServiceError> {
    Ok(home("launchd agent")?
        .join("Library/LaunchAgents")
        .join(format!("{LABEL}.plist")))
}

/// `~/Library/Logs/voxd`, where the agent's stdout and stderr go.
pub(super) fn log_dir() -> Result<PathBuf, ServiceError> {
    Ok(home("launchd agent")?.join("Library/Logs/voxd"))
}

/// The template with `ProgramArguments` and the log paths set for `unit`.
/// launchd has no memory limit that matches a budget; voxd enforces its
/// budget itself.
pub(super) fn render(unit: &Unit) -> Result<String, ServiceError> {
    let template = |e: plist::Error| ServiceError::Template(e.to_string());
    let mut agent: Dictionary = plist::from_bytes(TEMPLATE.as_bytes()).map_err(template)?;
    let args = std::iter::once(unit.exe.display().to_string())
        .chain(unit.args.iter().cloned())
        .map(Value::String)
        .collect();
    agent.insert("ProgramArguments".into(), Value::Array(args));
    let log = log_dir()?.join("voxd.log").display().to_string();
    agent.insert("StandardOutPath".into(), Value::String(log.clone()));
    agent.insert("StandardErrorPath".into(), Value::String(log));
    let mut out = Vec::new();
    plist::to_writer_xml(&mut out, &agent).map_err(template)?;
    out.push(b'\n');
    String::from_utf8(out).map_err(|e| ServiceError::Template(e.to_string()))
}

/// The executable an installed agent's `ProgramArguments` names.
pub(super) fn exec_path(contents: &str) -> Option<PathBuf> {
    let agent: Dictionary = plist::from_bytes(contents.as_bytes()).ok()?;
    let first = agent.get("ProgramArguments")?.as_array()?.first()?;
    first.as_string().map(PathBuf::from)
}

fn domain() -> String {
    format!("gui/{}", rustix::process::getuid().as_raw())
}

pub(super) fn enable_commands(plist: &Path) -> Vec<Vec<String>> {
    vec![vec![
        "launchctl".into(),
        "bootstrap".into(),
        domain(),
        plist.display().to_string(),
    ]]
}

pub(super) fn disable_commands() -> Vec<Vec<String>> {
    vec![vec![
        "launchctl".into(),
        "bootout".into(),
        format!("{}/{LABEL}", domain()),
    ]]
}

/// Whether launchd has the agent loaded.
pub(super) fn describe() -> String {
    let loaded = std::process::Command::new("launchctl")
        .args(["print", &format!("{}/{LABEL}", domain())])
        .output()
        .is_ok_and(|o| o.status.success());
    if loaded { "loaded" } else { "not loaded" }.to_string()
}
