//! An image file as a reader sees it (the web page's thumbnails): served
//! only from inside the watched folders ([`crate::folders::serve`]: no
//! `..`, no link out of them), only image files the watcher would caption
//! ([`is_candidate`], nothing hidden), within the captioner's read limit.

use std::path::{Path, PathBuf};

use super::{is_candidate, Vision};
use crate::folders::{serve, Unserved};

/// An image file's bytes, and its media type by extension.
#[derive(Debug)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
}

impl Vision {
    /// The image at `path`, if it lies inside a watched folder.
    pub fn image(&self, path: &Path) -> Result<Image, Unserved> {
        // Canonical now: a folder may be made (or moved) after start.
        let roots: Vec<PathBuf> = self
            .settings()
            .folders
            .iter()
            .filter_map(|f| std::path::absolute(f).ok()?.canonicalize().ok())
            .collect();
        let visible = |relative: &Path| {
            is_candidate(relative)
                && !relative
                    .components()
                    .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
        };
        let served = serve(
            &roots,
            path,
            self.settings().limits.max_alloc,
            "an image in the watched folders (a .jpg, .png, .webp, .gif or .bmp that is not hidden)",
            visible,
        )?;
        Ok(Image {
            media_type: media_type(&served.path),
            bytes: served.bytes,
        })
    }
}

fn media_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        _ => "application/octet-stream",
    }
}
