//! The engine host against the real `voxd-echo` test worker.
//!
//! Timeouts are small so the file runs quickly; assertions are about
//! behaviour, with generous deadlines only to fail instead of hanging.

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use voxd::config::{EnginesConfig, LlmEngineConfig, SttEngineConfig};
use voxd::engine::{EngineError, EngineEvent, EngineState, EngineStatus, Host};
use voxd::events::Events;
use voxd_proto::Frame;

/// Generous upper bound for anything the tests wait on (60 s, scaled by `VOXD_TEST_TIME_SCALE`).
fn deadline() -> Duration {
    support::scaled_secs(60)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Both engines run `voxd-echo`; no budget, no idle stop, no health checks
/// unless a test sets them.
fn config(stt_args: &[&str], llm_args: &[&str]) -> EnginesConfig {
    EnginesConfig {
        memory_budget_mb: 0,
        idle_unload_secs: 0,
        health_interval_secs: 0,
        health_timeout_secs: 1,
        restart_backoff_initial_ms: 20,
        restart_backoff_max_ms: 200,
        stt: SttEngineConfig {
            command: support::worker_bin("voxd-echo"),
            args: args(stt_args),
            memory_mb: 10,
            threads: 1,
        },
        llm: LlmEngineConfig {
            command: support::worker_bin("voxd-echo"),
            args: args(llm_args),
            memory_mb: 10,
            threads: 1,
            context: 512,
            batch: 64,
            gpu_layers: 0,
            max_tokens: 16,
            model: Default::default(),
            chat_template: String::new(),
            persist_cache: false,
            ..voxd::config::Config::builtin().engines.llm
        },
    }
}

fn host(cfg: &EnginesConfig) -> Host {
    Host::new(cfg, Events::new(64), None)
}

fn echo(data: serde_json::Value) -> Frame {
    Frame::new("echo").with_data(data)
}

fn status_of(host: &Host, name: &str) -> EngineStatus {
    host.status()
        .into_iter()
        .find(|s| s.name == name)
        .expect("engine in status")
}

fn alive(pid: u32) -> bool {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("nonzero pid");
    rustix::process::test_kill_process(pid).is_ok()
}

/// Polls `cond` until it holds, failing the test after [`deadline`].
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + deadline();
    while !cond() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(deadline(), fut)
        .await
        .expect("the engine host hung")
}

#[tokio::test]
async fn echo_round_trip_with_payload() {
    let host = host(&config(&[], &[]));
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let request = echo(json!({"text": "hello"})).with_payload(payload.clone());
    let mut reply = within(host.request("stt", request)).await.expect("request");
    let frame = within(reply.next()).await.expect("a frame").expect("ok");
    assert_eq!(frame.kind, "echo");
    assert_eq!(frame.data["text"], "hello");
    assert_eq!(frame.payload, payload);
    assert!(
        within(reply.next()).await.is_none(),
        "reply ends after `done`"
    );
    assert_eq!(reply.done().expect("done frame").data["frames"], 1);
    host.shutdown().await;
}

#[tokio::test]
async fn streamed_replies_arrive_in_order() {
    let host = host(&config(&[], &[]));
    let reply = within(host.request("stt", echo(json!({"repeat": 3, "delay_ms": 5}))))
        .await
        .expect("request");
    let frames = within(reply.collect()).await.expect("reply");
    assert_eq!(frames.len(), 3);
    assert!(frames
        .iter()
        .all(|f| f.kind == "echo" && f.data["repeat"] == 3));
    host.shutdown().await;
}

#[tokio::test]
async fn spawns_on_demand_and_reports_pid_rss_and_events() {
    let events = Events::new(64);
    let mut rx = events.subscribe();
    let host = Host::new(&config(&["--alloc-mb", "16"], &[]), events, None);
    let before = status_of(&host, "stt");
    assert_eq!(before.state, EngineState::Stopped);
    assert_eq!(before.pid, None);

    let reply = within(host.request("stt", echo(json!({}))))
        .await
        .expect("request");
    within(reply.collect()).await.expect("reply");

    let stt = status_of(&host, "stt");
    assert_eq!(stt.state, EngineState::Ready);
    let pid = stt.pid.expect("pid");
    assert!(alive(pid));
    let rss = stt.rss_bytes.expect("rss");
    assert!(
        rss >= 16 * 1024 * 1024,
        "rss {rss} should include the 16 MiB ballast"
    );
    assert_eq!(stt.restarts, 0);
    assert_eq!(
        status_of(&host, "llm").state,
        EngineState::Stopped,
        "llm not started"
    );
    assert!(host.budget().resident.contains(&"stt".to_owned()));

    let mut states = Vec::new();
    while let Ok(event) = rx.try_recv() {
        let Some(EngineEvent::State { engine, state, .. }) = event.get() else {
            panic!("not an engine event: {event:?}");
        };
        assert_eq!(engine, "stt");
        states.push(*state);
    }
    use EngineState::*;
    assert_eq!(states, [Starting, Ready, Busy, Ready]);
    host.shutdown().await;
}

#[tokio::test]
async fn queued_requests_share_one_worker() {
    let host = host(&config(&[], &[]));
    let a = host.request("llm", echo(json!({"n": 1, "repeat": 2, "delay_ms": 20})));
    let first = within(a).await.expect("first");
    let pid = first.pid();
    let h2 = host.clone();
    let second = tokio::spawn(async move {
        let reply = h2.request("llm", echo(json!({"n": 2}))).await?;
        let pid = reply.pid();
        reply.collect().await.map(|frames| (pid, frames))
    });
    eventually("second request queued", || {
        status_of(&host, "llm").queued == 1
    })
    .await;
    let frames = within(first.collect()).await.expect("first reply");
    assert!(frames.iter().all(|f| f.data["n"] == 1));
    let (pid2, frames) = within(second).await.expect("join").expect("second reply");
    assert_eq!(pid2, pid);
    assert_eq!(frames[0].data["n"], 2);
    host.shutdown().await;
}

#[tokio::test]
async fn worker_error_reply_is_an_error_and_the_worker_stays() {
    let host = host(&config(&[], &[]));
    let reply = within(host.request("stt", Frame::new("fail").with_data(json!({"text": "nope"}))))
        .await
        .expect("request");
    let err = within(reply.collect()).await.expect_err("worker error");
    assert!(
        matches!(&err, EngineError::Worker { code, text, .. } if code == "failed" && text == "nope"),
        "{err}"
    );
    assert_eq!(status_of(&host, "stt").state, EngineState::Ready);
    let err = host
        .request("stt", Frame::new("ping"))
        .await
        .err()
        .expect("reserved");
    assert!(matches!(err, EngineError::ReservedKind { .. }), "{err}");
    host.shutdown().await;
}

#[tokio::test]
async fn dropping_a_reply_cancels_it_and_the_next_request_is_clean() {
    let host = host(&config(&[], &[]));
    let mut reply =
        within(host.request("stt", echo(json!({"n": 1, "repeat": 1000, "delay_ms": 10}))))
            .await
            .expect("request");
    let pid = reply.pid();
    within(reply.next()).await.expect("frame").expect("ok");
    drop(reply);
    let frames = within(async {
        host.request("stt", echo(json!({"n": 2})))
            .await?
            .collect()
            .await
    })
    .await
    .expect("next request");
    assert_eq!(frames.len(), 1);
    assert_eq!(
        frames[0].data["n"], 2,
        "no stale frames of the cancelled reply"
    );
    assert_eq!(status_of(&host, "stt").pid, Some(pid), "same worker");
    assert_eq!(status_of(&host, "stt").restarts, 0);
    host.shutdown().await;
}

#[tokio::test]
async fn crash_mid_request_gives_a_precise_error_then_restarts() {
    let host = host(&config(&[], &[]));
    within(host.start("stt")).await.expect("start");
    let pid = status_of(&host, "stt").pid.expect("pid");
    let reply = within(host.request("stt", Frame::new("crash")))
        .await
        .expect("request");
    let err = within(reply.collect()).await.expect_err("crash");
    match &err {
        EngineError::WorkerCrashed { engine, status, .. } => {
            assert_eq!(engine, "stt");
            assert!(
                status.contains("signal"),
                "abort shows as a signal: {status}"
            );
        }
        other => panic!("expected WorkerCrashed, got {other}"),
    }
    let stt = status_of(&host, "stt");
    assert_eq!(stt.state, EngineState::Backoff);
    assert!(stt
        .last_error
        .expect("last error")
        .contains("exited unexpectedly"));

    let frames = within(async {
        host.request("stt", echo(json!({"after": "crash"})))
            .await?
            .collect()
            .await
    })
    .await
    .expect("request after the crash");
    assert_eq!(frames[0].data["after"], "crash");
    let stt = status_of(&host, "stt");
    assert_eq!(stt.restarts, 1);
    assert_eq!(stt.state, EngineState::Ready);
    assert_ne!(stt.pid, Some(pid));
    assert!(!alive(pid));
    host.shutdown().await;
}

#[tokio::test]
async fn a_worker_breaking_the_protocol_is_killed() {
    let host = host(&config(&[], &[]));
    let reply = within(host.request("stt", Frame::new("garbage")))
        .await
        .expect("request");
    let pid = reply.pid();
    let err = within(reply.collect()).await.expect_err("protocol error");
    assert!(matches!(err, EngineError::Faulty { .. }), "{err}");
    assert!(err.to_string().contains("protocol error"), "{err}");
    assert!(!alive(pid));
    assert_eq!(status_of(&host, "stt").state, EngineState::Backoff);
    within(async { host.request("stt", echo(json!({}))).await?.collect().await })
        .await
        .expect("request after the fault");
    host.shutdown().await;
}

fn with_health(mut cfg: EnginesConfig) -> EnginesConfig {
    cfg.health_interval_secs = 1;
    cfg.health_timeout_secs = 1;
    cfg
}

#[tokio::test]
async fn hang_mid_request_is_caught_by_the_health_check() {
    let host = host(&with_health(config(&[], &[])));
    let mut reply = within(host.request("llm", Frame::new("hang")))
        .await
        .expect("request");
    let pid = reply.pid();
    let err = within(reply.next())
        .await
        .expect("an error")
        .expect_err("hang");
    assert!(
        matches!(&err, EngineError::Unresponsive { engine, timeout_secs: 1 } if engine == "llm"),
        "{err}"
    );
    assert!(!alive(pid), "hung worker killed");
    let frames = within(async { host.request("llm", echo(json!({}))).await?.collect().await })
        .await
        .expect("request after the hang");
    assert_eq!(frames.len(), 1);
    assert_eq!(status_of(&host, "llm").restarts, 1);
    host.shutdown().await;
}

#[tokio::test]
async fn a_worker_ignoring_pings_is_killed() {
    let host = host(&with_health(config(&["--ignore-pings"], &[])));
    within(host.start("stt")).await.expect("start");
    let pid = status_of(&host, "stt").pid.expect("pid");
    eventually("the silent worker is killed", || {
        status_of(&host, "stt").state == EngineState::Backoff
    })
    .await;
    let stt = status_of(&host, "stt");
    assert!(stt
        .last_error
        .expect("error")
        .contains("did not answer a ping"));
    assert_eq!(stt.pid, None);
    assert!(!alive(pid));
    host.shutdown().await;
}

#[tokio::test]
async fn crash_on_start_backs_off_then_fails_with_its_stderr() {
    let host = host(&config(&["--crash-on-start"], &[]));
    let err = within(host.request("stt", echo(json!({}))))
        .await
        .err()
        .expect("start fails");
    let text = err.to_string();
    assert!(matches!(err, EngineError::StartFailed { .. }), "{text}");
    assert!(
        text.contains("crashing on start as asked"),
        "stderr tail in: {text}"
    );
    assert!(text.contains("exit status: 3"), "{text}");
    let stt = status_of(&host, "stt");
    assert_eq!(stt.state, EngineState::Backoff);
    assert!(stt
        .last_error
        .expect("error")
        .contains("crashing on start as asked"));

    for _ in 1..5 {
        let err = within(host.request("stt", echo(json!({}))))
            .await
            .err()
            .expect("fails");
        assert!(matches!(err, EngineError::StartFailed { .. }), "{err}");
    }
    let stt = status_of(&host, "stt");
    assert_eq!(stt.state, EngineState::Failed);
    assert_eq!(stt.restarts, 4);
    let err = within(host.request("stt", echo(json!({}))))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, EngineError::Failed { .. }), "{err}");
    assert!(
        err.to_string().contains("crashing on start as asked"),
        "{err}"
    );
    // The other engine is unaffected.
    within(host.start("llm")).await.expect("llm starts");
    host.shutdown().await;
}

#[tokio::test]
async fn idle_workers_are_stopped() {
    let mut cfg = config(&[], &[]);
    cfg.idle_unload_secs = 1;
    let host = host(&cfg);
    within(async { host.request("stt", echo(json!({}))).await?.collect().await })
        .await
        .expect("request");
    let pid = status_of(&host, "stt").pid.expect("pid");
    eventually("idle stop", || {
        status_of(&host, "stt").state == EngineState::Stopped
    })
    .await;
    assert_eq!(status_of(&host, "stt").pid, None);
    assert_eq!(
        status_of(&host, "stt").last_error,
        None,
        "idle stop is no error"
    );
    assert!(!alive(pid));
    // And it comes back on demand.
    within(async { host.request("stt", echo(json!({}))).await?.collect().await })
        .await
        .expect("request after idle stop");
    assert_eq!(status_of(&host, "stt").restarts, 0);
    host.shutdown().await;
}

#[tokio::test]
async fn engines_that_do_not_fit_together_take_turns() {
    // Each worker really holds ~150 MiB, so their measured sizes do not fit
    // together either.
    let mut cfg = config(&["--alloc-mb", "150"], &["--alloc-mb", "150"]);
    cfg.memory_budget_mb = 300;
    cfg.stt.memory_mb = 200;
    cfg.llm.memory_mb = 200;
    let host = host(&cfg);

    // Watch the pids: never both resident, and a new worker only once the
    // other engine's worker is gone.
    let watcher_host = host.clone();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(async move {
        let mut seen: HashSet<u32> = HashSet::new();
        let mut dead_checked = Vec::new();
        loop {
            let pids: Vec<(String, u32)> = watcher_host
                .status()
                .into_iter()
                .filter_map(|s| s.pid.map(|p| (s.name, p)))
                .collect();
            assert!(pids.len() <= 1, "both engines resident at once: {pids:?}");
            for (name, pid) in pids {
                if seen.insert(pid) {
                    // Every earlier worker must be gone by now.
                    for old in &dead_checked {
                        assert!(!alive(*old), "{name} started while pid {old} still lives");
                    }
                    dead_checked.push(pid);
                }
            }
            if stop_rx.try_recv().is_ok() {
                return seen.len();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });

    let mut clients = Vec::new();
    for i in 0..6 {
        let host = host.clone();
        let engine = if i % 2 == 0 { "stt" } else { "llm" };
        clients.push(tokio::spawn(async move {
            let request = echo(json!({"i": i, "repeat": 2, "delay_ms": 20}));
            let frames = host.request(engine, request).await?.collect().await?;
            Ok::<_, EngineError>((i, frames))
        }));
    }
    for client in clients {
        let (i, frames) = within(client).await.expect("join").expect("served");
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|f| f.data["i"] == i));
    }
    stop_tx.send(()).expect("watcher alive");
    let workers = within(watcher).await.expect("watcher");
    assert!(workers >= 2, "both engines ran ({workers} workers)");
    let budget = host.budget();
    assert_eq!(budget.budget_mb, 300);
    assert!(budget.resident.len() <= 1);
    host.shutdown().await;
}

/// The configured `memory_mb` is an estimate: once a worker has served a
/// request the budget counts its measured peak, so two engines whose
/// estimates (200 + 200 MiB) exceed the budget stay resident together when
/// what they really hold (a few MiB each) fits.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn engines_whose_measured_sizes_fit_stay_resident_together() {
    let mut cfg = config(&[], &[]);
    cfg.memory_budget_mb = 300;
    cfg.stt.memory_mb = 200;
    cfg.llm.memory_mb = 200;
    let host = host(&cfg);
    assert_eq!(status_of(&host, "stt").measured_mb, None);
    within(async { host.request("stt", echo(json!({}))).await?.collect().await })
        .await
        .expect("stt served");
    let stt = status_of(&host, "stt");
    let measured = stt.measured_mb.expect("stt measured after a request");
    assert!(measured < 100, "echo worker measured at {measured} MiB");
    assert_eq!(stt.memory_mb, 200);

    within(async { host.request("llm", echo(json!({}))).await?.collect().await })
        .await
        .expect("llm served");
    let budget = host.budget();
    assert_eq!(budget.resident, ["stt", "llm"], "{budget:?}");
    assert_eq!(status_of(&host, "stt").pid, stt.pid, "stt kept its worker");
    assert!(alive(stt.pid.unwrap()));
    assert!(budget.used_mb <= 300, "{budget:?}");
    host.shutdown().await;
}

/// A size measured on a model is remembered across restarts of the host,
/// for that model only: after a restart the budget counts it before any
/// request, while another model, or the same file re-pulled, starts again
/// from the estimate (here far too large for the budget).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn measured_sizes_are_remembered_per_model_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sizes = dir.path().join("cache/voxd/engine-sizes.json");
    let (model, other) = (dir.path().join("a.bin"), dir.path().join("b.bin"));
    std::fs::write(&model, b"weights").expect("model");
    std::fs::write(&other, b"other weights").expect("model");
    let mut cfg = config(&["--alloc-mb", "40"], &[]);
    cfg.memory_budget_mb = 2000;
    cfg.stt.memory_mb = 10_000;
    let on = |path: &Path| echo(json!({ "model": path }));
    let serve = |host: &Host, path: &Path| {
        let (host, request) = (host.clone(), on(path));
        async move { within(async { host.request("stt", request).await?.collect().await }).await }
    };
    let too_big = |result: Result<Vec<Frame>, EngineError>| {
        matches!(
            result,
            Err(EngineError::TooBigForBudget {
                memory_mb: 10_000,
                ..
            })
        )
    };

    // Measured once without a budget: its estimate alone does not fit.
    let mut open = cfg.clone();
    open.memory_budget_mb = 0;
    let host = Host::new(&open, Events::new(64), Some(sizes.clone()));
    serve(&host, &model).await.expect("served");
    let measured = status_of(&host, "stt").measured_mb.expect("measured");
    assert!((40..200).contains(&measured), "{measured} MiB");
    host.shutdown().await;

    let host = Host::new(&cfg, Events::new(64), Some(sizes.clone()));
    assert_eq!(status_of(&host, "stt").measured_mb, Some(measured));
    assert_eq!(status_of(&host, "llm").measured_mb, None);
    assert!(host.all_fit(), "{:?}", host.budget());
    serve(&host, &model)
        .await
        .expect("admitted by its remembered size");
    host.stop("stt").await.expect("stopped");
    assert!(
        too_big(serve(&host, &other).await),
        "another model is estimated"
    );
    serve(&host, &model).await.expect("the first model again");
    host.shutdown().await;

    std::fs::write(&model, b"re-pulled weights").expect("model");
    let host = Host::new(&cfg, Events::new(64), Some(sizes));
    assert_eq!(status_of(&host, "stt").measured_mb, None);
    assert!(!host.all_fit());
    assert!(
        too_big(serve(&host, &model).await),
        "a changed file is estimated"
    );
    host.shutdown().await;
}

#[tokio::test]
async fn an_engine_bigger_than_the_budget_is_refused() {
    let mut cfg = config(&[], &[]);
    cfg.memory_budget_mb = 300;
    cfg.llm.memory_mb = 400;
    let host = host(&cfg);
    let err = within(host.request("llm", echo(json!({}))))
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            EngineError::TooBigForBudget {
                memory_mb: 400,
                budget_mb: 300,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("400 MiB") && text.contains("300 MiB"),
        "{text}"
    );
    assert_eq!(status_of(&host, "llm").pid, None);
    host.shutdown().await;
}

#[tokio::test]
async fn a_missing_worker_binary_is_named() {
    let mut cfg = config(&[], &[]);
    cfg.stt.command = PathBuf::new();
    cfg.llm.command = PathBuf::from("/nonexistent/voxd-llm");
    let host = host(&cfg);
    let err = host
        .request("stt", echo(json!({})))
        .await
        .err()
        .expect("no binary");
    let text = err.to_string();
    assert!(matches!(err, EngineError::WorkerNotFound { .. }), "{text}");
    assert!(
        text.contains("voxd-stt not found") && text.contains("engines.stt.command"),
        "{text}"
    );
    let err = host
        .request("llm", echo(json!({})))
        .await
        .err()
        .expect("bad path");
    assert!(matches!(err, EngineError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/voxd-llm"), "{err}");
    let err = host
        .request("tts", echo(json!({})))
        .await
        .err()
        .expect("unknown");
    assert!(matches!(err, EngineError::UnknownEngine { .. }), "{err}");
}

#[tokio::test]
async fn shutdown_leaves_no_child_behind() {
    let host = host(&config(&["--startup-delay-ms", "50"], &[]));
    within(host.start("stt")).await.expect("stt");
    within(host.start("llm")).await.expect("llm");
    let pids: Vec<u32> = host.status().iter().filter_map(|s| s.pid).collect();
    assert_eq!(pids.len(), 2);

    // A request in flight during shutdown ends with a clear error.
    let mut reply = within(host.request("llm", echo(json!({"repeat": 1000, "delay_ms": 10}))))
        .await
        .expect("request");
    within(reply.next()).await.expect("frame").expect("ok");
    within(host.shutdown()).await;
    let err = within(reply.collect()).await.expect_err("stopped");
    assert!(matches!(err, EngineError::Stopped { .. }), "{err}");

    for pid in pids {
        assert!(!alive(pid), "worker {pid} survived shutdown");
    }
    assert!(host
        .status()
        .iter()
        .all(|s| s.pid.is_none() && s.state == EngineState::Stopped));
    let err = host
        .request("stt", echo(json!({})))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, EngineError::ShuttingDown), "{err}");
}
