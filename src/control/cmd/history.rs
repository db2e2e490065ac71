//! `history` (the sessions, or one session's turns) and `forget` (delete a
//! session's history).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::control::protocol::{ControlError, ErrorCode};
use crate::control::Context;

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

fn history(ctx: &Context) -> Result<&std::sync::Arc<crate::conversation::History>, ControlError> {
    ctx.history.as_ref().map_err(|e| {
        ControlError::new(
            ErrorCode::Internal,
            format!("session history unavailable: {e}"),
        )
    })
}

fn internal(e: impl std::fmt::Display) -> ControlError {
    ControlError::new(ErrorCode::Internal, e.to_string())
}

impl HistoryCmd {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ControlError> {
        let h = history(ctx)?.clone();
        tokio::task::spawn_blocking(move || match self.session {
            Some(session) => {
                let turns = h.turns(&session, MAX_LISTED).map_err(internal)?;
                Ok(json!({ "session": session, "turns": turns }))
            }
            None => Ok(json!({ "sessions": h.sessions().map_err(internal)? })),
        })
        .await
        .map_err(internal)?
    }
}

impl Forget {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ControlError> {
        let h = history(ctx)?.clone();
        let session = self.session;
        tokio::task::spawn_blocking(move || {
            let turns = h.forget(&session).map_err(internal)?;
            Ok(json!({ "session": session, "forgotten_turns": turns }))
        })
        .await
        .map_err(internal)?
    }
}
