//! What the image captioner publishes on the observers' bus.

use std::path::PathBuf;

use serde::Serialize;

use crate::events::Observed;

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ImageEvent {
    /// `image.captioned`: an image has a caption (`cached`: one its bytes
    /// already had).
    Captioned {
        path: PathBuf,
        size: u64,
        hash: String,
        caption: String,
        width: u32,
        height: u32,
        format: String,
        model: String,
        prompt: String,
        cached: bool,
    },
    /// `image.removed`: an image and its caption left the store.
    Removed { path: PathBuf },
    /// `image.error`: an image could not be captioned.
    Error { path: PathBuf, reason: String },
}

impl Observed for ImageEvent {
    fn name(&self) -> &'static str {
        match self {
            ImageEvent::Captioned { .. } => "image.captioned",
            ImageEvent::Removed { .. } => "image.removed",
            ImageEvent::Error { .. } => "image.error",
        }
    }
}
