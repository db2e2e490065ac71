//! `status`: version, uptime, profile, the daemon's and each engine's
//! memory, the budget, queues (requests in flight, utterances queued or
//! being spoken), and the language model (model info, prompt format,
//! figures of the last reply), and the Wyoming server (where it listens,
//! connections open, requests by type).

use serde::Deserialize;
use serde_json::{json, Value};

use super::protocol::PROTOCOL_VERSION;
use super::Context;
use crate::api::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {}

impl Status {
    pub fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        Ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": PROTOCOL_VERSION,
            "pid": std::process::id(),
            "uptime_secs": ctx.assistant.uptime().as_secs_f64(),
            "profile": ctx.assistant.config.config.profile,
            "socket": ctx.socket,
            "queue_depth": ctx.assistant.metrics.traffic.in_flight().saturating_sub(1),
            "connections": ctx.assistant.metrics.traffic.connections(),
            "speech": { "active": ctx.assistant.speaker.active(), "voice": ctx.assistant.speaker.voice() },
            "rss_bytes": ctx.assistant.engines.daemon_rss_bytes(),
            "budget": ctx.assistant.engines.budget(),
            "engines": ctx.assistant.engines.status(),
            "llm": ctx.assistant.llm.status(),
            "wyoming": {
                "listen": ctx.wyoming,
                "connections": ctx.assistant.metrics.wyoming.connections(),
                "requests": ctx.assistant.metrics.wyoming.requests(),
            },
        }))
    }
}
