//! `metrics`: every metric in the Prometheus/OpenMetrics text format, and
//! where the HTTP endpoint listens (if it does).

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::api::ApiError;
use crate::metrics::CONTENT_TYPE;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsCmd {}

impl MetricsCmd {
    pub fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        Ok(json!({
            "content_type": CONTENT_TYPE,
            "text": ctx.assistant.metrics.render(&ctx.assistant.metrics_sample()),
            "http": ctx.http.map(|a| a.to_string()),
        }))
    }
}
