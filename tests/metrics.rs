//! Metrics over the socket (`metrics`, `voxd metrics`) and over the
//! optional HTTP endpoint, parsed as Prometheus text; `/health`; and the
//! loopback-only rule.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::{json, Value};
use support::{echo_engines_config, http, wait_until, Daemon, Home};

/// Parses Prometheus text and returns (metric name, labels, value) samples.
fn parse(text: &str) -> Vec<prometheus_parse::Sample> {
    // Every line is a comment, a sample, or the OpenMetrics end marker.
    assert!(text.ends_with("# EOF\n"), "no EOF marker:\n{text}");
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines)
        .expect("valid Prometheus text")
        .samples
}

fn value(samples: &[prometheus_parse::Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found = samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
    match found.map(|s| &s.value) {
        Some(prometheus_parse::Value::Counter(v))
        | Some(prometheus_parse::Value::Gauge(v))
        | Some(prometheus_parse::Value::Untyped(v)) => *v,
        other => panic!("no {metric}{labels:?} (found {other:?})"),
    }
}

const HTTP_ON: &str = "\n[metrics]\nlisten = \"127.0.0.1:0\"\n";

#[test]
fn the_socket_command_counts_requests_and_samples_the_daemon() {
    let daemon = Daemon::start(&echo_engines_config(""));
    let mut conn = daemon.connect();
    conn.ok("status", json!({}));
    conn.ok("status", json!({}));
    conn.ok("engine", json!({"name": "stt", "action": "start"}));
    conn.request("engine", json!({"name": "tts", "action": "start"}));
    conn.request("fly", json!({}));

    let reply = conn.ok("metrics", json!({}));
    assert_eq!(reply["http"], Value::Null, "the endpoint is off by default");
    assert!(reply["content_type"]
        .as_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let samples = parse(reply["text"].as_str().unwrap());
    let requests = |command, code| {
        value(
            &samples,
            "voxd_requests_total",
            &[("command", command), ("code", code)],
        )
    };
    assert_eq!(requests("status", "ok"), 2.0);
    assert_eq!(requests("engine", "ok"), 1.0);
    assert_eq!(requests("engine", "invalid_params"), 1.0);
    assert_eq!(requests("invalid", "unknown_command"), 1.0);
    let status_latency = samples
        .iter()
        .find(|s| {
            s.metric == "voxd_request_duration_seconds" && s.labels.get("command") == Some("status")
        })
        .expect("a latency histogram for status");
    match &status_latency.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert_eq!(buckets.last().unwrap().count, 2.0, "{buckets:?}");
        }
        other => panic!("latency is not a histogram: {other:?}"),
    }
    // Ours, and the probe `Daemon::start` made to see the socket up.
    assert_eq!(value(&samples, "voxd_connections_total", &[]), 2.0);
    assert_eq!(value(&samples, "voxd_connections_open", &[]), 1.0);
    // The metrics request itself is in flight.
    assert_eq!(value(&samples, "voxd_requests_in_flight", &[]), 1.0);
    assert!(value(&samples, "voxd_uptime_seconds", &[]) > 0.0);
    assert!(value(&samples, "voxd_process_resident_memory_bytes", &[]) > 1e6);

    // The engine the daemon started, as `status` reports it.
    let status = conn.ok("status", json!({}));
    let stt = &status["engines"][0];
    assert_eq!(stt["name"], "stt");
    let stt_rss = value(
        &samples,
        "voxd_engine_resident_memory_bytes",
        &[("engine", "stt")],
    );
    assert!(stt_rss > 1e5, "worker RSS {stt_rss}");
    assert_eq!(
        value(
            &samples,
            "voxd_engine_state",
            &[("engine", "stt"), ("state", "ready")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "voxd_engine_state",
            &[("engine", "stt"), ("state", "stopped")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &samples,
            "voxd_engine_state",
            &[("engine", "llm"), ("state", "stopped")]
        ),
        1.0
    );
    assert_eq!(
        value(&samples, "voxd_engine_restarts_total", &[("engine", "stt")]),
        0.0
    );
    assert_eq!(
        value(&samples, "voxd_engine_queue_depth", &[("engine", "llm")]),
        0.0
    );

    // The CLI prints the same text.
    let (ok, out, err) = daemon.home.run(&["metrics"]);
    assert!(ok, "{err}");
    let cli = parse(&out);
    assert_eq!(
        value(
            &cli,
            "voxd_requests_total",
            &[("command", "metrics"), ("code", "ok")]
        ),
        1.0
    );
}

#[test]
fn the_http_endpoint_serves_metrics_and_health() {
    let daemon = Daemon::start(&echo_engines_config(HTTP_ON));
    let mut conn = daemon.connect();
    let addr = conn.ok("metrics", json!({}))["http"]
        .as_str()
        .expect("the endpoint's address")
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let (status, content_type, body) = http(&addr, "GET", "/metrics");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let samples = parse(&body);
    assert_eq!(
        value(
            &samples,
            "voxd_requests_total",
            &[("command", "metrics"), ("code", "ok")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "voxd_engine_state",
            &[("engine", "stt"), ("state", "stopped")]
        ),
        1.0
    );

    let (status, content_type, body) = http(&addr, "GET", "/health");
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(
        health["engines"],
        json!({"stt": "stopped", "llm": "stopped"})
    );

    assert_eq!(http(&addr, "GET", "/nope").0, 404);
    assert_eq!(http(&addr, "POST", "/metrics").0, 405);
    assert_eq!(http(&addr, "HEAD", "/health").0, 200);

    // A crashed engine waiting out its backoff makes the daemon degraded.
    conn.ok("engine", json!({"name": "stt", "action": "start"}));
    let pid = conn.ok("status", json!({}))["engines"][0]["pid"]
        .as_u64()
        .unwrap();
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    wait_until("the crash to show in /health", || {
        let (_, _, body) = http(&addr, "GET", "/health");
        body.contains("\"degraded\"")
    });
    let (status, _, body) = http(&addr, "GET", "/health");
    assert_eq!(status, 200);
    assert!(body.contains("\"stt\":\"backoff\""), "{body}");
}

/// 1,100 half-sent requests from any local user once used up the
/// daemon's 1,024 file descriptors: the socket and /health stopped
/// answering. Now the endpoint keeps at most 64 connections (more are
/// closed at once), drops one whose headers do not come within 10 s, and
/// the daemon's open-file limit is raised at start: the control socket
/// answers throughout, and /health once the stalled ones are gone.
#[test]
fn half_sent_requests_neither_exhaust_nor_block_the_daemon() {
    let daemon = Daemon::start(&echo_engines_config(HTTP_ON));
    let mut conn = daemon.connect();
    let addr = conn.ok("metrics", json!({}))["http"]
        .as_str()
        .unwrap()
        .to_owned();
    let stalled: Vec<TcpStream> = (0..1100)
        .filter_map(|_| {
            let mut s = TcpStream::connect(&addr).ok()?;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").ok()?;
            Some(s)
        })
        .collect();
    assert_eq!(conn.ok("ping", json!({}))["pong"], true);
    // Each stalled connection ends (closed at once past the limit, or at
    // the header timeout), never left hanging.
    for mut s in stalled {
        s.set_read_timeout(Some(support::scaled_secs(30))).unwrap();
        let mut rest = Vec::new();
        let read = s.read_to_end(&mut rest);
        assert!(
            read.is_ok()
                || read
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "a half-sent request was left open: {read:?}"
        );
    }
    let (status, _, body) = http(&addr, "GET", "/health");
    assert_eq!(status, 200, "{body}");
    assert_eq!(conn.ok("ping", json!({}))["pong"], true);
}

/// The old `[metrics] listen` still serves (as the HTTP API's address),
/// but beyond loopback only with a token: `allow_remote` no longer opens it.
#[test]
fn the_endpoint_stays_on_loopback_unless_a_token_guards_it() {
    let remote = "\n[metrics]\nlisten = \"0.0.0.0:0\"\nallow_remote = true\n";
    let home = Home::new(&echo_engines_config(remote));
    let out = home.voxd(&["serve"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("voxd http token"), "{err}");
    assert!(!home.socket().exists(), "refused before serving");

    let (made, token, _) = home.run(&["http", "token"]);
    assert!(made);
    let daemon = Daemon::start_in(home);
    let addr = daemon.connect().ok("metrics", json!({}))["http"]
        .as_str()
        .unwrap()
        .replace("0.0.0.0", "127.0.0.1");
    assert_eq!(
        http(&addr, "GET", "/health").0,
        200,
        "health needs no token"
    );
    assert_eq!(http(&addr, "GET", "/metrics").0, 401);
    let (status, _, body) = support::http_request(
        &addr,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            token.trim()
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert!(daemon.log().contains("metrics.listen is deprecated"));
}

/// The last (+Inf) bucket of a histogram: how many observations it has.
fn observations(samples: &[prometheus_parse::Sample], metric: &str) -> f64 {
    let found = samples
        .iter()
        .find(|s| s.metric == metric)
        .unwrap_or_else(|| panic!("no {metric}"));
    match &found.value {
        prometheus_parse::Value::Histogram(buckets) => buckets.last().unwrap().count,
        other => panic!("{metric} is not a histogram: {other:?}"),
    }
}

/// The pipeline's own metrics after real work: a transcription (whisper
/// tiny.en in the real `voxd-stt`), a spoken reply (Piper), a question to
/// the notes (MiniLM, SQLite) and a captioned image (the tiny BLIP).
#[test]
fn pipeline_metrics_follow_real_requests() {
    let store = support::test_model("whisper-tiny.en")
        .parent()
        .unwrap()
        .to_path_buf();
    let home = Home::new("");
    let root = home.path().canonicalize().unwrap();
    let (notes, images) = (root.join("notes"), root.join("images"));
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(
        notes.join("home.md"),
        "# Home\n\nThe wifi password is kettle-47-moon.\n\nThe bins go out on Monday.\n",
    )
    .unwrap();
    let config = format!(
        "[models]\ndir = {:?}\nsources = [\"pypi\"]\n\n\
         [engines.stt]\ncommand = {:?}\n\n\
         [tts]\nvoice = \"piper-en_US-joe-medium\"\n\n[audio]\noutput = \"null\"\n\n\
         [rag]\nnotes = [{:?}]\ndebounce_ms = 200\n\n\
         [vision]\nfolders = [{:?}]\nmodel = {:?}\nsettle_ms = 300\nidle_unload_secs = 0\n",
        store.display().to_string(),
        support::worker_bin("voxd-stt").display().to_string(),
        notes.display().to_string(),
        images.display().to_string(),
        support::tiny_blip_model().display().to_string(),
    );
    std::fs::write(home.path().join("voxd.toml"), config).unwrap();
    let daemon = Daemon::start_in(home);
    let mut conn = daemon.connect();
    let mut sub = daemon.connect();
    sub.send_raw(b"{\"id\":\"s\",\"cmd\":\"subscribe\",\"events\":[\"image.\"]}\n");
    assert_eq!(sub.read().unwrap()["ok"], json!(true));

    let clip = support::test_audio().join("piper/00.wav");
    let transcript = conn.ok("transcribe", json!({ "path": clip }));
    assert!(!transcript["text"].as_str().unwrap().is_empty());
    conn.ok(
        "say",
        json!({ "text": "Hello there. The weather is fine." }),
    );
    support::wait_for_notes(&mut conn, 1);
    let answer = conn.ok(
        "ask",
        json!({ "question": "What is the wifi password?", "mode": "extractive" }),
    );
    assert!(answer["text"].as_str().unwrap().contains("kettle-47-moon"));
    let image = images.join("a.png");
    let mut png = std::io::Cursor::new(Vec::new());
    support::tiny_blip::test_image(0, 64, 64)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    std::fs::write(&image, png.into_inner()).unwrap();
    loop {
        let msg = sub.read().expect("an image event");
        if msg["event"] == json!("image.captioned") {
            break;
        }
        assert_ne!(msg["event"], json!("image.error"), "{msg}");
    }

    let scrape = || {
        let mut conn = daemon.connect();
        parse(conn.ok("metrics", json!({}))["text"].as_str().unwrap())
    };
    let mut samples = scrape();
    // The index gauges follow the indexer's jobs; the caption's job ends
    // just after `image.captioned`.
    wait_until("the index gauges count the caption", || {
        samples = scrape();
        value(&samples, "voxd_rag_index_images", &[]) == 1.0
    });
    assert_eq!(observations(&samples, "voxd_stt_real_time_factor"), 1.0);
    assert_eq!(
        observations(&samples, "voxd_stt_decode_duration_seconds"),
        1.0
    );
    // Two sentences: two chunks, one first chunk.
    assert_eq!(observations(&samples, "voxd_tts_real_time_factor"), 2.0);
    assert_eq!(
        observations(&samples, "voxd_tts_first_chunk_latency_seconds"),
        1.0
    );
    assert!(observations(&samples, "voxd_rag_query_duration_seconds") >= 1.0);
    assert_eq!(value(&samples, "voxd_rag_index_files", &[]), 1.0);
    assert_eq!(value(&samples, "voxd_rag_index_chunks", &[]), 3.0);
    assert_eq!(
        value(
            &samples,
            "voxd_vision_captions_total",
            &[("outcome", "captioned")]
        ),
        1.0
    );
    assert_eq!(
        observations(&samples, "voxd_vision_caption_duration_seconds"),
        1.0
    );
}
