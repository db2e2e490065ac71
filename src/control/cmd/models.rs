//! `models`: every model in the manifest with its install state, size, path
//! and the roles that use it.

use serde::Deserialize;
use serde_json::Value;

use crate::control::protocol::{ControlError, ErrorCode};
use crate::control::Context;
use crate::models::{self, Manifest, Store};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Models {}

impl Models {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ControlError> {
        let config = ctx.config.config.models.clone();
        // Reading the store touches the disk: keep it off the event loop.
        let listed = tokio::task::spawn_blocking(move || {
            let manifest = Manifest::load(&config)?;
            let store = Store::from_config(&config)?;
            models::list(&manifest, &store, &config)
        })
        .await
        .map_err(|e| ControlError::new(ErrorCode::Internal, e.to_string()))?;
        let list = listed.map_err(|e| ControlError::new(ErrorCode::Internal, e.to_string()))?;
        serde_json::to_value(serde_json::json!({ "models": list }))
            .map_err(|e| ControlError::new(ErrorCode::Internal, e.to_string()))
    }
}
