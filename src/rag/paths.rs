//! Where voxd keeps its data files: the notes index and (for the daemon)
//! the conversation history, under `$XDG_DATA_HOME/voxd` unless configured.

use std::path::{Path, PathBuf};

use crate::config::RagConfig;

/// `rag.index`, or `$XDG_DATA_HOME/voxd/index.sqlite`.
pub fn index_path(cfg: &RagConfig) -> PathBuf {
    data_file(&cfg.index, "index.sqlite")
}

/// `configured`, or `$XDG_DATA_HOME/voxd/<name>` when it is empty.
pub fn data_file(configured: &Path, name: &str) -> PathBuf {
    if !configured.as_os_str().is_empty() {
        return configured.to_path_buf();
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("voxd").join(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_configured_path_is_used_as_it_is() {
        let configured = Path::new("/srv/voxd/history.sqlite");
        assert_eq!(data_file(configured, "history.sqlite"), configured);
        let mut cfg = Config::builtin().rag;
        cfg.index = PathBuf::from("/srv/voxd/notes.sqlite");
        assert_eq!(index_path(&cfg), Path::new("/srv/voxd/notes.sqlite"));
    }

    #[test]
    fn an_empty_path_is_a_file_in_the_voxd_data_folder() {
        // Whatever the environment's data folder is (not changed here:
        // tests run in parallel).
        let path = data_file(Path::new(""), "history.sqlite");
        assert!(path.ends_with("voxd/history.sqlite"), "{}", path.display());
        let mut cfg = Config::builtin().rag;
        cfg.index = PathBuf::new();
        assert!(index_path(&cfg).ends_with("voxd/index.sqlite"));
    }
}
