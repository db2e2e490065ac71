//! `caption`: captions image files now and returns the captions, without
//! recording them (the watcher records what lands in the image folders).

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::api::{ApiError, ErrorCode};

/// Most files one request may name.
const MAX_FILES: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caption {
    /// Absolute paths of the images.
    pub paths: Vec<PathBuf>,
    /// A conditional prompt ("a photo of"); default `vision.prompt`.
    #[serde(default)]
    pub prompt: Option<String>,
}

impl Caption {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        if self.paths.is_empty() || self.paths.len() > MAX_FILES {
            return Err(ApiError::new(
                ErrorCode::InvalidParams,
                format!("caption: give 1 to {MAX_FILES} paths"),
            ));
        }
        if let Some(p) = self.paths.iter().find(|p| !p.is_absolute()) {
            return Err(ApiError::new(
                ErrorCode::InvalidParams,
                format!("caption: {} is not an absolute path", p.display()),
            ));
        }
        let vision = Arc::clone(&ctx.assistant.vision);
        let results = tokio::task::spawn_blocking(move || {
            self.paths
                .iter()
                .map(
                    |path| match vision.caption_file(path, self.prompt.as_deref()) {
                        Ok((size, c)) => json!({
                            "path": path,
                            "ok": true,
                            "caption": c.caption,
                            "hash": c.hash,
                            "size": size,
                            "width": c.width,
                            "height": c.height,
                            "format": c.format,
                            "model": c.model,
                            "prompt": c.prompt,
                        }),
                        Err(reason) => json!({ "path": path, "ok": false, "reason": reason }),
                    },
                )
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        Ok(json!({ "captions": results }))
    }
}
