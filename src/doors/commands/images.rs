//! `images`: the captioned images the watcher recorded and the folders it
//! watches (`list`), and forgetting one (`forget`).

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::api::ApiError;

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum Images {
    /// Captioned files, newest first; `since` (unix seconds) keeps those
    /// added at or after it.
    List {
        #[serde(default)]
        since: Option<i64>,
    },
    /// Drops the record of `path` and its indexed caption.
    Forget { path: PathBuf },
}

impl Images {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        let vision = Arc::clone(&ctx.assistant.vision);
        tokio::task::spawn_blocking(move || match self {
            Images::List { since } => {
                let images = vision.list(since).map_err(ApiError::internal)?;
                Ok(json!({ "images": images, "folders": vision.settings().folders }))
            }
            Images::Forget { path } => {
                let forgotten = vision.forget(&path).map_err(ApiError::internal)?;
                Ok(json!({ "path": path, "forgotten": forgotten }))
            }
        })
        .await
        .map_err(ApiError::internal)?
    }
}
