//! `say`: speak text, whole (`text`) or streamed: the first request with
//! `more: true` opens an utterance and returns its id; later requests name
//! it (`utterance`) and add text; the one with `more: false` ends it and,
//! like a whole-text `say`, replies once it has been spoken.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use super::Peer;
use crate::api::{ApiError, ErrorCode};
use crate::speak::{SayOptions, SayOutcome, SpeakError, Target, Utterance};

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
            target: self.out.map_or(Target::Output, Target::Wav),
            hold: None,
        };
        let open = &ctx.utterances;
        match (self.utterance, self.more) {
            (None, false) => outcome(speaker.say(&self.text, options).await),
            (None, true) => {
                let id = open.open(speaker.open(options)?);
                // A client that leaves ends its utterance.
                let closed = peer.closed.clone();
                let owner = open.clone();
                tokio::spawn(async move {
                    closed.cancelled().await;
                    owner.abandon(id);
                });
                open.append(id, &self.text)?;
                Ok(json!({ "utterance": id, "open": true }))
            }
            (Some(id), more) => {
                open.append(id, &self.text)?;
                if more {
                    Ok(json!({ "utterance": id, "open": true }))
                } else {
                    outcome(open.close(id).await)
                }
            }
        }
    }
}

fn outcome(result: Result<SayOutcome, SpeakError>) -> Result<Value, ApiError> {
    let outcome = result?;
    Ok(serde_json::to_value(outcome).unwrap_or(Value::Null))
}

/// The utterances that streaming `say` requests opened and later requests
/// extend by id (from any connection). One that was stopped (`stop`,
/// barge-in) is closed: naming it is `invalid_params`. Cheap to clone.
#[derive(Clone, Default)]
pub struct OpenUtterances(Arc<Mutex<HashMap<u64, Utterance>>>);

impl OpenUtterances {
    /// The open utterances, less those that were stopped.
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Utterance>> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, u| !u.stopped());
        open
    }

    /// Keeps `utterance` open; returns its id.
    fn open(&self, utterance: Utterance) -> u64 {
        let id = utterance.id();
        self.lock().insert(id, utterance);
        id
    }

    /// Adds text to open utterance `id`.
    fn append(&self, id: u64, text: &str) -> Result<(), SpeakError> {
        let mut open = self.lock();
        let utterance = open.get_mut(&id).ok_or(SpeakError::NoUtterance(id))?;
        let result = utterance.push(text);
        if result.is_err() {
            open.remove(&id); // too long: end it with what it has
        }
        result
    }

    /// Ends open utterance `id` and waits until it has been spoken.
    async fn close(&self, id: u64) -> Result<SayOutcome, SpeakError> {
        let utterance = self.lock().remove(&id).ok_or(SpeakError::NoUtterance(id))?;
        utterance.finish().await
    }

    /// Ends open utterance `id` without waiting (its client left).
    fn abandon(&self, id: u64) {
        self.lock().remove(&id);
    }
}
