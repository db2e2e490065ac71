//! `voxd models import`: converts a CTranslate2 (faster-whisper) Whisper
//! model directory (`model.bin`, `config.json`, `vocabulary.txt` or
//! `tokenizer.json`) into the single ggml file whisper.cpp loads.
//!
//! The conversion is lossless for fp16 models: fused attention projections
//! are split into whisper.cpp's query/key/value tensors, names are mapped,
//! 1-D tensors, conv biases and positional embeddings are written as f32 and
//! the rest as f16 (what whisper.cpp's own converter writes). The mel filter
//! bank is computed here (`mel`) and the GPT-2 byte-level vocabulary is
//! decoded back to bytes (`vocab`).
//!
//! It reads only the source directory and writes only the destination file,
//! through a temp file in the same directory that is renamed into place once
//! complete: an interrupted import leaves nothing behind.

mod ct2;
mod ggml;
mod mel;
mod vocab;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::progress::PullProgress;
use super::store::Store;

/// The manifest `format` of models that are imported after a pull.
pub const CT2_WHISPER_FORMAT: &str = "ct2-whisper";

/// Name of the converted file inside a model's store directory.
pub const GGML_FILE: &str = "ggml-model.bin";

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a CTranslate2 Whisper model directory: {name} is missing", dir.display())]
    MissingFile { dir: PathBuf, name: &'static str },
    #[error("{}: corrupt at byte offset {offset}: {message}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        message: String,
    },
    #[error("{}: variable `{name}` is missing (not a Whisper model, or an unsupported CTranslate2 spec)", path.display())]
    MissingVariable { path: PathBuf, name: String },
    #[error("{}: {message}", path.display())]
    Unsupported { path: PathBuf, message: String },
    #[error("{}:{line}: {message}", path.display())]
    Vocabulary {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// What an import produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The ggml file written.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Tensors written.
    pub tensors: usize,
    /// Vocabulary size (token embedding rows).
    pub n_vocab: u32,
    /// Whether the model is multilingual (not an `.en` model).
    pub multilingual: bool,
    /// Encoder and decoder layers.
    pub layers: u32,
    /// Model width.
    pub n_state: u32,
    /// Wall time.
    pub elapsed_ms: u64,
}

/// Where the imported ggml file of store model `id` lies.
pub fn ggml_path(store: &Store, id: &str) -> PathBuf {
    store.model_dir(id).join(GGML_FILE)
}

/// Whether `dir` looks like a CTranslate2 Whisper directory (has `model.bin`
/// and `config.json`).
pub fn is_ct2_dir(dir: &Path) -> bool {
    dir.join("model.bin").is_file() && dir.join("config.json").is_file()
}

/// Converts the CTranslate2 Whisper model in `src` into the ggml file `dest`
/// (atomically: a temp file beside `dest`, renamed when complete).
pub fn import_ct2(
    src: &Path,
    dest: &Path,
    progress: &mut dyn PullProgress,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    for name in ["model.bin", "config.json"] {
        if !src.join(name).is_file() {
            return Err(ImportError::MissingFile {
                dir: src.to_path_buf(),
                name,
            });
        }
    }
    let mut model = ct2::Ct2Model::open(&src.join("model.bin"))?;
    if model.spec != "WhisperSpec" {
        return Err(ImportError::Unsupported {
            path: model.path.clone(),
            message: format!(
                "spec `{}` (revision {}); only WhisperSpec models can be imported",
                model.spec, model.revision
            ),
        });
    }
    let tokens = vocab::load(src)?;
    let (tensors, bytes, hparams) = ggml::write(&mut model, &tokens, dest, progress)?;
    Ok(ImportReport {
        path: dest.to_path_buf(),
        bytes,
        tensors,
        n_vocab: hparams.n_vocab,
        multilingual: hparams.n_vocab >= 51865,
        layers: hparams.n_audio_layer,
        n_state: hparams.n_audio_state,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}
