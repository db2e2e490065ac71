//! The Hugging Face hub source, through the `hf-hub` crate. Files land in the
//! shared hub cache (`$HF_HOME/hub`, resumable, reused by other tools); the
//! store then copies them in, verifying against the pin or, for unpinned
//! files, against the sha256 the hub publishes for LFS files (the blob name).

use std::cell::RefCell;
use std::path::PathBuf;

use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use super::error::FetchError;
use super::manifest::HubSource;
use super::progress::PullProgress;

/// A hub client; building one touches no network. Once the hub is found
/// unreachable, later fetches fail at once with the same reason.
pub(crate) struct Hub {
    api: Result<Api, String>,
    cache: Cache,
    endpoint: String,
    unreachable: RefCell<Option<String>>,
}

/// A file in the local hub cache.
pub(crate) struct HubFile {
    /// The file (a symlink into the cache's blobs).
    pub path: PathBuf,
    /// The LFS sha256 the hub named the blob by, when it is one.
    pub lfs_sha256: Option<String>,
}

impl Hub {
    /// A client honouring `HF_HOME` and `HF_ENDPOINT`, retrying interrupted
    /// downloads `retries` times (resuming them).
    pub fn from_env(retries: usize) -> Hub {
        let endpoint =
            std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".to_string());
        let api = ApiBuilder::from_env()
            .with_progress(false)
            .with_retries(retries)
            .build()
            .map_err(|e| e.to_string());
        Hub {
            api,
            cache: Cache::from_env(),
            endpoint,
            unreachable: RefCell::new(None),
        }
    }

    /// The file at `repo_path` in `source`, from the cache or downloaded.
    pub fn fetch(
        &self,
        source: &HubSource,
        repo_path: &str,
        progress: &mut dyn PullProgress,
    ) -> Result<HubFile, FetchError> {
        let file = format!("{}/{}", source.repo, repo_path);
        let hub_err = |message: String| FetchError::Hub {
            endpoint: self.endpoint.clone(),
            file: file.clone(),
            message,
        };
        let repo = Repo::with_revision(
            source.repo.clone(),
            RepoType::Model,
            source.revision.clone(),
        );
        let path = match self.cache.repo(repo.clone()).get(repo_path) {
            Some(path) => path,
            None => {
                if let Some(reason) = self.unreachable.borrow().clone() {
                    return Err(FetchError::HubUnreachable { reason });
                }
                let api = self.api.as_ref().map_err(|e| hub_err(e.clone()))?;
                let adapter = Adapter {
                    inner: progress,
                    label: format!("hf {}: {repo_path}", source.repo),
                };
                api.repo(repo)
                    .download_with_progress(repo_path, adapter)
                    .map_err(|e| self.classify(e, &file))?
            }
        };
        let lfs_sha256 = std::fs::read_link(&path)
            .ok()
            .and_then(|target| target.file_name().map(|n| n.to_string_lossy().into_owned()))
            .filter(|name| name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|name| name.to_ascii_lowercase());
        Ok(HubFile { path, lfs_sha256 })
    }
}

impl Hub {
    /// Tells "offline" and "refused" apart from failures worth a retry.
    fn classify(&self, error: ApiError, file: &str) -> FetchError {
        let request = match &error {
            ApiError::RequestError(e) => Some(&**e),
            ApiError::TooManyRetries(inner) => match &**inner {
                ApiError::RequestError(e) => Some(&**e),
                _ => None,
            },
            _ => None,
        };
        let host = self
            .endpoint
            .split("://")
            .nth(1)
            .unwrap_or(&self.endpoint)
            .trim_end_matches('/')
            .to_string();
        match request {
            Some(ureq::Error::Status(status, _)) if !(*status == 429 || *status >= 500) => {
                let hint = match status {
                    401 | 403 => {
                        " (gated or private: accept its license on the hub and set HF_TOKEN)"
                    }
                    404 => " (not found: the manifest names a repo or file the hub does not have)",
                    _ => "",
                };
                FetchError::HubRejected {
                    endpoint: self.endpoint.clone(),
                    file: file.to_string(),
                    status: *status,
                    hint,
                }
            }
            Some(ureq::Error::Transport(t))
                if matches!(
                    t.kind(),
                    ureq::ErrorKind::Dns | ureq::ErrorKind::ConnectionFailed
                ) =>
            {
                let reason = match t.kind() {
                    ureq::ErrorKind::Dns => format!("cannot resolve {host}"),
                    _ => format!("cannot connect to {host}"),
                };
                *self.unreachable.borrow_mut() = Some(reason.clone());
                FetchError::HubUnreachable { reason }
            }
            _ => FetchError::Hub {
                endpoint: self.endpoint.clone(),
                file: file.to_string(),
                message: error.to_string(),
            },
        }
    }
}

/// hf-hub's progress callbacks, forwarded to ours.
struct Adapter<'a> {
    inner: &'a mut dyn PullProgress,
    label: String,
}

impl hf_hub::api::Progress for Adapter<'_> {
    fn init(&mut self, size: usize, _filename: &str) {
        self.inner.start(&self.label, Some(size as u64));
    }

    fn update(&mut self, size: usize) {
        self.inner.advance(size as u64);
    }

    fn finish(&mut self) {
        self.inner.finish();
    }
}
