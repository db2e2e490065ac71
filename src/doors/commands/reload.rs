//! `reload`: load the language model afresh without restarting the daemon:
//! the configured model looked up again (e.g. after `voxd models pull`), or
//! the GGUF file `model` names. Requests queued meanwhile run on the new one.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::api::{ApiError, ErrorCode};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reload {
    /// An absolute path to a GGUF file to use from now on.
    #[serde(default)]
    pub model: Option<PathBuf>,
}

impl Reload {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        if let Some(path) = &self.model {
            if !path.is_absolute() {
                return Err(ApiError::new(
                    ErrorCode::InvalidParams,
                    format!(
                        "reload: `model` must be an absolute path, not {}",
                        path.display()
                    ),
                ));
            }
        }
        let info = ctx.assistant.llm.reload(self.model).await?;
        Ok(json!({ "model": info }))
    }
}
