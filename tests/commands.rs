//! User commands (`commands.toml`) through the real daemon and its socket:
//! typed turns (`respond`) and a spoken one (the voice loop, real models)
//! run the configured program or HTTP request with the slots heard; a
//! local TCP listener records the HTTP request; near-misses run nothing;
//! a broken file keeps the commands in use; a hanging program is killed;
//! a target that is down gets the failure reply.

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::voice::{self, events_until, last, send_pcm, speech};
use support::{Conn, Daemon, Home};

/// Where the daemon of a test [`Home`] reads its commands.
fn commands_file(home: &Path) -> PathBuf {
    home.join("config/voxd/commands.toml")
}

fn write_commands(home: &Path, toml: &str) {
    let path = commands_file(home);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, toml).unwrap();
}

/// A command whose program writes its arguments, then `VOXD_SLOT_DEVICE`,
/// one a line, to `out`.
fn power_on(out: &Path) -> String {
    format!(
        r#"
[lists]
device = ["kitchen light"]

[lists.lamp]
"desk lamp" = ["desk light"]

[[command]]
name = "power_on"
sentences = ["(turn | switch) on [the] {{device}}", "(turn | switch) on [the] {{device:lamp}}"]
run = ["/bin/sh", "-c", "printf '%s\n' \"$@\" \"$VOXD_SLOT_DEVICE\" > {out}", "sh", "on", "{{device}}"]
say = "Turning on the {{device}}."
"#,
        out = out.display()
    )
}

/// A bare daemon (no models: typed turns that a command answers need none)
/// with `commands` in place before it starts.
fn daemon(commands: &str) -> Daemon {
    let home = Home::new("");
    write_commands(home.path(), commands);
    Daemon::start_in(home)
}

fn respond(conn: &mut Conn, text: &str) -> Value {
    conn.ok("respond", json!({ "text": text, "speak": false }))
}

#[test]
fn a_typed_command_runs_its_program_with_the_slots_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("argv");
    let daemon = daemon(&power_on(&out));
    let mut events = daemon.connect();
    events.ok("subscribe", json!({ "events": ["command."] }));
    let mut conn = daemon.connect();

    // A synonym, with a transcription error in it.
    let reply = respond(&mut conn, "Please switch on the desk lights.");
    assert_eq!(reply["intent"], "command", "{reply}");
    assert_eq!(reply["text"], "Turning on the desk lamp.", "{reply}");
    let ran = &reply["command"];
    assert_eq!(ran["name"], "power_on", "{reply}");
    assert_eq!(ran["template"], "(turn | switch) on [the] {device:lamp}");
    assert_eq!(ran["slots"], json!({ "device": "desk lamp" }));
    assert_eq!(ran["outcome"], "ok", "{reply}");
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "on\ndesk lamp\ndesk lamp\n"
    );

    let event = events.read().unwrap();
    assert_eq!(event["event"], "command.ran", "{event}");
    assert_eq!(event["data"]["slots"]["device"], "desk lamp", "{event}");
    assert_eq!(event["data"]["outcome"], "ok", "{event}");

    let reply = respond(&mut conn, "turn on kitchen light");
    assert_eq!(
        reply["command"]["slots"]["device"], "kitchen light",
        "{reply}"
    );
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "on\nkitchen light\nkitchen light\n"
    );
    // Built-in intents come first.
    let reply = respond(&mut conn, "stop");
    assert_eq!(reply["intent"], "stop", "{reply}");
}

#[test]
fn commands_test_shows_what_would_run_and_near_misses_match_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("argv");
    let daemon = daemon(&power_on(&out));
    let home = &daemon.home;

    let (ok, printed, err) = home.run(&["commands", "test", "turn on the desk lamp"]);
    assert!(ok, "{err}");
    assert!(printed.contains("command:  power_on"), "{printed}");
    assert!(
        printed.contains("template: (turn | switch) on [the] {device:lamp}"),
        "{printed}"
    );
    assert!(
        printed.contains("slot:     device = desk lamp (heard \"desk lamp\")"),
        "{printed}"
    );
    assert!(
        printed.contains("would:    run \"/bin/sh\" \"-c\""),
        "{printed}"
    );
    assert!(printed.contains("\"sh\" \"on\" \"desk lamp\""), "{printed}");
    assert!(
        printed.contains("say:      Turning on the desk lamp."),
        "{printed}"
    );
    assert!(!out.exists(), "`commands test` ran the program");

    let (ok, _, err) = home.run(&["commands", "test", "open the pod bay doors"]);
    assert!(!ok);
    assert!(
        err.contains("no command matches \"open the pod bay doors\""),
        "{err}"
    );

    let mut conn = daemon.connect();
    for near in [
        "turn on the garage",
        "turn off the desk lamp",
        "turn on the desk",
        "turn on the desk lamp and the radio",
        "what is the wifi password",
        "turn on",
    ] {
        let test = conn.ok("commands", json!({ "action": "test", "text": near }));
        assert_eq!(test["matched"], false, "{near}: {test}");
    }

    let (ok, printed, err) = home.run(&["commands", "list"]);
    assert!(ok, "{err}");
    assert!(printed.contains("power_on (line 9)"), "{printed}");
    assert!(printed.contains("list lamp: desk lamp"), "{printed}");
}

#[test]
fn a_broken_file_keeps_the_commands_in_use_and_a_fixed_one_is_read_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("argv");
    let daemon = daemon(&power_on(&out));
    let file = commands_file(daemon.home.path());
    let mut conn = daemon.connect();
    // Serving: the commands are loaded and the file is watched.
    let list = conn.ok("commands", json!({ "action": "list" }));
    assert_eq!(list["commands"][0]["name"], "power_on", "{list}");

    fs::write(
        &file,
        power_on(&out).replace("[the] {device}\"", "[the {device}\""),
    )
    .unwrap();
    let reply = conn.request("commands", json!({ "action": "reload" }));
    assert_eq!(reply["ok"], false, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        format!(
            "{}:10: command \"power_on\": sentence \"(turn | switch) on [the {{device}}\": `[` is never closed",
            file.display()
        )
    );
    let (ok, _, err) = daemon.home.run(&["commands", "reload"]);
    assert!(!ok && err.contains(":10: command \"power_on\""), "{err}");
    // The previous commands are still in use.
    let reply = respond(&mut conn, "turn on the kitchen light");
    assert_eq!(reply["command"]["outcome"], "ok", "{reply}");
    let list = conn.ok("commands", json!({ "action": "list" }));
    assert!(list["error"].as_str().unwrap().contains(":10:"), "{list}");

    // Fixed, with another command: read because the file changed.
    fs::write(
        &file,
        "[[command]]\nname = \"hello\"\nsentences = [\"say hello\"]\nsay = \"Hello.\"\n",
    )
    .unwrap();
    daemon.wait_until("the changed file read", support::scaled_secs(10), || {
        let list = conn.ok("commands", json!({ "action": "list" }));
        list["commands"][0]["name"] == "hello" && list["error"].is_null()
    });
    assert_eq!(respond(&mut conn, "Say hello!")["text"], "Hello.");
}

#[test]
fn a_hanging_program_is_killed_at_its_timeout_with_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("pid");
    let daemon = daemon(&format!(
        r#"
[[command]]
name = "hang"
sentences = ["hang [for] {{length:duration}}"]
run = ["/bin/sh", "-c", "sleep 300 & echo $! > {pid}; wait"]
timeout_secs = 1
say = "Done."
say_failed = "That took longer than {{length}}."
"#,
        pid = pid.display()
    ));
    let mut conn = daemon.connect();
    let started = Instant::now();
    let reply = respond(&mut conn, "hang for five minutes");
    let took = started.elapsed();
    assert_eq!(reply["text"], "That took longer than 5 minutes.", "{reply}");
    assert_eq!(reply["command"]["outcome"], "timed_out", "{reply}");
    assert!(took < support::scaled_secs(5), "{took:?}");
    // The program's own child went with it.
    let sleeper = fs::read_to_string(&pid).unwrap().trim().to_string();
    support::wait_until("the sleeper killed", || {
        !Path::new(&format!("/proc/{sleeper}")).exists()
            || fs::read_to_string(format!("/proc/{sleeper}/stat")).is_ok_and(|s| s.contains(") Z "))
    });
}

/// One HTTP request read from `listener`: (request line, body); answered 200.
fn serve_one(listener: TcpListener) -> std::thread::JoinHandle<(String, String)> {
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (&stream)
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
        (line.trim().to_string(), String::from_utf8(body).unwrap())
    })
}

#[test]
fn an_http_command_sends_its_request_and_a_target_that_is_down_gets_the_failure_reply() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = listener.local_addr().unwrap();
    let down = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let daemon = daemon(&format!(
        r#"
[lists]
colour = ["red", "sky blue"]

[[command]]
name = "paint"
sentences = ["paint [the] {{room:text}}"]
http = {{ method = "PUT", url = "http://{down}/rooms/{{room}}", body = {{ room = "{{room}}" }} }}
timeout_secs = 2
say = "Painted."
say_failed = "The painter is not answering about the {{room}}."

[[command]]
name = "light"
sentences = ["set [the] light to {{colour}} at {{level:number}} percent"]
http = {{ url = "http://{up}/api/webhook/{{colour}}", body = {{ colour = "{{colour}}", level = "{{level}}", fixed = [1, "x"] }} }}
say = "Light set to {{colour}}."
"#
    ));
    let server = serve_one(listener);
    let mut conn = daemon.connect();
    let reply = respond(
        &mut conn,
        "Set the light to sky blue at twenty five percent.",
    );
    assert_eq!(reply["text"], "Light set to sky blue.", "{reply}");
    let (line, body) = server.join().unwrap();
    assert_eq!(line, "POST /api/webhook/sky%20blue HTTP/1.1");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        json!({ "colour": "sky blue", "level": 25, "fixed": [1, "x"] })
    );

    let reply = respond(&mut conn, "paint the kitchen");
    assert_eq!(
        reply["text"], "The painter is not answering about the kitchen.",
        "{reply}"
    );
    assert_eq!(reply["command"]["outcome"], "failed", "{reply}");
    let error = reply["command"]["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("PUT http://{down}/rooms/kitchen: ")),
        "{error}"
    );
}

#[test]
fn a_spoken_command_after_the_wake_word_runs_with_its_slots() {
    let home = voice::home("early_transcribe_ms = 0\n");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("argv");
    write_commands(home.path(), &power_on(&out));
    let daemon = Daemon::start_indexed(home, 5);
    let mut control = daemon.connect().with_timeout(240);
    let clips = daemon.home.path().to_path_buf();
    let wake = speech(&mut control, &clips, "Hey Jarvis.");
    // "Switch", not "Turn": Whisper tiny.en hears this voice's "Turn on the
    // kitchen light" as "Pern on the kitchen light", and a template's own
    // words must be heard exactly (only list values forgive errors).
    let command = speech(&mut control, &clips, "Switch on the kitchen light.");
    let near_miss = speech(&mut control, &clips, "Switch off the kitchen light.");

    let mut events = daemon.connect().with_timeout(240);
    events.ok(
        "subscribe",
        json!({ "events": ["transcript.final", "assistant.reply", "command.ran", "listen.error", "assistant.error"] }),
    );
    send_pcm(&mut control, &voice::woken(&wake, &command));
    let seen = events_until(&mut events, "assistant.reply", &daemon);
    let reply = last(&seen, "assistant.reply");
    let heard = &last(&seen, "transcript.final")["text"];
    assert_eq!(reply["intent"], "command", "heard {heard}: {reply}");
    assert_eq!(
        reply["command"]["slots"]["device"], "kitchen light",
        "{reply}"
    );
    assert_eq!(last(&seen, "command.ran")["outcome"], "ok", "{seen:?}");
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "on\nkitchen light\nkitchen light\n"
    );
    assert!(reply["timings"]["stt_ms"].as_u64().is_some(), "{reply}");

    // "turn off" is not "turn on": it goes to `ask` and runs nothing.
    fs::remove_file(&out).unwrap();
    send_pcm(&mut control, &voice::woken(&wake, &near_miss));
    let seen = events_until(&mut events, "assistant.reply", &daemon);
    let reply = last(&seen, "assistant.reply");
    assert_eq!(reply["intent"], "question", "{reply}");
    assert!(!voice::has(&seen, "command.ran"), "{seen:?}");
    assert!(!out.exists());
    // Let the reply's speech end before the daemon goes.
    std::thread::sleep(Duration::from_millis(200));
}
