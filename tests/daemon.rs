//! The daemon and its control socket, end to end: the real `voxd` binary on
//! a real Unix socket in a temporary runtime directory.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

use serde_json::{json, Value};
use support::{Conn, Daemon, Home};

#[test]
fn every_command_answers_with_its_id() {
    let daemon = Daemon::start("");
    let mut conn = daemon.connect();

    let pong = conn.ok("ping", json!({}));
    assert_eq!(pong, json!({ "pong": true, "protocol": 1 }));

    let status = conn.ok("status", json!({}));
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["profile"], "tiny");
    assert_eq!(status["pid"], json!(daemon.child.id()));
    assert!(status["uptime_secs"].as_f64().unwrap() >= 0.0);
    assert_eq!(status["queue_depth"], 0);
    assert_eq!(status["socket"], json!(daemon.home.socket()));

    let config = conn.ok("config", json!({}));
    assert_eq!(config["config"]["profile"], "tiny");
    assert_eq!(config["config"]["engines"]["memory_budget_mb"], 800);
    assert_eq!(
        config["origins"]["engines.memory_budget_mb"],
        "profile tiny (config/profiles/tiny.toml)"
    );

    // Ids may be strings or numbers and come back unchanged.
    conn.send_raw(b"{\"id\":\"abc\",\"cmd\":\"ping\"}\n");
    assert_eq!(conn.read().unwrap()["id"], "abc");
}

#[test]
fn config_layers_reach_the_daemon_with_their_origins() {
    let home = Home::new("[engines]\nidle_unload_secs = 42\n");
    let daemon = Daemon::start_with_env(home, &[("VOXD_PROFILE", "2gb")]);
    let config = daemon.connect().ok("config", json!({}));
    assert_eq!(config["config"]["profile"], "2gb");
    assert_eq!(config["config"]["engines"]["idle_unload_secs"], 42);
    assert_eq!(config["config"]["engines"]["memory_budget_mb"], 1700);
    assert_eq!(
        config["origins"]["profile"],
        "environment variable VOXD_PROFILE"
    );
    let file = daemon.home.path().join("voxd.toml");
    assert_eq!(
        config["origins"]["engines.idle_unload_secs"],
        json!(file.display().to_string())
    );
}

#[test]
fn bad_requests_get_error_replies_and_the_connection_stays_usable() {
    let daemon = Daemon::start("");
    let mut conn = daemon.connect();
    let cases: &[(&str, Value, &str)] = &[
        ("{not json", Value::Null, "parse_error"),
        ("[1, 2, 3]", Value::Null, "invalid_request"),
        (r#"{"cmd":"ping"}"#, Value::Null, "invalid_request"),
        (r#"{"id":[1],"cmd":"ping"}"#, Value::Null, "invalid_request"),
        (r#"{"id":5}"#, json!(5), "invalid_request"),
        (r#"{"id":6,"cmd":"fly"}"#, json!(6), "unknown_command"),
        (r#"{"id":7,"cmd":42}"#, json!(7), "invalid_request"),
        (
            r#"{"id":8,"cmd":"subscribe","events":"all"}"#,
            json!(8),
            "invalid_params",
        ),
        (
            r#"{"id":9,"cmd":"status","verbose":1}"#,
            json!(9),
            "invalid_params",
        ),
    ];
    for (line, id, code) in cases {
        conn.send_raw(format!("{line}\n").as_bytes());
        let reply = conn.read().expect("connection stays open");
        assert_eq!(reply["ok"], json!(false), "{line}: {reply}");
        assert_eq!(reply["id"], *id, "{line}: {reply}");
        assert_eq!(reply["error"]["code"], *code, "{line}: {reply}");
        assert!(!reply["error"]["message"].as_str().unwrap().is_empty());
        // Still usable after every bad line.
        assert_eq!(conn.ok("ping", json!({}))["pong"], true);
    }
    // Invalid UTF-8 and blank lines.
    conn.send_raw(b"\xff\xfe\n\n   \n");
    assert_eq!(conn.read().unwrap()["error"]["code"], "parse_error");
    assert_eq!(conn.ok("ping", json!({}))["pong"], true);
    assert!(daemon.log().contains("voxd ready"));
}

#[test]
fn an_oversized_line_is_refused_and_only_that_connection_closed() {
    let daemon = Daemon::start("");
    let mut other = daemon.connect();
    let mut conn = daemon.connect();
    let mut big = vec![b'x'; 1024 * 1024 + 10];
    big.push(b'\n');
    // The daemon may close before reading it all; that is the point.
    let _ = conn.try_send_raw(&big);
    let reply = conn.read().expect("an error reply before closing");
    assert_eq!(reply["error"]["code"], "line_too_long");
    assert_eq!(conn.read(), None, "the connection is closed");
    assert_eq!(other.ok("ping", json!({}))["pong"], true);
    // A line just under the limit is read and answered normally.
    let mut conn = daemon.connect();
    let padding = "x".repeat(1024 * 1024 - 100);
    conn.send_raw(format!("{{\"id\":1,\"cmd\":\"ping\",\"pad\":\"{padding}\"}}\n").as_bytes());
    assert_eq!(conn.read().unwrap()["error"]["code"], "invalid_params");
}

#[test]
fn sixty_four_clients_at_once_do_not_block_each_other() {
    let daemon = Daemon::start("");
    // A client that sends half a line and stalls must not hold anyone up.
    let mut stalled = daemon.connect();
    stalled.send_raw(b"{\"id\":1,\"cmd\":\"pi");
    let socket = daemon.home.socket();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(64));
    let clients: Vec<_> = (0..64)
        .map(|i| {
            let socket = socket.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut conn = Conn::connect(&socket);
                barrier.wait(); // all 64 connected at the same time
                for _ in 0..10 {
                    assert_eq!(conn.ok("ping", json!({}))["pong"], true);
                }
                let status = conn.ok("status", json!({}));
                assert!(
                    status["connections"].as_u64().unwrap() >= 2,
                    "{i}: {status}"
                );
                status["connections"].as_u64().unwrap()
            })
        })
        .collect();
    let most = clients
        .into_iter()
        .map(|c| c.join().unwrap())
        .max()
        .unwrap();
    assert!(
        most >= 64,
        "64 clients were connected at once, status saw {most}"
    );
    stalled.send_raw(b"ng\"}\n");
    assert_eq!(stalled.read().unwrap()["result"]["pong"], true);
}

#[test]
fn socket_is_private() {
    let daemon = Daemon::start("");
    let socket = daemon.home.socket();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
}

/// What voxd keeps about its user (the notes index, the history, image
/// captions) is 0600 in a 0700 directory even under `umask 000` (a store
/// left wider by an older voxd is narrowed: `private.rs`'s unit test).
#[test]
fn stores_are_private_whatever_the_umask() {
    let home = Home::new("");
    let (notes, images) = (home.path().join("notes"), home.path().join("images"));
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(
        home.path().join("voxd.toml"),
        format!("[rag]\nnotes = [{notes:?}]\n[vision]\nfolders = [{images:?}]\n"),
    )
    .unwrap();
    let mut daemon = Daemon::start_under(home, &["sh", "-c", "umask 000; exec \"$0\" \"$@\""]);
    let mut conn = daemon.connect();
    support::wait_until("the notes are indexed", || {
        conn.ok("notes", json!({ "action": "status" }))["indexing"] == false
    });
    conn.ok("history", json!({}));
    conn.ok("images", json!({ "action": "list" }));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data = daemon.home.path().join("data/voxd");
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    for store in ["index.sqlite", "history.sqlite", "images.db"] {
        let path = data.join(store);
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    conn.ok("shutdown", json!({}));
    assert!(daemon.wait_exit().success(), "{}", daemon.log());
}

/// A corrupt image store or history no longer stops the daemon (it did:
/// systemd then restarted it in a loop): each is set aside beside itself
/// and started afresh.
#[test]
fn corrupt_stores_are_set_aside_and_the_daemon_starts() {
    let home = Home::new("");
    let images = home.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(
        home.path().join("voxd.toml"),
        format!("[vision]\nfolders = [{images:?}]\n"),
    )
    .unwrap();
    let data = home.path().join("data/voxd");
    std::fs::create_dir_all(&data).unwrap();
    for store in ["images.db", "history.sqlite"] {
        std::fs::write(data.join(store), vec![0x5a; 8192]).unwrap();
    }
    let daemon = Daemon::start_in(home);
    let mut conn = daemon.connect();
    conn.ok("images", json!({ "action": "list" }));
    conn.ok(
        "respond",
        json!({ "text": "what time is it", "speak": false }),
    );
    let history = conn.ok("history", json!({}));
    assert!(!history.to_string().contains("error"), "{history}");
    for store in ["images.db", "history.sqlite"] {
        let aside = std::fs::read_dir(&data)
            .unwrap()
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(&format!("{store}.corrupt-"))
            })
            .count();
        assert_eq!(aside, 1, "{store} was not set aside:\n{}", daemon.log());
    }
    assert!(daemon.log().contains("set aside"), "{}", daemon.log());
}

#[test]
fn an_existing_too_open_socket_dir_is_tightened() {
    let home = Home::new("");
    let dir = home.path().join("run/voxd");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let _daemon = Daemon::start_in(home);
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn subscribers_receive_events_tagged_with_their_id() {
    let mut daemon = Daemon::start("");
    let mut sub = daemon.connect();
    sub.send_raw(b"{\"id\":\"s1\",\"cmd\":\"subscribe\",\"events\":[\"daemon.\"]}\n");
    let reply = sub.read().unwrap();
    assert_eq!(
        reply,
        json!({"id":"s1","ok":true,"result":{"subscribed":["daemon."]}})
    );
    let status = daemon.terminate();
    assert!(status.success(), "{status}: {}", daemon.log());
    let event = sub.read().expect("the shutdown event");
    assert_eq!(event["id"], "s1");
    assert_eq!(event["event"], "daemon.shutdown");
    assert_eq!(event["data"]["reason"], "SIGTERM");
    assert_eq!(sub.read(), None, "closed after shutdown");
}

#[test]
fn shutdown_command_stops_the_daemon_and_removes_the_socket() {
    let mut daemon = Daemon::start("");
    let socket = daemon.home.socket();
    let (ok, out, err) = daemon.home.run(&["shutdown"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "voxd stopped");
    assert!(daemon.wait_exit().success());
    assert!(!socket.exists(), "socket removed");
    assert!(daemon.log().contains("voxd stopped"));
}

#[test]
fn sigterm_lets_in_flight_requests_finish_and_removes_the_socket() {
    let mut daemon = Daemon::start("");
    let socket = daemon.home.socket();
    let mut conn = daemon.connect();
    assert_eq!(conn.ok("ping", json!({}))["pong"], true);
    assert!(daemon.terminate().success(), "{}", daemon.log());
    assert!(!socket.exists());
    assert!(UnixStream::connect(&socket).is_err());
}

#[test]
fn a_second_instance_is_refused_and_the_first_keeps_serving() {
    let daemon = Daemon::start("");
    let out = daemon.home.voxd(&["serve"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains(&daemon.child.id().to_string()), "{err}");
    assert_eq!(daemon.connect().ok("ping", json!({}))["pong"], true);
}

#[test]
fn a_stale_socket_from_a_killed_daemon_is_recovered() {
    let home = Home::new("");
    let socket = home.socket();
    let mut first = Daemon::start_in(home);
    first.child.kill().unwrap(); // SIGKILL: no clean-up at all
    first.child.wait().unwrap();
    assert!(socket.exists(), "a dead daemon leaves its socket behind");
    let home = std::mem::replace(&mut first.home, Home::new(""));
    let second = Daemon::start_in(home);
    assert_eq!(second.connect().ok("ping", json!({}))["pong"], true);
    assert!(second.log().contains("stale socket"), "{}", second.log());
}

#[test]
fn a_bad_config_stops_the_daemon_before_it_starts() {
    let home = Home::new("[engines]\nmemory_budget_mb = \"lots\"\n");
    let out = home.voxd(&["serve"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let file = home.path().join("voxd.toml");
    assert!(err.contains(&format!("{}:2:", file.display())), "{err}");
    assert!(err.contains("engines.memory_budget_mb"), "{err}");
    assert!(!home.socket().exists(), "nothing half-started");

    let out = home
        .voxd(&["serve"])
        .env("VOXD_ENGINES_STT_THREADS", "-1")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn client_commands_print_readable_output() {
    let daemon = Daemon::start("");
    let (ok, out, err) = daemon.home.run(&["ping"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "pong (protocol 1)");
    let (ok, out, _) = daemon.home.run(&["status"]);
    assert!(ok);
    assert!(out.contains("profile: tiny"), "{out}");
    assert!(
        out.contains("speech: 0 utterance(s) queued or playing, voice not loaded"),
        "{out}"
    );
    let (ok, out, _) = daemon.home.run(&["status", "--json"]);
    assert!(ok);
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["profile"], "tiny");
}

#[test]
fn clients_explain_when_no_daemon_runs() {
    let home = Home::new("");
    let (ok, _, err) = home.run(&["status"]);
    assert!(!ok);
    assert!(err.contains("is it running?"), "{err}");
    assert!(err.contains(home.socket().to_str().unwrap()), "{err}");
}

#[test]
fn config_show_prints_every_key_with_its_origin() {
    let home = Home::new("profile = \"8gb\"\n");
    let (ok, out, err) = home.run(&["config", "show"]);
    assert!(ok, "{err}");
    let file = home.path().join("voxd.toml");
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("{key} missing in\n{out}"))
            .to_string()
    };
    assert!(line("profile").ends_with(&format!("# {}", file.display())));
    assert!(line("engines.llm.context").contains("4096"));
    assert!(line("engines.llm.context").ends_with("# profile 8gb (config/profiles/8gb.toml)"));
    assert!(line("daemon.log_level").ends_with("# built-in default (config/voxd.toml)"));

    let out = home
        .voxd(&["config", "show", "--json"])
        .env("VOXD_ENGINES_LLM_THREADS", "3")
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["config"]["engines"]["llm"]["threads"], 3);
    assert_eq!(
        shown["origins"]["engines.llm.threads"],
        "environment variable VOXD_ENGINES_LLM_THREADS"
    );
}

#[test]
fn models_command_lists_the_manifest_with_install_state() {
    let daemon = Daemon::start("");
    let result = daemon.connect().ok("models", json!({}));
    let models = result["models"].as_array().unwrap();
    let silero = models.iter().find(|m| m["id"] == "silero-vad").unwrap();
    assert_eq!(silero["state"], "missing");
    assert_eq!(silero["kind"], "vad");
    let store = daemon.home.path().join("data/voxd/models");
    assert!(
        silero["path"]
            .as_str()
            .unwrap()
            .starts_with(store.to_str().unwrap()),
        "{silero}"
    );
    let gemma = models
        .iter()
        .find(|m| m["id"] == "gemma3-270m-base")
        .unwrap();
    assert!(gemma["used_by"].to_string().contains("llm"), "{gemma}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let home = Home::new("");
    let child = home
        .voxd(&["serve", "--log-format", "json"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + support::scaled_secs(60);
    while UnixStream::connect(home.socket()).is_err() {
        assert!(std::time::Instant::now() < deadline, "voxd did not start");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (ok, _, err) = home.run(&["shutdown"]);
    assert!(ok, "{err}");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "voxd ready"),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l["level"].is_string()));
}

/// A WAV header that lies about its size cannot take the daemon down: on
/// a board with little memory (here a 3 GiB address-space cap, under
/// which the daemon serves normally) a 60-byte file claiming 4 GiB of
/// samples once aborted it while reserving room for them. Now it is a
/// precise error, and the daemon answers the next request.
#[test]
fn a_wav_that_lies_about_its_size_is_refused_under_a_memory_cap() {
    let home = Home::new("");
    let path = home.path().join("lying.wav");
    let spec = hound::WavSpec {
        channels: 8,
        sample_rate: 192_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    for _ in 0..8 {
        writer.write_sample(0i16).unwrap();
    }
    writer.finalize().unwrap();
    // The header now claims ~4 GiB of samples (1,398 s at 192 kHz × 8,
    // within the hour voxd accepts); the file still holds 16 bytes.
    let claimed: u32 = u32::MAX / 16 * 16 - 64;
    let mut bytes = std::fs::read(&path).unwrap();
    let data = bytes.windows(4).position(|w| w == b"data").unwrap() + 4;
    let riff = claimed + data as u32 - 4;
    bytes[4..8].copy_from_slice(&riff.to_le_bytes());
    bytes[data..data + 4].copy_from_slice(&claimed.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();

    let mut daemon = Daemon::start_under(home, &["prlimit", "--as=3221225472", "--"]);
    let mut conn = daemon.connect();
    let reply = conn.request("transcribe", json!({ "path": path }));
    assert_eq!(reply["error"]["code"], "bad_audio", "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("truncated"), "{message}");
    conn.ok("ping", json!({}));
    conn.ok("shutdown", json!({}));
    assert!(daemon.wait_exit().success(), "{}", daemon.log());
}

/// The daemon's resident memory, in MiB.
fn rss_mib(pid: u32) -> u64 {
    support::proc_kib(&pid.to_string(), "VmRSS") / 1024
}

/// A client that pipelines requests and never reads a reply holds a
/// bounded amount of the daemon (its requests run a few at a time and the
/// rest wait unread), is dropped once a reply waits `write_timeout_secs`,
/// and never holds up another client. Before, every line became a task:
/// a million pings grew the daemon without bound.
#[test]
fn a_client_that_never_reads_is_bounded_then_dropped() {
    use std::io::Write;
    let daemon =
        Daemon::start("[daemon]\nwrite_timeout_secs = 2\nmax_requests_per_connection = 4\n");
    let pid = daemon.child.id();
    let before = rss_mib(pid);
    let greedy = UnixStream::connect(daemon.home.socket()).unwrap();
    const LINES: usize = 1_000_000;
    let writer = std::thread::spawn(move || {
        let mut greedy = greedy;
        let line = b"{\"id\":1,\"cmd\":\"ping\"}\n";
        (0..LINES)
            .take_while(|_| greedy.write_all(line).is_ok())
            .count()
    });
    let mut other = daemon.connect();
    for _ in 0..20 {
        assert_eq!(other.ok("ping", json!({}))["pong"], true);
    }
    let sent = writer.join().unwrap();
    assert!(sent < LINES, "the greedy client was never dropped");
    let grew = rss_mib(pid).saturating_sub(before);
    assert!(
        grew < 64,
        "the daemon grew by {grew} MiB for {sent} unread pings"
    );
    assert!(daemon.log().contains("took no reply"), "{}", daemon.log());
    assert_eq!(other.ok("ping", json!({}))["pong"], true);
}

/// Past `daemon.max_connections`, a client is told so and closed; the
/// ones connected are served, and a slot freed is taken again.
#[test]
fn clients_past_the_connection_limit_are_told_and_closed() {
    let daemon = Daemon::start("[daemon]\nmax_connections = 3\n");
    // The start-up probe's connection may not have closed yet.
    let mut first = daemon.connect();
    support::wait_until("the probe's slot is free", || {
        first.ok("status", json!({}))["connections"] == 1
    });
    let mut second = daemon.connect();
    let mut third = daemon.connect();
    second.ok("ping", json!({}));
    third.ok("ping", json!({}));
    let mut third = daemon.connect();
    let refused = third.read().expect("the refusal");
    assert_eq!(
        refused["error"]["code"], "too_many_connections",
        "{refused}"
    );
    assert!(third.read().is_none(), "the connection stays open");
    drop(first);
    support::wait_until("the first client's slot is free", || {
        second.ok("status", json!({}))["connections"] == 2
    });
    daemon.connect().ok("ping", json!({}));
}
