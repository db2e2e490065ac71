//! `metrics`: every metric in the Prometheus/OpenMetrics text format, and
//! where the HTTP endpoint listens (if it does).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::control::protocol::ControlError;
use crate::control::Context;
use crate::metrics::CONTENT_TYPE;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsCmd {}

impl MetricsCmd {
    pub fn apply(self, ctx: &Context) -> Result<Value, ControlError> {
        Ok(json!({
            "content_type": CONTENT_TYPE,
            "text": ctx.metrics.render(&ctx.metrics_sample()),
            "http": ctx.metrics_http.map(|a| a.to_string()),
        }))
    }
}
