//! Metrics in the Prometheus/OpenMetrics text format, for `voxd metrics`,
//! the `metrics` socket command and the optional HTTP endpoint
//! (`crate::doors::http`).
//!
//! It owns the metric registry and nothing else. Two kinds of metrics:
//!
//! - **Counted as things happen**, kept in the long-lived [`Metrics`]
//!   registry: requests by command and outcome, request latency, accepted
//!   connections, and whatever other subsystems register (tokens/s, STT/TTS
//!   real-time factors, stage latencies, index size, …).
//! - **Sampled at scrape time** from the daemon's state, given as a
//!   [`Sample`]: uptime, RSS of the daemon and of each engine, engine
//!   states, restarts, queue depths, open connections. They are encoded
//!   from a fresh registry per scrape, so nothing has to keep them current.
//!
//! # Adding a metric
//!
//! Make the metric (any `prometheus_client` metric, e.g. a
//! `Family<Labels, Histogram>`), register a clone once with
//! [`Metrics::register`] (names get the `voxd_` prefix; counters get
//! `_total` appended by the encoder), keep the handle where the work is
//! done and update it there. `assistant.metrics` reaches the registry from
//! every door.
//!
//! The voice pipeline's own metrics (STT and TTS real-time factors and
//! latencies, the notes index's size and query latency, captions) are the
//! handles of [`Pipeline`], registered once by [`Metrics::new`]; the daemon
//! gives a clone to each subsystem, which updates it where it already times
//! its work.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry, Unit};

use crate::engine::{BudgetStatus, EngineState, EngineStatus};

/// The `command` label of requests that could not be parsed.
pub const INVALID: &str = "invalid";

/// Prefix of every metric name.
const PREFIX: &str = "voxd";

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every engine state, for the one-hot `voxd_engine_state` gauge.
const ENGINE_STATES: [EngineState; 6] = [
    EngineState::Stopped,
    EngineState::Starting,
    EngineState::Ready,
    EngineState::Busy,
    EngineState::Backoff,
    EngineState::Failed,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    command: String,
    /// `ok`, or the error code of the reply.
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EngineLabels {
    engine: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EngineStateLabels {
    engine: String,
    state: String,
}

/// Buckets for request latency: 1 ms to ~65 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The daemon's metric registry and the metrics the control plane updates;
/// shared through [`crate::assistant::Assistant`].
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<CommandLabels, Histogram, fn() -> Histogram>,
    connections: Counter,
    /// Connections open and requests running now, over every door.
    pub traffic: Traffic,
    /// The pipeline's metrics; clone it for a subsystem.
    pub pipeline: Pipeline,
    /// The Wyoming door's connections and requests.
    pub wyoming: Wyoming,
}

/// The Wyoming server's traffic: connections open now (also the
/// `voxd_wyoming_connections` gauge) and requests by type since start, for
/// `status`. Each request is also counted, by outcome and timed, as
/// command `wyoming.<type>` in `voxd_requests`.
#[derive(Debug, Default)]
pub struct Wyoming {
    connections: Gauge,
    requests: Mutex<BTreeMap<String, u64>>,
}

impl Wyoming {
    /// A connection opened; [`Wyoming::closed`] when it ends.
    pub fn opened(&self) {
        self.connections.inc();
    }

    pub fn closed(&self) {
        self.connections.dec();
    }

    /// Counts one request of Wyoming type `kind` (`transcribe`, `synthesize`, …).
    pub fn request(&self, kind: &str) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests.entry(kind.to_owned()).or_default() += 1;
    }

    /// Connections open now.
    pub fn connections(&self) -> i64 {
        self.connections.get()
    }

    /// Requests so far, by type.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// Connections open and requests in flight right now, over every door:
/// sampled by `status` and each scrape.
#[derive(Debug, Default)]
pub struct Traffic {
    connections: AtomicUsize,
    in_flight: AtomicUsize,
}

impl Traffic {
    /// A client connection opened; [`Traffic::closed`] when it ends.
    pub fn opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// A request started running; [`Traffic::finished`] when it ends.
    pub fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Open client connections.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Requests running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Buckets for real-time factors (processing time / audio time): 0.005 to
/// ~20, doubling.
fn rtf_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

/// The voice pipeline's metrics, cheap to clone (each handle is shared).
#[derive(Debug, Clone)]
pub struct Pipeline {
    stt_rtf: Histogram,
    stt_decode: Histogram,
    tts_rtf: Histogram,
    tts_first_chunk: Histogram,
    rag_query: Histogram,
    rag_files: Gauge,
    rag_images: Gauge,
    rag_chunks: Gauge,
    captions: Family<OutcomeLabels, Counter>,
    caption_duration: Histogram,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            stt_rtf: rtf_histogram(),
            stt_decode: latency_histogram(),
            tts_rtf: rtf_histogram(),
            tts_first_chunk: latency_histogram(),
            rag_query: latency_histogram(),
            rag_files: Gauge::default(),
            rag_images: Gauge::default(),
            rag_chunks: Gauge::default(),
            captions: Family::default(),
            caption_duration: latency_histogram(),
        }
    }
}

impl Pipeline {
    fn register(&self, m: &Metrics) {
        let secs = |name: &str, help: &str, h: &Histogram| {
            m.register_with_unit(name, help, Unit::Seconds, h.clone());
        };
        m.register(
            "stt_real_time_factor",
            "Transcription time (request to transcript) / audio duration",
            self.stt_rtf.clone(),
        );
        secs(
            "stt_decode_duration",
            "Time the STT engine spent decoding one transcription",
            &self.stt_decode,
        );
        m.register(
            "tts_real_time_factor",
            "Synthesis time / audio duration, per spoken chunk",
            self.tts_rtf.clone(),
        );
        secs(
            "tts_first_chunk_latency",
            "Start of an utterance (voice load included) to its first audio chunk",
            &self.tts_first_chunk,
        );
        secs(
            "rag_query_duration",
            "Hybrid retrieval (embedding the query, BM25, cosine, fusion)",
            &self.rag_query,
        );
        m.register(
            "rag_index_files",
            "Note files in the notes index",
            self.rag_files.clone(),
        );
        m.register(
            "rag_index_images",
            "Image captions in the notes index",
            self.rag_images.clone(),
        );
        m.register(
            "rag_index_chunks",
            "Chunks (notes and captions) in the notes index",
            self.rag_chunks.clone(),
        );
        m.register(
            "vision_captions",
            "Watched images processed, by outcome (captioned, cached, failed)",
            self.captions.clone(),
        );
        secs(
            "vision_caption_duration",
            "Decoding and captioning one image with the model",
            &self.caption_duration,
        );
    }

    /// One transcription: `audio_secs` of audio took `elapsed` in all, of
    /// which the engine decoded for `decode`.
    pub fn observe_stt(&self, audio_secs: f64, elapsed: Duration, decode: Duration) {
        if audio_secs > 0.0 {
            self.stt_rtf.observe(elapsed.as_secs_f64() / audio_secs);
        }
        self.stt_decode.observe(decode.as_secs_f64());
    }

    /// One synthesised chunk of `audio` that took `synth`.
    pub fn observe_tts_chunk(&self, synth: Duration, audio: Duration) {
        if !audio.is_zero() {
            self.tts_rtf
                .observe(synth.as_secs_f64() / audio.as_secs_f64());
        }
    }

    /// An utterance's first chunk came `latency` after it started.
    pub fn observe_tts_first_chunk(&self, latency: Duration) {
        self.tts_first_chunk.observe(latency.as_secs_f64());
    }

    pub fn observe_rag_query(&self, elapsed: Duration) {
        self.rag_query.observe(elapsed.as_secs_f64());
    }

    /// The notes index now holds these.
    pub fn set_rag_index(&self, files: u64, images: u64, chunks: u64) {
        let set = |g: &Gauge, v: u64| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        set(&self.rag_files, files);
        set(&self.rag_images, images);
        set(&self.rag_chunks, chunks);
    }

    /// A watched image was processed: `captioned` (by the model, which took
    /// `model_time`), `cached` (known content) or `failed`.
    pub fn observe_caption(&self, outcome: &str, model_time: Option<Duration>) {
        self.captions
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
        if let Some(t) = model_time {
            self.caption_duration.observe(t.as_secs_f64());
        }
    }
}

/// The daemon's state at scrape time.
#[derive(Debug, Clone)]
pub struct Sample {
    pub uptime: Duration,
    pub daemon_rss_bytes: u64,
    pub budget: BudgetStatus,
    pub engines: Vec<EngineStatus>,
    pub connections_open: usize,
    pub requests_in_flight: usize,
    /// The language model's backends, with a remote one or a fallback.
    pub llm_backends: Vec<LlmBackendSample>,
}

/// One language-model backend's counts (`llm::BackendStatus`).
#[derive(Debug, Clone, PartialEq)]
pub struct LlmBackendSample {
    pub name: String,
    /// Not resting after a failure.
    pub up: bool,
    pub requests: u64,
    pub failures: u64,
    pub fallbacks: u64,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Mutex::new(Registry::with_prefix(PREFIX)),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            connections: Counter::default(),
            traffic: Traffic::default(),
            pipeline: Pipeline::default(),
            wyoming: Wyoming::default(),
        };
        metrics.register(
            "wyoming_connections",
            "Wyoming connections open",
            metrics.wyoming.connections.clone(),
        );
        metrics.pipeline.register(&metrics);
        metrics.register(
            "requests",
            "Requests handled, by command and outcome (ok or the error code)",
            metrics.requests.clone(),
        );
        metrics.register_with_unit(
            "request_duration",
            "Time from a parsed request to its reply, by command",
            Unit::Seconds,
            metrics.latency.clone(),
        );
        metrics.register(
            "connections",
            "Control-socket connections accepted",
            metrics.connections.clone(),
        );
        metrics
    }

    /// Registers `metric` as `voxd_<name>`. Keep a clone of it and update
    /// that; the registry encodes the shared value.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.lock().register(name, help, metric);
    }

    /// [`Metrics::register`] with a unit suffix (`_seconds`, `_bytes`, …).
    pub fn register_with_unit(&self, name: &str, help: &str, unit: Unit, metric: impl Metric) {
        self.lock().register_with_unit(name, help, unit, metric);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves the registry usable.
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one request to `command` that was refused with error `code`
    /// before it ran (for a request that names no command: `command` is
    /// [`INVALID`]).
    pub fn count_request(&self, command: &str, code: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                command: command.to_owned(),
                code: code.to_owned(),
            })
            .inc();
    }

    /// Counts one request to `command` that ran and ended with `code` (`ok`
    /// or an error code) after `elapsed`.
    pub fn observe_request(&self, command: &str, code: &str, elapsed: Duration) {
        self.count_request(command, code);
        self.latency
            .get_or_create(&CommandLabels {
                command: command.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts an accepted control connection.
    pub fn connection_accepted(&self) {
        self.connections.inc();
    }

    /// Every metric in the OpenMetrics text format, ending in `# EOF`.
    pub fn render(&self, sample: &Sample) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.lock());
        let _ = encode_registry(&mut out, &sampled(sample));
        let _ = encode_eof(&mut out);
        out
    }
}

/// A registry holding the values of one [`Sample`].
fn sampled(sample: &Sample) -> Registry {
    let mut reg = Registry::with_prefix(PREFIX);
    let gauge = |v: u64| {
        let g = Gauge::<i64>::default();
        g.set(i64::try_from(v).unwrap_or(i64::MAX));
        g
    };
    let uptime = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    uptime.set(sample.uptime.as_secs_f64());
    reg.register_with_unit(
        "uptime",
        "Time since the daemon started",
        Unit::Seconds,
        uptime,
    );
    reg.register_with_unit(
        "process_resident_memory",
        "Resident memory of the daemon process itself",
        Unit::Bytes,
        gauge(sample.daemon_rss_bytes),
    );
    reg.register_with_unit(
        "memory_budget",
        "Memory budget for the daemon and all engine workers (0: none)",
        Unit::Bytes,
        gauge(sample.budget.budget_mb << 20),
    );
    reg.register_with_unit(
        "memory_used",
        "Memory the budget counts as used: the daemon plus every resident engine",
        Unit::Bytes,
        gauge(sample.budget.used_mb << 20),
    );
    reg.register(
        "connections_open",
        "Open control-socket connections",
        gauge(sample.connections_open as u64),
    );
    reg.register(
        "requests_in_flight",
        "Requests being handled now, over all connections and D-Bus",
        gauge(sample.requests_in_flight as u64),
    );

    let rss = Family::<EngineLabels, Gauge>::default();
    let state = Family::<EngineStateLabels, Gauge>::default();
    let restarts = Family::<EngineLabels, Counter>::default();
    let queued = Family::<EngineLabels, Gauge>::default();
    for engine in &sample.engines {
        let labels = EngineLabels {
            engine: engine.name.clone(),
        };
        rss.get_or_create(&labels).set(
            engine
                .rss_bytes
                .map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX)),
        );
        restarts
            .get_or_create(&labels)
            .inc_by(u64::from(engine.restarts));
        queued
            .get_or_create(&labels)
            .set(i64::try_from(engine.queued).unwrap_or(i64::MAX));
        for s in ENGINE_STATES {
            state
                .get_or_create(&EngineStateLabels {
                    engine: engine.name.clone(),
                    state: state_name(s),
                })
                .set(i64::from(s == engine.state));
        }
    }
    reg.register_with_unit(
        "engine_resident_memory",
        "Resident memory of each engine worker process (0 while it has none)",
        Unit::Bytes,
        rss,
    );
    reg.register(
        "engine_state",
        "1 for the state each engine is in, 0 for the others",
        state,
    );
    reg.register(
        "engine_restarts",
        "Worker restarts after crashes since the daemon started",
        restarts,
    );
    reg.register(
        "engine_queue_depth",
        "Requests waiting for each engine",
        queued,
    );

    if !sample.llm_backends.is_empty() {
        let up = Family::<BackendLabels, Gauge>::default();
        let counted = [
            (
                "llm_backend_requests",
                "Requests sent to each language-model backend",
            ),
            (
                "llm_backend_failures",
                "Failed requests of each language-model backend",
            ),
            (
                "llm_backend_fallbacks",
                "Requests that went on to a later backend after this one failed",
            ),
        ]
        .map(|(name, help)| (name, help, Family::<BackendLabels, Counter>::default()));
        for backend in &sample.llm_backends {
            let labels = BackendLabels {
                backend: backend.name.clone(),
            };
            up.get_or_create(&labels).set(i64::from(backend.up));
            let counts = [backend.requests, backend.failures, backend.fallbacks];
            for ((_, _, family), count) in counted.iter().zip(counts) {
                family.get_or_create(&labels).inc_by(count);
            }
        }
        reg.register(
            "llm_backend_up",
            "1 while a language-model backend is usable, 0 while it rests after a failure",
            up,
        );
        for (name, help, family) in counted {
            reg.register(name, help, family);
        }
    }
    reg
}

/// An engine state as the protocol spells it (`ready`, `backoff`, …).
pub fn state_name(state: EngineState) -> String {
    match serde_json::to_value(state) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{state:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(name: &str, state: EngineState) -> EngineStatus {
        EngineStatus {
            name: name.into(),
            state,
            pid: Some(42),
            rss_bytes: Some(3 << 20),
            memory_mb: 10,
            measured_mb: None,
            restarts: 2,
            last_error: None,
            queued: 1,
            idle_secs: None,
        }
    }

    #[test]
    fn state_names_match_the_protocol() {
        assert_eq!(state_name(EngineState::Backoff), "backoff");
    }

    #[test]
    fn renders_counted_and_sampled_metrics() {
        let m = Metrics::new();
        m.observe_request("status", "ok", Duration::from_millis(3));
        m.observe_request("status", "ok", Duration::from_millis(5));
        m.observe_request("engine", "engine_failed", Duration::from_secs(2));
        m.connection_accepted();
        let sample = Sample {
            uptime: Duration::from_secs(90),
            daemon_rss_bytes: 12 << 20,
            budget: BudgetStatus {
                budget_mb: 800,
                daemon_mb: 12,
                used_mb: 22,
                resident: vec!["stt".into()],
            },
            engines: vec![engine("stt", EngineState::Busy)],
            connections_open: 1,
            requests_in_flight: 1,
            llm_backends: vec![LlmBackendSample {
                name: "openai".into(),
                up: false,
                requests: 3,
                failures: 1,
                fallbacks: 1,
            }],
        };
        let text = m.render(&sample);
        for line in [
            "voxd_requests_total{command=\"status\",code=\"ok\"} 2",
            "voxd_requests_total{command=\"engine\",code=\"engine_failed\"} 1",
            "voxd_request_duration_seconds_count{command=\"status\"} 2",
            "voxd_connections_total 1",
            "voxd_uptime_seconds 90.0",
            "voxd_llm_backend_up{backend=\"openai\"} 0",
            "voxd_llm_backend_requests_total{backend=\"openai\"} 3",
            "voxd_llm_backend_fallbacks_total{backend=\"openai\"} 1",
            "voxd_memory_budget_bytes 838860800",
            "voxd_engine_resident_memory_bytes{engine=\"stt\"} 3145728",
            "voxd_engine_state{engine=\"stt\",state=\"busy\"} 1",
            "voxd_engine_state{engine=\"stt\",state=\"ready\"} 0",
            "voxd_engine_restarts_total{engine=\"stt\"} 2",
            "voxd_engine_queue_depth{engine=\"stt\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
    }

    #[test]
    fn other_subsystems_register_their_own_metrics() {
        let m = Metrics::new();
        let rtf = Histogram::new([0.1, 0.5, 1.0]);
        m.register("stt_real_time_factor", "STT time / audio time", rtf.clone());
        rtf.observe(0.3);
        let text = m.render(&Sample {
            uptime: Duration::ZERO,
            daemon_rss_bytes: 0,
            budget: BudgetStatus {
                budget_mb: 0,
                daemon_mb: 0,
                used_mb: 0,
                resident: vec![],
            },
            engines: vec![],
            connections_open: 0,
            requests_in_flight: 0,
            llm_backends: vec![],
        });
        assert!(
            text.contains("voxd_stt_real_time_factor_bucket{le=\"0.5\"} 1"),
            "{text}"
        );
    }
}
