//! The D-Bus interface on a private `dbus-daemon`: methods routed through
//! the socket's handlers, properties, error names, signals for events,
//! introspection by `gdbus` and `busctl`, and a daemon that keeps serving
//! its socket when there is no bus.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use support::{echo_engines_config, voice, wait_until, Daemon, Home};
use zbus::message::Type as MessageType;
use zbus::{Connection, MatchRule, MessageStream, Proxy};

const NAME: &str = "io.github.voxd";
const PATH: &str = "/io/github/voxd/Assistant1";
const IFACE: &str = "io.github.voxd.Assistant1";

/// A private session bus, killed on drop.
struct Bus {
    child: Child,
    address: String,
}

impl Bus {
    fn start() -> Bus {
        Bus::spawn(&["--session"])
    }

    /// A bus every local user may connect to and call through, as a system
    /// bus with a careless policy would be (its socket under `dir`).
    fn start_open(dir: &std::path::Path) -> Bus {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = dir.join("open-bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                dir.join("bus").display()
            ),
        )
        .unwrap();
        Bus::spawn(&[&format!("--config-file={}", config.display())])
    }

    fn spawn(args: &[&str]) -> Bus {
        let mut child = Command::new("dbus-daemon")
            .args(args)
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dbus-daemon is missing: run `bash scripts/bootstrap.sh test` (apt dbus)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon said {line:?}");
        Bus { child, address }
    }

    async fn connect(&self) -> Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap()
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// voxd on `bus` (as its session bus unless `env` says otherwise), once it
/// owns its name there.
async fn voxd_on(bus: &Bus, conn: &Connection, config: &str, env: &[(&str, &str)]) -> Daemon {
    voxd_in(bus, conn, Home::new(config), env).await
}

/// [`voxd_on`] with a prepared home.
async fn voxd_in(bus: &Bus, conn: &Connection, home: Home, env: &[(&str, &str)]) -> Daemon {
    let mut env = env.to_vec();
    if !env.iter().any(|(k, _)| k.starts_with("DBUS_")) {
        env.push(("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str()));
    }
    let daemon = Daemon::start_with_env(home, &env);
    let dbus = zbus::fdo::DBusProxy::new(conn).await.unwrap();
    let deadline = std::time::Instant::now() + support::scaled_secs(60);
    while std::time::Instant::now() < deadline {
        if dbus.name_has_owner(NAME.try_into().unwrap()).await.unwrap() {
            return daemon;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("voxd never owned {NAME}:\n{}", daemon.log());
}

/// The next signal: (interface, member, message).
async fn next_signal(
    signals: &mut MessageStream,
    daemon: &Daemon,
) -> (String, String, zbus::Message) {
    let within = support::scaled_secs(120);
    let Ok(msg) = tokio::time::timeout(within, signals.next()).await else {
        panic!("no signal within {within:?}; voxd's log:\n{}", daemon.log());
    };
    let msg = msg.unwrap().unwrap();
    let member = msg.header().member().unwrap().to_string();
    let interface = msg.header().interface().unwrap().to_string();
    (interface, member, msg)
}

/// Every signal voxd sends on `conn`.
async fn signals_of_voxd(conn: &Connection) -> MessageStream {
    let rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender(NAME)
        .unwrap()
        .path(PATH)
        .unwrap()
        .build();
    MessageStream::for_match_rule(rule, conn, None)
        .await
        .unwrap()
}

/// Signals until `member` (of the assistant interface, or
/// `PropertiesChanged`), returning its message.
async fn signal_until(signals: &mut MessageStream, daemon: &Daemon, member: &str) -> zbus::Message {
    loop {
        let (_, name, msg) = next_signal(signals, daemon).await;
        if name == member {
            return msg;
        }
    }
}

async fn assistant(conn: &Connection) -> Proxy<'static> {
    Proxy::new(conn, NAME, PATH, IFACE).await.unwrap()
}

/// The assistant without zbus's property cache: every read asks voxd, so
/// it cannot race the `PropertiesChanged` signal that updates the cache.
async fn uncached(conn: &Connection) -> Proxy<'static> {
    zbus::proxy::Builder::new(conn)
        .destination(NAME)
        .unwrap()
        .path(PATH)
        .unwrap()
        .interface(IFACE)
        .unwrap()
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap()
}

/// The D-Bus error name of a failed call.
fn error_name(result: zbus::Result<impl std::fmt::Debug>) -> (String, String) {
    match result {
        Err(zbus::Error::MethodError(name, desc, _)) => {
            (name.to_string(), desc.unwrap_or_default())
        }
        other => panic!("expected a D-Bus error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_and_properties_run_the_socket_commands() {
    let bus = Bus::start();
    let conn = bus.connect().await;
    let daemon = voxd_on(&bus, &conn, &echo_engines_config(""), &[]).await;
    let voxd = assistant(&conn).await;

    let protocol: u32 = voxd.call("Ping", &()).await.unwrap();
    assert_eq!(protocol, 1);

    let status: String = voxd.call("Status", &()).await.unwrap();
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["pid"], json!(daemon.child.id()));
    assert_eq!(status["profile"], "tiny");

    let profile: String = voxd.get_property("Profile").await.unwrap();
    assert_eq!(profile, "tiny");
    let state: String = voxd.get_property("State").await.unwrap();
    assert_eq!(state, "running");
    let version: String = voxd.get_property("Version").await.unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));

    // Engines start for real through D-Bus, and the socket sees it.
    let started: String = voxd.call("StartEngine", &("stt",)).await.unwrap();
    let started: Value = serde_json::from_str(&started).unwrap();
    assert_eq!(started["engine"]["state"], "ready", "{started}");
    let pid = started["engine"]["pid"].as_u64().unwrap();
    let seen = daemon.connect().ok("status", json!({}));
    assert_eq!(seen["engines"][0]["pid"], json!(pid), "{seen}");
    let stopped: String = voxd.call("StopEngine", &("stt",)).await.unwrap();
    assert!(stopped.contains("\"stopped\""), "{stopped}");

    // The generic Call reaches every socket command, arguments and all.
    let config: String = voxd.call("Call", &("config", "")).await.unwrap();
    assert!(config.contains("\"origins\""));
    let engine: String = voxd
        .call("Call", &("engine", r#"{"name":"llm","action":"stop"}"#))
        .await
        .unwrap();
    assert!(engine.contains("\"llm\""), "{engine}");

    // Errors carry the socket's code as a D-Bus error name.
    let (name, desc) = error_name(voxd.call::<_, _, String>("StartEngine", &("tts",)).await);
    assert_eq!(name, "io.github.voxd.Error.InvalidParams");
    assert!(desc.contains("tts"), "{desc}");
    let (name, desc) = error_name(voxd.call::<_, _, String>("Call", &("fly", "")).await);
    assert_eq!(name, "io.github.voxd.Error.UnknownCommand");
    assert!(desc.contains("status"), "lists the commands: {desc}");
    let (name, _) = error_name(voxd.call::<_, _, String>("Call", &("status", "[1]")).await);
    assert_eq!(name, "io.github.voxd.Error.InvalidParams");
    let (name, _) = error_name(voxd.call::<_, _, String>("Call", &("ping", "{nope")).await);
    assert_eq!(name, "io.github.voxd.Error.InvalidParams");

    // One code path: D-Bus calls are counted like socket requests.
    let metrics: String = voxd.call("Metrics", &()).await.unwrap();
    for line in [
        "voxd_requests_total{command=\"ping\",code=\"ok\"} 1",
        "voxd_requests_total{command=\"engine\",code=\"invalid_params\"} 1",
        "voxd_requests_total{command=\"invalid\",code=\"invalid_params\"} 1",
        "voxd_requests_total{command=\"invalid\",code=\"unknown_command\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_become_signals() {
    let bus = Bus::start();
    let conn = bus.connect().await;
    let mut daemon = voxd_on(&bus, &conn, &echo_engines_config(""), &[]).await;
    let voxd = assistant(&conn).await;
    let mut signals = signals_of_voxd(&conn).await;
    let _: String = voxd.call("StartEngine", &("stt",)).await.unwrap();
    let mut typed = vec![];
    let mut generic = vec![];
    while typed.len() < 2 || generic.len() < 2 {
        let (interface, member, msg) = next_signal(&mut signals, &daemon).await;
        assert_eq!(interface, IFACE);
        match member.as_str() {
            "EngineStateChanged" => {
                let (engine, state, pid, error): (String, String, u32, String) =
                    msg.body().deserialize().unwrap();
                assert_eq!((engine.as_str(), error.as_str()), ("stt", ""));
                assert_eq!(
                    pid > 0,
                    state == "ready" || state == "starting",
                    "{state} {pid}"
                );
                typed.push(state);
            }
            "Event" => {
                let (name, data): (String, String) = msg.body().deserialize().unwrap();
                if name == "daemon.ready" {
                    continue; // published as the daemon came up, racing our match rule
                }
                assert_eq!(name, "engine.state");
                let data: Value = serde_json::from_str(&data).unwrap();
                generic.push(data["state"].as_str().unwrap().to_string());
            }
            other => panic!("unexpected signal {other}"),
        }
    }
    assert_eq!(typed, ["starting", "ready"]);
    assert_eq!(generic, typed);

    // Shutting down over D-Bus: the State property changes, the event goes
    // out as a signal, and the daemon exits cleanly.
    voxd.call::<_, _, ()>("Shutdown", &()).await.unwrap();
    let mut saw_event = false;
    let mut saw_state = false;
    while !(saw_event && saw_state) {
        let (interface, member, msg) = next_signal(&mut signals, &daemon).await;
        match (interface.as_str(), member.as_str()) {
            (IFACE, "Event") => {
                let (name, data): (String, String) = msg.body().deserialize().unwrap();
                if name == "daemon.shutdown" {
                    assert!(data.contains("shutdown command"), "{data}");
                    saw_event = true;
                }
            }
            ("org.freedesktop.DBus.Properties", "PropertiesChanged") => {
                let body = msg.body();
                let (iface, changed, _): (
                    String,
                    std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
                    Vec<String>,
                ) = body.deserialize().unwrap();
                assert_eq!(iface, IFACE);
                let state: String = changed["State"].clone().try_into().unwrap();
                // "running" may still be on its way from start-up.
                match state.as_str() {
                    "stopping" => saw_state = true,
                    "running" => {}
                    other => panic!("unexpected State {other}"),
                }
            }
            _ => {}
        }
    }
    assert!(daemon.wait_exit().success());
}

/// The assistant's own methods and signals, on real models: speech out,
/// transcription, the wake word, answers from the notes, listening on and
/// off, and errors from engines that are not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assistant_speaks_listens_and_answers_over_d_bus() {
    let bus = Bus::start();
    let conn = bus.connect().await;
    let home = voice::home("");
    let dir = home.path().to_path_buf();
    let daemon = voxd_in(&bus, &conn, home, &[]).await;
    let voxd = uncached(&conn).await;
    let mut signals = signals_of_voxd(&conn).await;
    let mut control = daemon.connect();
    wait_until("listening", || {
        control.ok("listen", json!({ "action": "status" }))["listening"] == json!(true)
    });
    let listening: bool = voxd.get_property("Listening").await.unwrap();
    assert!(listening);

    // Say: each sentence is a ReplyChunk signal.
    let said: String = voxd
        .call("Say", &("The kettle is on. Tea is ready.",))
        .await
        .unwrap();
    let said: Value = serde_json::from_str(&said).unwrap();
    assert_eq!(said["chunks"], 2, "{said}");
    let chunk = signal_until(&mut signals, &daemon, "ReplyChunk").await;
    let (utterance, text): (u64, String) = chunk.body().deserialize().unwrap();
    assert_eq!(utterance, said["utterance"].as_u64().unwrap());
    assert_eq!(text.trim(), "The kettle is on.");

    // Transcribe what was said: the reply and a final Transcript signal.
    let reply_wav = dir.join("reply.wav");
    let heard: String = voxd
        .call("Transcribe", &(reply_wav.display().to_string(),))
        .await
        .unwrap();
    let heard: Value = serde_json::from_str(&heard).unwrap();
    let words = heard["text"].as_str().unwrap().to_lowercase();
    assert!(words.contains("kettle"), "{heard}");
    let transcript = signal_until(&mut signals, &daemon, "Transcript").await;
    let (text, is_final): (String, bool) = transcript.body().deserialize().unwrap();
    assert!(is_final);
    assert_eq!(text, heard["text"].as_str().unwrap());

    // The wake word on the listening source is a WakeDetected signal.
    let wake = voice::speech(&mut control, &dir, "Hey Jarvis.");
    let mut audio = voice::silence(1.0);
    audio.extend(&wake);
    audio.extend(voice::silence(1.0));
    voice::send_pcm(&mut control, &audio);
    let woken = signal_until(&mut signals, &daemon, "WakeDetected").await;
    let (name, score): (String, f64) = woken.body().deserialize().unwrap();
    assert_eq!(name, "hey_jarvis");
    assert!(score > 0.5 && score <= 1.0, "{score}");

    // Ask answers from the notes, citing them (once they are indexed).
    support::wait_for_notes(&mut control, 5);
    let answer: String = voxd
        .call("Ask", &("What is the wifi password?",))
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert!(
        answer["text"].as_str().unwrap().contains("kettle-47-moon"),
        "{answer}"
    );
    assert!(answer["citations"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("home.md"));

    // Listening off and on again; the property follows, with signals.
    let _: String = voxd.call("StopListening", &()).await.unwrap();
    loop {
        let changed = signal_until(&mut signals, &daemon, "PropertiesChanged").await;
        let body = changed.body();
        let (_, props, _): (
            String,
            std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
            Vec<String>,
        ) = body.deserialize().unwrap();
        if let Some(listening) = props.get("Listening") {
            if !bool::try_from(listening.clone()).unwrap() {
                break;
            }
        }
    }
    let _: String = voxd.call("Listen", &()).await.unwrap();
    let listening: bool = voxd.get_property("Listening").await.unwrap();
    assert!(listening);

    // Nothing speaking: Stop says so.
    let stopped: bool = voxd.call("Stop", &()).await.unwrap();
    assert!(!stopped);

    // A missing image is reported per file, as on the socket; no language
    // model here is a D-Bus error.
    let captioned: String = voxd
        .call("Caption", &("/nonexistent/photo.png",))
        .await
        .unwrap();
    let captioned: Value = serde_json::from_str(&captioned).unwrap();
    assert_eq!(captioned["captions"][0]["ok"], json!(false), "{captioned}");
    assert_eq!(captioned["captions"][0]["path"], "/nonexistent/photo.png");
    let (name, _) = error_name(voxd.call::<_, _, String>("Reload", &("",)).await);
    assert_eq!(name, "io.github.voxd.Error.NoModel");
}

/// `Ask` streams its answer to the caller as `AskToken` signals while the
/// real model writes it: several pieces, each sent before the reply, that
/// read as the reply's text (after an `AskReset`, if the answer was
/// replaced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_streams_its_answer_as_signals() {
    let bus = Bus::start();
    let conn = bus.connect().await;
    let (home, _) = support::notes_and_model_home("answer_mode = \"generative\"\n");
    let slot = support::StartSlot::take();
    let daemon = voxd_in(&bus, &conn, home, &[]).await;
    support::wait_for_notes(&mut daemon.connect(), 5);
    drop(slot);
    let mut signals = signals_of_voxd(&conn).await;

    let reply = conn
        .call_method(
            Some(NAME),
            PATH,
            Some(IFACE),
            "Ask",
            &("What is the wifi password?",),
        )
        .await
        .unwrap();
    let replied = reply.primary_header().serial_num();
    let answer: String = reply.body().deserialize().unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let text = answer["text"].as_str().unwrap();
    assert!(text.contains("kettle-47-moon"), "{answer}");

    // Pieces of the model's own text (before any reset).
    let (mut streamed, mut pieces, mut reset) = (String::new(), 0, false);
    while streamed.trim_end() != text {
        let (_, member, msg) = next_signal(&mut signals, &daemon).await;
        match member.as_str() {
            "AskToken" => {
                assert!(msg.primary_header().serial_num() < replied);
                let (piece,): (String,) = msg.body().deserialize().unwrap();
                streamed.push_str(&piece);
                if !reset {
                    pieces += 1;
                }
            }
            "AskReset" => {
                assert!(msg.primary_header().serial_num() < replied);
                let (reason,): (String,) = msg.body().deserialize().unwrap();
                assert_eq!(reason, "unsupported_replaced");
                streamed.clear();
                reset = true;
            }
            _ => {}
        }
    }
    // The model's own answer stood, as in tests/llm.rs for this question:
    // supported by the notes, never withdrawn.
    assert_eq!(answer["mode"], "generative", "{answer}");
    assert!(!reset, "the model's answer was replaced: {answer}");
    let model = &answer["llm"];
    assert!(model["generated_tokens"].as_u64().unwrap() >= 2, "{answer}");
    assert!(
        pieces >= 2,
        "the model's text came in {pieces} piece(s): {answer}"
    );
    // Counted like every other request, D-Bus and socket alike.
    let metrics = daemon.connect().ok("metrics", json!({}));
    let text = metrics["text"].as_str().unwrap();
    assert!(
        text.contains(r#"voxd_requests_total{command="ask",code="ok"} 1"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdbus_and_busctl_introspect_and_call_it() {
    let bus = Bus::start();
    let conn = bus.connect().await;
    let _daemon = voxd_on(&bus, &conn, &echo_engines_config(""), &[]).await;
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (ok, out, err) = run(Command::new("gdbus").args([
        "introspect",
        "--address",
        &bus.address,
        "--dest",
        NAME,
        "--object-path",
        PATH,
    ]));
    assert!(ok, "gdbus introspect failed: {err}");
    for needle in [
        "interface io.github.voxd.Assistant1 {",
        "Ping(out u ",
        "Status(out s ",
        "StartEngine(in  s name,",
        "Call(in  s command,",
        "Ask(in  s question,",
        "Transcribe(in  s path,",
        "StopListening(out s ",
        "WakeDetected(s name,",
        "Transcript(s text,",
        "ReplyChunk(t utterance,",
        "ImageCaptioned(s path,",
        "readonly b Listening = ",
        "EngineStateChanged(s engine,",
        "Event(s name,",
        "readonly s Profile = 'tiny';",
        "readonly s State = 'running';",
    ] {
        assert!(out.contains(needle), "no {needle:?} in\n{out}");
    }

    let (ok, out, err) = run(Command::new("busctl").args([
        &format!("--address={}", bus.address),
        "introspect",
        NAME,
        PATH,
        IFACE,
    ]));
    assert!(ok, "busctl introspect failed: {err}");
    for needle in [".Metrics", ".Shutdown", ".EngineStateChanged", ".Profile"] {
        assert!(out.contains(needle), "no {needle:?} in\n{out}");
    }

    let (ok, out, _) = run(Command::new("busctl").args([
        &format!("--address={}", bus.address),
        "call",
        NAME,
        PATH,
        IFACE,
        "Ping",
    ]));
    assert!(ok);
    assert_eq!(out.trim(), "u 1");

    let (ok, _, err) = run(Command::new("gdbus").args([
        "call",
        "--address",
        &bus.address,
        "--dest",
        NAME,
        "--object-path",
        PATH,
        "--method",
        "io.github.voxd.Assistant1.StartEngine",
        "tts",
    ]));
    assert!(!ok);
    assert!(err.contains("io.github.voxd.Error.InvalidParams"), "{err}");
}

/// Another local user gets nothing from voxd over D-Bus, whatever the bus
/// policy lets through: on a bus that lets anyone call, uid 65534 is
/// refused every method (`AccessDenied`, naming both uids), while the
/// daemon's own user is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_daemons_own_user_may_call() {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::start_open(dir.path());
    let conn = bus.connect().await;
    let _daemon = voxd_on(&bus, &conn, &echo_engines_config(""), &[]).await;
    let gdbus_call = |as_nobody: bool, method: &str, args: &[&str]| {
        let mut cmd = if as_nobody {
            let mut cmd = Command::new("setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "gdbus"]);
            cmd
        } else {
            Command::new("gdbus")
        };
        let out = cmd
            .args(["call", "--address", &bus.address, "--dest", NAME])
            .args(["--object-path", PATH, "--method"])
            .arg(format!("{IFACE}.{method}"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), err)
    };
    let own = rustix::process::getuid().as_raw();
    assert_ne!(own, 65534, "run the tests as another user than nobody");
    for (method, args) in [
        ("Status", &[][..]),
        ("Call", &["config", ""][..]),
        ("Say", &["hello"][..]),
        ("Shutdown", &[][..]),
    ] {
        let (ok, err) = gdbus_call(true, method, args);
        assert!(!ok, "{method} answered uid 65534");
        assert!(
            err.contains("org.freedesktop.DBus.Error.AccessDenied")
                && err.contains(&format!("uid {own}"))
                && err.contains("uid 65534"),
            "{method}: {err}"
        );
    }
    let (ok, err) = gdbus_call(false, "Ping", &[]);
    assert!(ok, "the daemon's own user was refused: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_bus_is_a_config_choice() {
    let bus = Bus::start();
    let conn = bus.connect().await;
    let config = echo_engines_config("\n[dbus]\nbus = \"system\"\n");
    let daemon = voxd_on(
        &bus,
        &conn,
        &config,
        &[("DBUS_SYSTEM_BUS_ADDRESS", bus.address.as_str())],
    )
    .await;
    let voxd = assistant(&conn).await;
    let protocol: u32 = voxd.call("Ping", &()).await.unwrap();
    assert_eq!(protocol, 1);
    assert!(daemon.log().contains("bus=System"), "{}", daemon.log());
}

#[test]
fn without_a_bus_voxd_warns_and_keeps_serving_its_socket() {
    let home = Home::new(&echo_engines_config(""));
    let missing = home.path().join("no-bus");
    let address = format!("unix:path={}", missing.display());
    let mut daemon = Daemon::start_with_env(home, &[("DBUS_SESSION_BUS_ADDRESS", &address)]);
    wait_until("the D-Bus warning", || {
        daemon.log().contains("no D-Bus interface")
    });
    assert_eq!(daemon.connect().ok("ping", json!({}))["pong"], true);
    assert!(daemon.log().contains("still serving on the control socket"));
    assert!(daemon.terminate().success());

    // `off` means no attempt and no warning.
    let config = echo_engines_config("\n[dbus]\nbus = \"off\"\n");
    let mut daemon = Daemon::start_with_env(
        Home::new(&config),
        &[("DBUS_SESSION_BUS_ADDRESS", &address)],
    );
    assert_eq!(daemon.connect().ok("ping", json!({}))["pong"], true);
    assert!(daemon.terminate().success());
    assert!(!daemon.log().contains("D-Bus"), "{}", daemon.log());
}
