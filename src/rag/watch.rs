//! Watching the notes folders with `notify`, debounced (editors write a
//! file in several steps: a temp file, a rename, a truncate then a write).
//! Changes become [`Job`]s for the indexer; editors' temp and lock files
//! are dropped here. Owns the watcher thread; touches nothing else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};
use tokio::sync::mpsc;

use super::Job;

/// A running watcher; dropping it stops watching.
pub type Watcher = Debouncer<notify::RecommendedWatcher, RecommendedCache>;

/// Whether a file name is an editor's temp, swap, backup or lock file
/// (vim `.swp`/`4913`/`~`, emacs `.#x`/`#x#`, partial downloads) or hidden.
pub fn is_temp(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return true;
    };
    name.starts_with('.')
        || name.ends_with('~')
        || (name.starts_with('#') && name.ends_with('#'))
        || name == "4913"
        || [
            ".swp",
            ".swo",
            ".swx",
            ".tmp",
            ".part",
            ".crdownload",
            ".bak",
        ]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Watches `roots` recursively; every debounced batch goes to `jobs`.
pub fn watch(
    roots: &[PathBuf],
    debounce: Duration,
    jobs: mpsc::UnboundedSender<Job>,
) -> Result<Watcher, notify::Error> {
    let mut debouncer = new_debouncer(debounce, None, move |result: DebounceEventResult| {
        let events = match result {
            Ok(events) => events,
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "notes watcher error; rescanning");
                }
                let _ = jobs.send(Job::Rescan(None));
                return;
            }
        };
        let mut changed = Vec::new();
        for event in events {
            if event.need_rescan() {
                let _ = jobs.send(Job::Rescan(None));
                continue;
            }
            match event.kind {
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if event.paths.len() == 2 => {
                    let (from, to) = (event.paths[0].clone(), event.paths[1].clone());
                    if is_temp(&from) || is_temp(&to) {
                        // An editor's save-by-rename: index the result.
                        changed.push(from);
                        changed.push(to);
                    } else {
                        let _ = jobs.send(Job::Renamed(from, to));
                    }
                }
                EventKind::Create(_)
                | EventKind::Modify(_)
                | EventKind::Remove(_)
                | EventKind::Any => {
                    changed.extend(event.paths.iter().cloned());
                }
                EventKind::Access(_) | EventKind::Other => {}
            }
        }
        changed.retain(|p| !is_temp(p));
        changed.sort();
        changed.dedup();
        if !changed.is_empty() {
            let _ = jobs.send(Job::Changed(changed));
        }
    })?;
    for root in roots {
        if let Err(e) = debouncer.watch(root, RecursiveMode::Recursive) {
            tracing::warn!(folder = %root.display(), error = %e, "cannot watch this notes folder");
        }
    }
    Ok(debouncer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_temp_files_are_recognised() {
        for temp in [
            "/n/.home.md.swp",
            "/n/home.md~",
            "/n/.#home.md",
            "/n/#home.md#",
            "/n/4913",
            "/n/home.md.tmp",
            "/n/.hidden.md",
        ] {
            assert!(is_temp(Path::new(temp)), "{temp}");
        }
        for note in ["/n/home.md", "/n/todo.txt", "/n/4913.md"] {
            assert!(!is_temp(Path::new(note)), "{note}");
        }
    }
}
