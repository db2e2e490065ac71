//! `notes`: search the notes index, rescan the folders, report the
//! index's state, or list the indexed notes (`action`: `search` |
//! `reindex` | `status` | `files`).

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::api::{ApiError, ErrorCode};

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Notes {
    /// Hybrid (BM25 + cosine) search; `limit` defaults to `rag.top_k`.
    Search {
        query: String,
        #[serde(default)]
        limit: Option<usize>,
    },
    /// Rescan every notes folder now and wait for it.
    Reindex,
    /// Files, chunks, last update, indexing state, skipped files.
    Status,
    /// Every indexed note with its size, chunks and when it was indexed.
    Files,
}

impl Notes {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        match self {
            Notes::Search { query, limit } => {
                if query.trim().is_empty() {
                    return Err(ApiError::new(
                        ErrorCode::InvalidParams,
                        "notes search: `query` is empty",
                    ));
                }
                let limit = limit
                    .unwrap_or(ctx.assistant.rag.config().top_k)
                    .clamp(1, 100);
                let (hits, _) = ctx
                    .assistant
                    .rag
                    .search(&query, limit)
                    .await
                    .map_err(ApiError::internal)?;
                Ok(json!({ "hits": hits }))
            }
            Notes::Reindex => {
                let report = ctx
                    .assistant
                    .rag
                    .reindex()
                    .await
                    .map_err(ApiError::internal)?;
                serde_json::to_value(report).map_err(ApiError::internal)
            }
            Notes::Status => {
                serde_json::to_value(ctx.assistant.rag.status().await).map_err(ApiError::internal)
            }
            Notes::Files => {
                let files = ctx.assistant.rag.files().await?;
                Ok(json!({ "files": files }))
            }
        }
    }
}
