//! Image captions: images dropped into watched folders are decoded, captioned
//! by BLIP and remembered, so that `voxd ask` can answer from them.
//!
//! - [`decode`]: bytes → RGB pixels with the `image` crate (JPEG, PNG, WebP,
//!   GIF first frame, BMP), EXIF orientation applied, decompression bombs
//!   refused by limits.
//! - [`preprocess`]: pixels → the tensor BLIP's processor makes (384×384
//!   bicubic, rescale, CLIP mean/std).
//! - [`blip`]: the [`Captioner`] on candle-transformers' BLIP, loaded from a
//!   Hugging Face directory (config.json, model.safetensors, tokenizer.json).
//! - [`store`]: captions, paths, hashes, sizes, dimensions and times in SQLite.
//! - [`watch`]: the folder watcher: settle, hash, caption once per content,
//!   start-up scan, bounded queue; results go to the store, the event bus and
//!   a [`CaptionSink`] (the RAG index).
//! - `view`: an image file served to a reader (the web page's thumbnails),
//!   only from inside the watched folders.
//!
//! The captioner runs inside the daemon, one image at a time on tokio's
//! blocking pool: candle is pure Rust (no second ggml, see
//! `docs/architecture.md`), and its memory is the model itself, which a
//! worker process would hold just the same. The model is loaded on first
//! use and dropped after `vision.idle_unload_secs` without work, which
//! returns its memory.
//!
//! This module may touch the model store (to find the model), the event bus,
//! the files under the watched folders (read only; sidecars when asked) and
//! its own SQLite database. It knows nothing of the RAG index beyond
//! [`CaptionSink`].

pub mod blip;
pub mod decode;
mod events;
pub mod preprocess;
pub mod service;
pub mod store;
mod view;
pub mod watch;

use std::path::{Path, PathBuf};

pub use decode::{DecodeError, DecodeLimits, Decoded};
pub use events::ImageEvent;
pub use service::{CaptionOutcome, Vision};
pub use view::Image;

/// Something that turns an image into a caption.
pub trait Captioner: Send {
    /// Captions one decoded image. With a `prompt` (e.g. "a photo of") the
    /// caption continues it, as BLIP's conditional captioning does.
    fn caption(
        &mut self,
        image: &image::RgbImage,
        prompt: Option<&str>,
    ) -> Result<String, CaptionError>;

    /// What produced the captions (a model id or directory), for the store.
    fn model_name(&self) -> &str;
}

/// Why an image could not be captioned.
#[derive(Debug, thiserror::Error)]
pub enum CaptionError {
    #[error("cannot load the captioning model from {dir}: {reason}")]
    Load { dir: PathBuf, reason: String },
    #[error("captioning failed: {0}")]
    Model(#[from] candle_core::Error),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

/// A caption as a document of the notes index: its citation is the image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptionDoc {
    /// Stable id of the document: `image:` + the image's absolute path.
    pub doc_id: String,
    /// The image file the caption describes (what a citation points to).
    pub path: PathBuf,
    /// The searchable text.
    pub text: String,
}

impl CaptionDoc {
    /// What every caption document id starts with; no note path can (note
    /// paths are absolute).
    pub const ID_PREFIX: &'static str = "image:";

    /// The document id for the image at `path`.
    pub fn id_for(path: &Path) -> String {
        format!("{}{}", Self::ID_PREFIX, path.display())
    }

    /// The image path of a document id, or `None` for a note's id.
    pub fn path_of(doc_id: &str) -> Option<&Path> {
        doc_id.strip_prefix(Self::ID_PREFIX).map(Path::new)
    }
}

/// Where captions go to become searchable: the RAG index implements this, and
/// the daemon connects the two. Called from a blocking thread.
pub trait CaptionSink: Send + Sync {
    /// Adds or replaces the document `doc.doc_id`.
    fn upsert(&self, doc: &CaptionDoc) -> Result<(), SinkError>;
    /// Removes the document `doc_id`; removing an unknown id is not an error.
    fn remove(&self, doc_id: &str) -> Result<(), SinkError>;
}

/// A [`CaptionSink`] failure, logged; the caption stays in the image store.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// File extensions the watcher treats as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "gif", "bmp"];

/// Whether the watcher should look at `path`: an image extension, and not a
/// hidden file (editors and downloaders write those while they work).
pub fn is_candidate(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if name.starts_with('.') {
        return false;
    }
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_visible_image_files() {
        assert!(is_candidate(Path::new("/a/b.JPG")));
        assert!(is_candidate(Path::new("/a/b.webp")));
        assert!(!is_candidate(Path::new("/a/.b.png")));
        assert!(!is_candidate(Path::new("/a/b.png.txt")));
        assert!(!is_candidate(Path::new("/a/b")));
    }
}
