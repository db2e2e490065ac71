//! `models`: every model in the manifest with its install state, size, path
//! and the roles that use it.

use serde::Deserialize;
use serde_json::Value;

use super::Context;
use crate::api::{ApiError, ErrorCode};
use crate::models::{self, Manifest, Store};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Models {}

impl Models {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        let config = ctx.assistant.config.config.models.clone();
        // Reading the store touches the disk: keep it off the event loop.
        let listed = tokio::task::spawn_blocking(move || {
            let manifest = Manifest::load(&config)?;
            let store = Store::from_config(&config)?;
            models::list(&manifest, &store, &config)
        })
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        let list = listed.map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        serde_json::to_value(serde_json::json!({ "models": list }))
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
    }
}
