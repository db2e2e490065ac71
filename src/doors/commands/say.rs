//! `say`: speak text, whole (`text`) or streamed: the first request with
//! `more: true` opens an utterance and returns its id; later requests name
//! it (`utterance`) and add text; the one with `more: false` ends it and,
//! like a whole-text `say`, replies once it has been spoken.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use super::Peer;
use crate::api::{ApiError, ErrorCode};
use crate::speak::{SayOptions, SayOutcome, SpeakError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Say {
    /// The text (markdown is fine: its syntax is not read aloud).
    #[serde(default)]
    pub text: String,
    /// A voice: model id or path; empty means the configured one.
    #[serde(default)]
    pub voice: String,
    /// Write the speech to this WAV file (absolute path) instead of playing it.
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// More text follows in later `say` requests naming the utterance.
    #[serde(default)]
    pub more: bool,
    /// The open utterance this text continues.
    #[serde(default)]
    pub utterance: Option<u64>,
}

impl Say {
    pub async fn apply(self, ctx: &Context, peer: &Peer) -> Result<Value, ApiError> {
        let speaker = &ctx.assistant.speaker;
        if let Some(out) = &self.out {
            if !out.is_absolute() {
                return Err(ApiError::new(
                    ErrorCode::InvalidParams,
                    format!("`out` must be an absolute path, not {}", out.display()),
                ));
            }
        }
        let options = SayOptions {
            voice: self.voice,
            out: self.out,
            hold: None,
        };
        match (self.utterance, self.more) {
            (None, false) => outcome(speaker.say(&self.text, options).await),
            (None, true) => {
                let id = speaker.open_stream(options)?;
                // A client that leaves ends its utterance.
                let closed = peer.closed.clone();
                let owner = speaker.clone();
                tokio::spawn(async move {
                    closed.cancelled().await;
                    owner.abandon(id);
                });
                speaker.append(id, &self.text)?;
                Ok(json!({ "utterance": id, "open": true }))
            }
            (Some(id), more) => {
                speaker.append(id, &self.text)?;
                if more {
                    Ok(json!({ "utterance": id, "open": true }))
                } else {
                    outcome(speaker.close(id).await)
                }
            }
        }
    }
}

fn outcome(result: Result<SayOutcome, SpeakError>) -> Result<Value, ApiError> {
    let outcome = result?;
    Ok(serde_json::to_value(outcome).unwrap_or(Value::Null))
}
