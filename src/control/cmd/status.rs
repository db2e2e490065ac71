//! `status`: version, uptime, profile, the daemon's and each engine's
//! memory, the budget, queues (requests in flight, utterances queued or
//! being spoken), and the language model (model info, prompt format,
//! figures of the last reply).

use std::sync::atomic::Ordering;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::control::protocol::{ControlError, PROTOCOL_VERSION};
use crate::control::Context;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {}

impl Status {
    pub fn apply(self, ctx: &Context) -> Result<Value, ControlError> {
        Ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": PROTOCOL_VERSION,
            "pid": std::process::id(),
            "uptime_secs": ctx.started.elapsed().as_secs_f64(),
            "profile": ctx.config.config.profile,
            "socket": ctx.socket,
            "queue_depth": ctx.in_flight.load(Ordering::Relaxed).saturating_sub(1),
            "connections": ctx.connections.load(Ordering::Relaxed),
            "speech": { "active": ctx.speaker.active(), "voice": ctx.speaker.voice() },
            "rss_bytes": ctx.engines.daemon_rss_bytes(),
            "budget": ctx.engines.budget(),
            "engines": ctx.engines.status(),
            "llm": ctx.llm.as_ref().map(|llm| llm.status()),
        }))
    }
}
