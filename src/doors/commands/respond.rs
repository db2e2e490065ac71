//! `respond`: one assistant turn on text, exactly as if it had been spoken
//! after the wake word: built-in intents first, then the user's commands,
//! else `ask`; the reply is spoken (unless `speak` is false) and returned
//! with its citations and the turn's timings. See [`crate::assistant::Assistant::respond`].

use serde::Deserialize;
use serde_json::Value;

use super::Context;
use super::Peer;
use crate::api::{ApiError, ErrorCode};
use crate::assistant::Request;

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
    pub async fn apply(self, ctx: &Context, peer: &Peer) -> Result<Value, ApiError> {
        if self.text.trim().is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidParams,
                "respond: `text` is empty",
            ));
        }
        // The turn stops when the client leaves (as `ask` does).
        let assistant = &ctx.assistant;
        let reply = assistant
            .respond(Request {
                text: self.text,
                speak: self.speak,
                session: self.session.or_else(|| assistant.default_session()),
                stt_ms: None,
                cancel: peer.closed.child_token(),
                hold: None,
                stream: None,
            })
            .await?;
        serde_json::to_value(reply).map_err(ApiError::internal)
    }
}
