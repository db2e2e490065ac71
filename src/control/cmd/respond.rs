//! `respond`: one assistant turn on text, exactly as if it had been spoken
//! after the wake word: built-in intents first, else `ask`; the reply is
//! spoken (unless `speak` is false) and returned with its citations and
//! the turn's timings. See [`crate::pipeline`].

use serde::Deserialize;
use serde_json::Value;

use super::Session;
use crate::control::protocol::{ControlError, ErrorCode};
use crate::control::Context;
use crate::pipeline::{self, Request};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Respond {
    pub text: String,
    /// Speak the reply through the daemon's audio output.
    #[serde(default = "yes")]
    pub speak: bool,
    /// Conversation session for questions; default `assistant.session`.
    #[serde(default)]
    pub session: Option<String>,
}

fn yes() -> bool {
    true
}

impl Respond {
    pub async fn apply(self, ctx: &Context, session: &Session) -> Result<Value, ControlError> {
        if self.text.trim().is_empty() {
            return Err(ControlError::new(
                ErrorCode::InvalidParams,
                "respond: `text` is empty",
            ));
        }
        // The turn stops when the client leaves (as `ask` does).
        let cancel = session.closed.child_token();
        let default_session = &ctx.config.config.assistant.session;
        let reply = pipeline::respond(
            ctx,
            Request {
                text: self.text,
                speak: self.speak,
                session: self
                    .session
                    .or_else(|| Some(default_session.clone()).filter(|s| !s.is_empty())),
                stt_ms: None,
                cancel,
                hold: None,
            },
        )
        .await?;
        serde_json::to_value(reply)
            .map_err(|e| ControlError::new(ErrorCode::Internal, e.to_string()))
    }
}
