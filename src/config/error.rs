//! The one error type of configuration loading.

use super::Origin;

/// A configuration problem, located as precisely as its layer allows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    /// The layer the bad value came from.
    pub origin: Origin,
    /// 1-based line in a file layer, when known.
    pub line: Option<usize>,
    /// Dotted key, when the problem is about one key.
    pub key: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.origin, self.line) {
            (Origin::File(path), Some(line)) => write!(f, "{}:{line}: ", path.display())?,
            (origin, _) => write!(f, "{origin}: ")?,
        }
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}
