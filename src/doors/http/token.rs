//! The HTTP API's bearer token: where it lives (`http.token_file`, by
//! default `$XDG_CONFIG_HOME/voxd/http.token`), how `voxd http token`
//! makes one, and how a request's `Authorization` header is checked
//! (in constant time, so that timing does not reveal the token).

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

use crate::config::HttpConfig;
use crate::models::xdg_dir;

/// Random bytes in a new token (hex-encoded: 64 characters).
const TOKEN_BYTES: usize = 32;

/// Why the token cannot be read or made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no token file: set http.token_file (XDG_CONFIG_HOME and HOME are unset)")]
    NoPath,
    #[error("cannot read the HTTP token {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("the HTTP token {path} is empty; run `voxd http token --new`")]
    Empty { path: PathBuf },
    #[error("cannot write the HTTP token {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot make a random token: {0}")]
    Random(String),
}

/// The token file `cfg` names, or the default one.
pub fn path(cfg: &HttpConfig) -> Result<PathBuf, TokenError> {
    if !cfg.token_file.as_os_str().is_empty() {
        return Ok(cfg.token_file.clone());
    }
    xdg_dir("XDG_CONFIG_HOME", ".config")
        .map(|dir| dir.join("voxd/http.token"))
        .ok_or(TokenError::NoPath)
}

/// The token, or `None` when its file does not exist (no authentication).
pub fn load(path: &Path) -> Result<Option<Token>, TokenError> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Err(TokenError::Empty {
            path: path.to_path_buf(),
        }),
        Ok(text) => Ok(Some(Token(text.trim().to_string()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TokenError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a new random token to `path` (0600, its directory 0700),
/// replacing any old one, and returns it.
pub fn create(path: &Path) -> Result<String, TokenError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = hex::encode(bytes);
    let write = |path: &Path| -> io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private::create_dir(dir)?;
        }
        // Written beside it, then renamed: a reader never sees half a token.
        let tmp = path.with_extension("token.new");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        writeln!(file, "{token}")?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write(path).map_err(|source| TokenError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(token)
}

/// A loaded bearer token.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// Whether an `Authorization` header value carries this token.
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(given) = authorization.and_then(|h| h.strip_prefix(b"Bearer ")) else {
            return false;
        };
        given.trim_ascii().ct_eq(self.0.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_token_is_private_and_admits_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("voxd/http.token");
        assert!(load(&path).unwrap().is_none());
        let made = create(&path).unwrap();
        assert_eq!(made.len(), 2 * TOKEN_BYTES);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let token = load(&path).unwrap().unwrap();
        assert!(token.admits(Some(format!("Bearer {made}").as_bytes())));
        assert!(!token.admits(Some(format!("Bearer {made}x").as_bytes())));
        assert!(!token.admits(Some(made.as_bytes())));
        assert!(!token.admits(None));
        assert_ne!(create(&path).unwrap(), made, "a new token replaces the old");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(load(&path), Err(TokenError::Empty { .. })));
    }
}
