//! The client commands that had no test of their own, each the real `voxd`
//! binary against a real `voxd serve`: `serve --notes`, `respond`, `rag
//! on|off|status`, `forget`, `say -` and `stop` (real MiniLM retrieval and
//! the real Piper voice), `listen --mute/--unmute` (real openWakeWord and
//! Silero VAD on the socket source) and `reload` (the test Gemma in the
//! real `voxd-llm`).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{json, Value};
use support::{copy_dir, test_model, Daemon, Home, StartSlot};

/// A home with a copy of the fixture notes (returned: their folder, which
/// no config names: `serve --notes` does), extractive answers and the Piper
/// voice writing into `reply.wav`.
fn notes_home() -> (Home, PathBuf) {
    let store = test_model("all-minilm-l6-v2")
        .parent()
        .unwrap()
        .to_path_buf();
    test_model("piper-en_US-joe-medium");
    let home = Home::new("");
    let notes = home.path().join("notes");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes"),
        &notes,
    );
    let config = format!(
        "[models]\ndir = {store:?}\nsources = [\"pypi\"]\nllm = []\n\n\
         [rag]\nanswer_mode = \"extractive\"\n\n\
         [tts]\nvoice = \"piper-en_US-joe-medium\"\nvariation = 0.0\n\n\
         [audio]\noutput = \"wav\"\nfile = {wav:?}\n",
        store = store.display().to_string(),
        wav = home.path().join("reply.wav").display().to_string(),
    );
    std::fs::write(home.path().join("voxd.toml"), config).unwrap();
    (home, notes)
}

/// `voxd <args>` against `daemon`, which must succeed: (stdout, stderr).
fn ok(daemon: &Daemon, args: &[&str]) -> (String, String) {
    let (ok, out, err) = daemon.home.run(args);
    assert!(ok, "voxd {args:?} failed:\n{out}{err}\n{}", daemon.log());
    (out, err)
}

#[test]
fn serve_notes_respond_rag_and_forget_on_the_command_line() {
    let (home, notes) = notes_home();
    let slot = StartSlot::take();
    let daemon = Daemon::start_with_args(home, &["--notes", notes.to_str().unwrap()]);
    let mut conn = daemon.connect().with_timeout(120);
    // `serve --notes`: the folder is indexed though no config names it.
    support::wait_for_notes(&mut conn, 5);
    drop(slot);

    // `respond --quiet`: the answer and its citation, nothing spoken.
    let (out, err) = ok(
        &daemon,
        &[
            "respond",
            "--quiet",
            "--session",
            "s1",
            "What is the wifi password?",
        ],
    );
    let mut lines = out.lines();
    assert!(lines.next().unwrap().contains("kettle-47-moon"), "{out}");
    let home_md = notes.join("home.md").display().to_string();
    assert!(
        out.lines().any(|l| l.contains(&home_md)),
        "a citation of {home_md}: {out}"
    );
    assert!(err.starts_with("voxd: question turn"), "{err}");
    assert!(!daemon.home.path().join("reply.wav").exists());

    // `respond --json`, spoken: the whole reply.
    let (out, _) = ok(
        &daemon,
        &[
            "respond",
            "--json",
            "--session",
            "s1",
            "When is Maria's birthday?",
        ],
    );
    let reply: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reply["intent"], "question", "{reply}");
    assert!(
        reply["text"].as_str().unwrap().contains("14 March"),
        "{reply}"
    );
    assert!(reply["spoken"]["samples"].as_u64() > Some(0), "{reply}");
    assert!(daemon.home.path().join("reply.wav").is_file());

    // `forget`: the session's two turns go.
    let turns = |conn: &mut support::Conn| {
        conn.ok("history", json!({ "session": "s1" }))["turns"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(turns(&mut conn), 2);
    let (out, _) = ok(&daemon, &["forget", "s1"]);
    assert_eq!(out.trim(), "forgot 2 turn(s) of s1");
    assert_eq!(turns(&mut conn), 0);

    // `rag`: status by default, off, on; the daemon follows.
    assert_eq!(ok(&daemon, &["rag"]).0.trim(), "rag: on");
    assert_eq!(ok(&daemon, &["rag", "off"]).0.trim(), "rag: off");
    assert_eq!(ok(&daemon, &["rag", "status"]).0.trim(), "rag: off");
    assert_eq!(
        conn.ok("rag", json!({ "action": "status" }))["enabled"],
        false
    );
    // Without the notes only a language model could answer, and this home
    // has none: the question is refused, where with the notes it is quoted.
    let (answered, out, err) =
        daemon
            .home
            .run(&["respond", "--quiet", "What is the wifi password?"]);
    assert!(
        !answered && err.contains("no_model") && !out.contains("kettle-47-moon"),
        "rag off, no model: {out}{err}"
    );
    assert_eq!(ok(&daemon, &["rag", "on"]).0.trim(), "rag: on");
    let (out, _) = ok(
        &daemon,
        &["respond", "--quiet", "What is the wifi password?"],
    );
    assert!(out.contains("kettle-47-moon"), "{out}");
}

#[test]
fn say_reads_standard_input_and_stop_cuts_it_short() {
    let (home, _) = notes_home();
    let daemon = Daemon::start_in(home);
    let out_wav = daemon.home.path().join("stdin.wav");

    // `say -`: the text comes from standard input (two sentences).
    let mut say = daemon
        .home
        .voxd(&["say", "-", "--out", out_wav.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    say.stdin
        .take()
        .unwrap()
        .write_all(b"The kettle is on.\nTea is ready.\n")
        .unwrap();
    let said = say.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&said.stdout);
    assert!(
        said.status.success() && out.starts_with("spoke 2 sentence(s), "),
        "{out}{}",
        String::from_utf8_lossy(&said.stderr)
    );
    assert!(out
        .trim_end()
        .ends_with(&format!("into {}", out_wav.display())));
    let samples = voxd::stt::wav::read(&out_wav).unwrap().samples;
    assert!(samples.len() > 16_000 / 2, "{} samples", samples.len());

    // Nothing is being spoken: `stop` says so.
    assert_eq!(ok(&daemon, &["stop"]).0.trim(), "nothing was being spoken");

    // A long speech to the device, stopped once it has begun.
    let long = "This sentence is one of many said on and on. ".repeat(40);
    let speaking = daemon
        .home
        .voxd(&["say", &long])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut conn = daemon.connect();
    support::wait_until("the long speech to begin", || {
        conn.ok("status", json!({}))["speech"]["active"].as_u64() > Some(0)
    });
    assert_eq!(ok(&daemon, &["stop"]).0.trim(), "stopped");
    let spoken = speaking.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&spoken.stdout);
    assert!(
        spoken.status.success() && out.starts_with("interrupted after "),
        "{out}{}",
        String::from_utf8_lossy(&spoken.stderr)
    );
    let chunks: u64 = out["interrupted after ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(chunks < 40, "{out}");
    assert_eq!(
        conn.ok("status", json!({}))["speech"]["active"],
        json!(0),
        "the queue is clear"
    );
}

#[test]
fn listen_mute_and_unmute_on_the_command_line() {
    let store = test_model("openwakeword").parent().unwrap().to_path_buf();
    test_model("silero-vad");
    let daemon = Daemon::start(&format!(
        "[models]\ndir = {:?}\n\n[audio]\noutput = \"null\"\n\n\
         [assistant]\nvoice_loop = false\n",
        store.display().to_string()
    ));
    let (out, _) = ok(&daemon, &["listen", "--input", "socket"]);
    assert!(out.contains("socket"), "{out}");
    let mut conn = daemon.connect();
    let muted = |conn: &mut support::Conn| {
        conn.ok("listen", json!({ "action": "status" }))["muted"].clone()
    };
    assert_eq!(muted(&mut conn), false);
    assert_eq!(ok(&daemon, &["listen", "--mute"]).0.trim(), "muted");
    assert_eq!(muted(&mut conn), true);
    let (out, _) = ok(&daemon, &["listen", "--status", "--json"]);
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["muted"], true, "{status}");
    assert_eq!(status["listening"], true, "{status}");
    assert_eq!(ok(&daemon, &["listen", "--unmute"]).0.trim(), "unmuted");
    assert_eq!(muted(&mut conn), false);
    let (ok_, _, err) = daemon.home.run(&["listen", "--mute", "--unmute"]);
    assert!(!ok_, "both at once is refused: {err}");
}

#[test]
fn reload_loads_the_model_afresh_or_another_gguf() {
    let daemon = Daemon::start(&support::llm_config(8, 512, ""));
    let gguf = std::fs::read_dir(test_model("gemma3-270m-base"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "gguf"))
        .expect("the test model's GGUF");
    let (out, _) = ok(&daemon, &["reload"]);
    assert!(
        out.starts_with("loaded ") && out.contains(&gguf.display().to_string()),
        "{out}"
    );
    let mut conn = daemon.connect().with_timeout(120);
    let pid = |conn: &mut support::Conn| {
        let status = conn.ok("status", json!({}));
        support::voice::engine(&status, "llm")["pid"].as_u64()
    };
    let first = pid(&mut conn).expect("the model's worker runs");
    assert_eq!(
        conn.ok("status", json!({}))["llm"]["model"]["path"],
        json!(gguf)
    );

    // A GGUF named on the command line (a relative path, resolved by the
    // client): the same file by another name, loaded afresh in a new worker.
    let link = daemon.home.path().join("other.gguf");
    std::os::unix::fs::symlink(&gguf, &link).unwrap();
    let mut reload = daemon.home.voxd(&["reload", "other.gguf"]);
    let out = reload.current_dir(daemon.home.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("loaded "),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = pid(&mut conn).expect("the model's worker runs");
    assert_ne!(second, first, "a fresh worker");

    // A file that is not there: the client says so, the daemon keeps its
    // model.
    let (ok_, _, err) = daemon.home.run(&["reload", "/nonexistent/model.gguf"]);
    assert!(!ok_ && err.contains("/nonexistent/model.gguf"), "{err}");
    assert!(conn.ok("status", json!({}))["llm"]["model"].is_object());

    // A file that is there but no model: refused, and the model before it
    // stays (it once stayed refused until a restart), for requests and for
    // a later plain reload.
    let bad = daemon.home.path().join("notes.gguf");
    std::fs::write(&bad, "# not a model\n").unwrap();
    let reply = conn.request("reload", json!({ "model": bad }));
    assert_eq!(reply["ok"], false, "{reply}");
    assert_eq!(
        conn.ok("status", json!({}))["llm"]["model"]["path"],
        json!(gguf),
        "the previous model is loaded again"
    );
    let text = conn.ok(
        "generate",
        json!({ "prompt": "One, two,", "max_tokens": 3 }),
    );
    assert!(
        text["stats"]["generated_tokens"].as_u64() > Some(0),
        "{text}"
    );
    let (out, _) = ok(&daemon, &["reload"]);
    assert!(out.starts_with("loaded "), "{out}");
}
