//! The daemon supervising real worker processes (the test-only `voxd-echo`
//! worker stands in for `voxd-stt` / `voxd-llm`), seen through the socket.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{worker_bin, Conn, Daemon};

fn config(stt_args: &str, extra: &str) -> String {
    let echo = worker_bin("voxd-echo");
    format!(
        r#"
[engines]
memory_budget_mb = 0
idle_unload_secs = 0
health_interval_secs = 1
health_timeout_secs = {timeout}
restart_backoff_initial_ms = 50
restart_backoff_max_ms = 200
{extra}
[engines.stt]
command = "{echo}"
args = [{stt_args}]
memory_mb = 10

[engines.llm]
command = "{echo}"
args = ["--alloc-mb", "24"]
memory_mb = 30
"#,
        echo = echo.display(),
        timeout = support::health_timeout_secs(),
    )
}

fn engine(conn: &mut Conn, name: &str) -> Value {
    let status = conn.ok("status", json!({}));
    status["engines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
        .unwrap()
}

fn wait_for(conn: &mut Conn, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + support::scaled_secs(60);
    loop {
        let e = engine(conn, name);
        if pred(&e) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {e}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn kill9(pid: u64) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}

#[test]
fn engines_start_on_request_and_report_pid_and_rss() {
    let daemon = Daemon::start(&config("", ""));
    let mut conn = daemon.connect();
    let stt = engine(&mut conn, "stt");
    assert_eq!(stt["state"], "stopped");
    assert_eq!(stt["pid"], Value::Null);

    let started = conn.ok("engine", json!({"name": "llm", "action": "start"}));
    assert_eq!(started["engine"]["state"], "ready");
    let status = conn.ok("status", json!({}));
    let llm = status["engines"][1].clone();
    assert_eq!(llm["name"], "llm");
    let pid = llm["pid"].as_u64().unwrap();
    assert!(alive(pid));
    // The worker touched 24 MiB, so its measured RSS shows it.
    assert!(llm["rss_bytes"].as_u64().unwrap() > 24 << 20, "{llm}");
    assert!(status["rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(status["budget"]["resident"], json!(["llm"]));

    let stopped = conn.ok("engine", json!({"name": "llm", "action": "stop"}));
    assert_eq!(stopped["engine"]["state"], "stopped");
    assert!(!alive(pid));

    let err = conn.request("engine", json!({"name": "tts", "action": "start"}));
    assert_eq!(err["error"]["code"], "invalid_params");
    assert!(err["error"]["message"].as_str().unwrap().contains("tts"));
}

#[test]
fn a_killed_worker_is_reported_and_restarted() {
    let daemon = Daemon::start(&config("", ""));
    let mut conn = daemon.connect();
    let mut events = daemon.connect();
    events.ok("subscribe", json!({"events": ["engine."]}));

    conn.ok("engine", json!({"name": "stt", "action": "start"}));
    let pid = engine(&mut conn, "stt")["pid"].as_u64().unwrap();
    kill9(pid);
    let crashed = wait_for(&mut conn, "stt", "the crash to be noticed", |e| {
        e["state"] == "backoff"
    });
    assert!(
        crashed["last_error"].as_str().unwrap().contains("signal"),
        "{crashed}"
    );

    conn.ok("engine", json!({"name": "stt", "action": "start"}));
    let restarted = engine(&mut conn, "stt");
    assert_eq!(restarted["state"], "ready");
    assert_eq!(restarted["restarts"], 1);
    assert_ne!(restarted["pid"].as_u64().unwrap(), pid);

    // Subscribers saw the whole story.
    let mut states = vec![];
    while states.len() < 6 {
        let ev = events.read().unwrap();
        assert_eq!(ev["event"], "engine.state");
        states.push(ev["data"]["state"].as_str().unwrap().to_string());
    }
    // An explicit start clears the backoff (→ stopped) before spawning.
    assert_eq!(
        states,
        ["starting", "ready", "backoff", "stopped", "starting", "ready"]
    );
}

#[test]
fn a_hung_worker_is_killed_by_the_health_check_and_reported() {
    // A one-second ping timeout: the health check is what is tested.
    let cfg = config(r#""--ignore-pings""#, "").replace(
        &format!("health_timeout_secs = {}", support::health_timeout_secs()),
        "health_timeout_secs = 1",
    );
    let daemon = Daemon::start(&cfg);
    let mut conn = daemon.connect();
    conn.ok("engine", json!({"name": "stt", "action": "start"}));
    let pid = engine(&mut conn, "stt")["pid"].as_u64().unwrap();
    let hung = wait_for(&mut conn, "stt", "the health check", |e| {
        e["state"] == "backoff"
    });
    let err = hung["last_error"].as_str().unwrap();
    assert!(err.contains("ping") || err.contains("respon"), "{hung}");
    assert!(!alive(pid), "the hung worker was killed");
    conn.ok("engine", json!({"name": "stt", "action": "start"}));
    assert_eq!(engine(&mut conn, "stt")["restarts"], 1);
}

#[test]
fn a_worker_that_cannot_start_gives_a_precise_error() {
    let cfg = config("", "").replace(
        r#"args = ["--alloc-mb", "24"]"#,
        r#"args = ["--crash-on-start"]"#,
    );
    let daemon = Daemon::start(&cfg);
    let mut conn = daemon.connect();
    let reply = conn.request("engine", json!({"name": "llm", "action": "start"}));
    assert_eq!(reply["error"]["code"], "engine_failed", "{reply}");
    assert!(
        reply["error"]["message"].as_str().unwrap().contains("llm"),
        "{reply}"
    );
    assert!(engine(&mut conn, "llm")["last_error"].is_string());
    // The daemon keeps serving.
    assert_eq!(conn.ok("ping", json!({}))["pong"], true);
}

#[test]
fn a_missing_worker_binary_says_what_to_set() {
    let cfg = config("", "").replacen(
        &format!("command = \"{}\"", worker_bin("voxd-echo").display()),
        "command = \"/nonexistent/voxd-stt\"",
        1,
    );
    let daemon = Daemon::start(&cfg);
    let reply = daemon
        .connect()
        .request("engine", json!({"name": "stt", "action": "start"}));
    let msg = reply["error"]["message"].as_str().unwrap();
    assert!(msg.contains("/nonexistent/voxd-stt"), "{msg}");
}

#[test]
fn the_budget_keeps_heavy_engines_one_at_a_time() {
    // Room for the daemon and one engine, not both.
    let daemon = Daemon::start(
        &config("", "")
            .replace("memory_budget_mb = 0", "memory_budget_mb = 100")
            .replace("memory_mb = 10", "memory_mb = 50")
            .replace("memory_mb = 30", "memory_mb = 50"),
    );
    let mut conn = daemon.connect();
    conn.ok("engine", json!({"name": "stt", "action": "start"}));
    let stt_pid = engine(&mut conn, "stt")["pid"].as_u64().unwrap();
    conn.ok("engine", json!({"name": "llm", "action": "start"}));
    let status = conn.ok("status", json!({}));
    assert_eq!(status["budget"]["resident"], json!(["llm"]), "{status}");
    assert!(!alive(stt_pid), "stt was stopped to make room");
    assert_eq!(engine(&mut conn, "stt")["state"], "stopped");
}

#[test]
fn shutdown_stops_every_worker() {
    let mut daemon = Daemon::start(&config("", ""));
    let mut conn = daemon.connect();
    conn.ok("engine", json!({"name": "stt", "action": "start"}));
    conn.ok("engine", json!({"name": "llm", "action": "start"}));
    let pids: Vec<u64> = ["stt", "llm"]
        .iter()
        .map(|n| engine(&mut conn, n)["pid"].as_u64().unwrap())
        .collect();
    assert!(daemon.terminate().success(), "{}", daemon.log());
    for pid in pids {
        assert!(!alive(pid), "worker {pid} outlived the daemon");
    }
}
