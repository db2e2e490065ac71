//! The systemd user unit: `systemd/voxd.service` with this user's
//! `ExecStart`, memory limits and writable paths filled in.

use std::path::PathBuf;

use super::{home, ServiceError, Unit};

/// The unit as shipped; [`render`] replaces the lines it owns.
const TEMPLATE: &str = include_str!("../../systemd/voxd.service");
const UNIT: &str = "voxd.service";

/// `$XDG_CONFIG_HOME/systemd/user/voxd.service` (~/.config/… by default).
pub(super) fn unit_path() -> Result<PathBuf, ServiceError> {
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => home("systemd user unit")?.join(".config"),
    };
    Ok(config.join("systemd/user").join(UNIT))
}

/// The template with `ExecStart=`, `MemoryHigh=`/`MemoryMax=` and
/// `ReadWritePaths=` set for `unit`.
pub(super) fn render(unit: &Unit) -> String {
    let exec = std::iter::once(unit.exe.display().to_string())
        .chain(unit.args.iter().cloned())
        .map(|word| quote(&word))
        .collect::<Vec<_>>()
        .join(" ");
    let (high, max) = match unit.memory_budget_mb {
        0 => ("infinity".to_string(), "infinity".to_string()),
        mb => (format!("{mb}M"), format!("{}M", mb + mb / 4)),
    };
    let mut out = String::with_capacity(TEMPLATE.len() + 256);
    for line in TEMPLATE.lines() {
        let line = if line.starts_with("ExecStart=") {
            format!("ExecStart={exec}")
        } else if line.starts_with("MemoryHigh=") {
            format!("MemoryHigh={high}")
        } else if line.starts_with("MemoryMax=") {
            format!("MemoryMax={max}")
        } else if line.starts_with("ReadWritePaths=") && !unit.writable.is_empty() {
            let extra: Vec<String> = unit
                .writable
                .iter()
                .map(|p| quote(&format!("-{}", p.display())))
                .collect();
            format!("{line} {}", extra.join(" "))
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// One word of a unit setting: specifiers and variables escaped, quoted
/// when it holds spaces or quotes.
fn quote(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    if escaped
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
    {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        escaped
    }
}

/// The executable an installed unit's `ExecStart=` names.
pub(super) fn exec_path(contents: &str) -> Option<PathBuf> {
    let exec = contents
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))?
        .trim();
    let word = match exec.strip_prefix('"') {
        Some(rest) => {
            let mut word = String::new();
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => word.extend(chars.next()),
                    c => word.push(c),
                }
            }
            word
        }
        None => exec.split_whitespace().next()?.to_string(),
    };
    Some(PathBuf::from(word.replace("%%", "%").replace("$$", "$")))
}

/// The paths the unit names in `ReadWritePaths=`, created before the first
/// start (a missing one would stay read-only).
pub(super) fn writable_dirs(unit: &Unit) -> Result<Vec<PathBuf>, ServiceError> {
    let home = home("systemd user unit")?;
    let mut dirs: Vec<PathBuf> = [".local/share/voxd", ".cache/voxd", ".local/state/voxd"]
        .iter()
        .map(|d| home.join(d))
        .collect();
    dirs.extend(unit.writable.iter().cloned());
    Ok(dirs)
}

pub(super) fn enable_commands() -> Vec<Vec<String>> {
    vec![
        reload_command(),
        strings(&["systemctl", "--user", "enable", "--now", UNIT]),
    ]
}

pub(super) fn disable_commands() -> Vec<Vec<String>> {
    vec![strings(&["systemctl", "--user", "disable", "--now", UNIT])]
}

pub(super) fn reload_command() -> Vec<String> {
    strings(&["systemctl", "--user", "daemon-reload"])
}

/// `enabled, active` and the like, from `systemctl --user`.
pub(super) fn describe() -> String {
    // is-enabled/is-active exit non-zero for "disabled"/"inactive" but
    // still print the state.
    let state = |what: &str| {
        std::process::Command::new("systemctl")
            .args(["--user", what, UNIT])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    };
    format!("{}, {}", state("is-enabled"), state("is-active"))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(exe: &str, budget: u64) -> Unit {
        Unit {
            exe: exe.into(),
            args: vec!["serve".into(), "--config".into(), "/home/a b/v.toml".into()],
            memory_budget_mb: budget,
            writable: vec![],
        }
    }

    #[test]
    fn fills_in_exec_start_and_memory_limits() {
        let text = render(&unit("/opt/voxd/bin/voxd", 800));
        assert!(
            text.contains("\nExecStart=/opt/voxd/bin/voxd serve --config \"/home/a b/v.toml\"\n")
        );
        assert!(
            text.contains("\nMemoryHigh=800M\nMemoryMax=1000M\n"),
            "{text}"
        );
        let text = render(&unit("/opt/voxd/bin/voxd", 0));
        assert!(text.contains("\nMemoryHigh=infinity\nMemoryMax=infinity\n"));
        // Everything else is the shipped unit, line for line.
        assert_eq!(text.lines().count(), TEMPLATE.lines().count());
    }

    #[test]
    fn exec_path_reads_back_odd_paths() {
        for exe in ["/usr/bin/voxd", "/home/a b/bin/voxd", "/x/50%/$HOME/voxd"] {
            let text = render(&unit(exe, 0));
            assert_eq!(exec_path(&text), Some(PathBuf::from(exe)), "{text}");
        }
    }

    #[test]
    fn extra_writable_paths_are_appended_optional() {
        let mut u = unit("/usr/bin/voxd", 0);
        u.writable = vec!["/data/models".into()];
        let text = render(&u);
        let line = text
            .lines()
            .find(|l| l.starts_with("ReadWritePaths="))
            .unwrap();
        assert!(line.ends_with(" -/data/models"), "{line}");
    }
}
