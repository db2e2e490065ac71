//! `reload`: load the language model afresh without restarting the daemon:
//! the configured model looked up again (e.g. after `voxd models pull`), or
//! the GGUF file `model` names. Requests queued meanwhile run on the new one.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{json, Value};

use super::llm_error;
use crate::control::protocol::{ControlError, ErrorCode};
use crate::control::Context;
use crate::llm::LlmError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reload {
    /// An absolute path to a GGUF file to use from now on.
    #[serde(default)]
    pub model: Option<PathBuf>,
}

impl Reload {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ControlError> {
        if let Some(path) = &self.model {
            if !path.is_absolute() {
                return Err(ControlError::new(
                    ErrorCode::InvalidParams,
                    format!(
                        "reload: `model` must be an absolute path, not {}",
                        path.display()
                    ),
                ));
            }
        }
        let llm = ctx
            .llm
            .as_ref()
            .ok_or_else(|| llm_error(LlmError::NoModel))?;
        let info = llm.reload(self.model).await.map_err(llm_error)?;
        Ok(json!({ "model": info }))
    }
}
