//! `history` (the sessions, or one session's turns) and `forget` (delete a
//! session's history).

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::api::{ApiError, ErrorCode};

/// Turns `history SESSION` lists at most.
const MAX_LISTED: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryCmd {
    /// A session id; without it, every session.
    #[serde(default)]
    pub session: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forget {
    pub session: String,
}

fn history(ctx: &Context) -> Result<&std::sync::Arc<crate::conversation::History>, ApiError> {
    ctx.assistant.history.as_ref().map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("session history unavailable: {e}"),
        )
    })
}

impl HistoryCmd {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        let h = history(ctx)?.clone();
        tokio::task::spawn_blocking(move || match self.session {
            Some(session) => {
                let turns = h.turns(&session, MAX_LISTED).map_err(ApiError::internal)?;
                Ok(json!({ "session": session, "turns": turns }))
            }
            None => Ok(json!({ "sessions": h.sessions().map_err(ApiError::internal)? })),
        })
        .await
        .map_err(ApiError::internal)?
    }
}

impl Forget {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        let h = history(ctx)?.clone();
        let session = self.session;
        tokio::task::spawn_blocking(move || {
            let turns = h.forget(&session).map_err(ApiError::internal)?;
            Ok(json!({ "session": session, "forgotten_turns": turns }))
        })
        .await
        .map_err(ApiError::internal)?
    }
}
