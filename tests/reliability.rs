//! Reliability of the voice loop (issue 8): the speech recogniser's or the
//! language model's worker killed while it works on a spoken question is a
//! spoken and evented error, and the next question is answered by a
//! restarted worker; once the engines unload, no worker is left and the
//! daemon is back to its idle size.

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::voice::{
    self, engine, events_until, events_until_failing_on, has, last, send_pcm, speech, status_until,
};
use support::{Conn, Daemon};

const EVENTS: &[&str] = &[
    "wake.",
    "speech.",
    "transcript.",
    "assistant.",
    "listen.error",
    "engine.state",
];

fn subscribe(daemon: &Daemon) -> Conn {
    let mut events = daemon.connect().with_timeout(240);
    events.ok("subscribe", json!({ "events": EVENTS }));
    events
}

/// A transcript of a whole utterance (one that can start a turn).
fn transcript(event: &str) -> bool {
    event == "transcript.early" || event == "transcript.final"
}

fn answer_of(seen: &[(String, Value)]) -> String {
    last(seen, "assistant.reply")["text"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_recogniser_killed_mid_transcription_is_an_apology_and_the_next_question_works() {
    // No early transcription and no partials: the one request to the worker
    // is the final one, made after speech.end.
    let daemon = Daemon::start_indexed(
        voice::home("early_transcribe_ms = 0\n\n[stt]\npartial_interval_ms = 0\n"),
        5,
    );
    let mut control = daemon.connect().with_timeout(240);
    let dir = daemon.home.path().to_path_buf();
    let wake = speech(&mut control, &dir, "Hey Jarvis.");
    let question = speech(&mut control, &dir, "What is the wifi password?");
    let mut events = subscribe(&daemon);

    send_pcm(&mut control, &voice::woken(&wake, &question));
    events_until(&mut events, "speech.end", &daemon);
    // The utterance is with the worker: kill it while it transcribes.
    let status = status_until(&mut control, "the worker to transcribe", |s| {
        engine(s, "stt")["state"] == "busy"
    });
    let pid = engine(&status, "stt")["pid"].as_u64().unwrap();
    let target = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(target, rustix::process::Signal::KILL).unwrap();

    // Evented (the failed transcription, then the assistant's error) and
    // spoken.
    let seen = events_until_failing_on(
        &mut events,
        "assistant.error",
        &daemon,
        &["transcript.final", "assistant.reply"],
    );
    let failed = last(&seen, "listen.error");
    assert_eq!(failed["code"], "engine_failed", "{failed}");
    apologised(
        &seen,
        &mut events,
        &mut control,
        &daemon,
        ("stt", &failed["utterance"]),
    );

    // The next question (wake word and all) is answered by a new worker.
    send_pcm(&mut control, &voice::woken(&wake, &question));
    let seen = events_until(&mut events, "assistant.reply", &daemon);
    assert!(has(&seen, "wake.detected"), "{seen:#?}");
    let answer = answer_of(&seen);
    assert!(answer.contains("kettle-47-moon"), "{answer}");
    let status = control.ok("status", json!({}));
    let stt = engine(&status, "stt");
    assert_eq!(stt["restarts"], 1, "{stt}");
    assert_ne!(stt["pid"].as_u64(), Some(pid), "{stt}");
    assert!(stt["last_error"].is_string(), "{stt}");
}

#[test]
fn a_language_model_killed_mid_answer_is_an_apology_and_the_next_question_works() {
    // No memory budget: what is tested is the crash, not the tiny profile
    // (tests/low_ram.rs).
    let daemon =
        Daemon::start_indexed(voice::thinking_home("[engines]\nmemory_budget_mb = 0\n"), 5);
    let mut control = daemon.connect().with_timeout(240);
    let dir = daemon.home.path().to_path_buf();
    let wake = speech(&mut control, &dir, "Hey Jarvis.");
    let question = speech(&mut control, &dir, "What is the wifi password?");
    let mut events = subscribe(&daemon);

    send_pcm(&mut control, &voice::woken(&wake, &question));
    // The question is transcribed and the model is asked: kill its worker
    // the moment it starts writing the answer. After the transcript, the
    // answer makes the worker busy twice: `load` (the model's info; at once
    // when the wake word has already loaded it), then `generate`.
    let mut seen = Vec::new();
    let pid = loop {
        seen.extend(events_until(&mut events, "engine.state", &daemon));
        let Some(asked) = seen.iter().position(|(name, _)| transcript(name)) else {
            continue;
        };
        let busy: Vec<&Value> = seen[asked..]
            .iter()
            .filter(|(name, data)| {
                name == "engine.state" && data["engine"] == "llm" && data["state"] == "busy"
            })
            .map(|(_, data)| data)
            .collect();
        if let [_, generating] = busy[..] {
            break generating["pid"].as_u64().unwrap();
        }
    };
    let target = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(target, rustix::process::Signal::KILL).unwrap();

    // Evented and spoken.
    let heard = seen
        .iter()
        .rev()
        .find(|(name, _)| transcript(name))
        .map(|(_, data)| data.clone())
        .unwrap();
    let seen = events_until_failing_on(
        &mut events,
        "assistant.error",
        &daemon,
        &["assistant.reply"],
    );
    apologised(
        &seen,
        &mut events,
        &mut control,
        &daemon,
        ("llm", &heard["utterance"]),
    );

    // The next question is answered by the model in a new worker.
    send_pcm(&mut control, &voice::woken(&wake, &question));
    let seen = events_until(&mut events, "assistant.reply", &daemon);
    // The model's own answer, which stood (not replaced by a quote), with
    // the password in it: the test model says "47-moon [2]." (measured).
    let reply = last(&seen, "assistant.reply");
    assert_eq!(reply["ask"]["mode"], "generative", "{reply}");
    assert_eq!(reply["ask"]["flags"], json!([]), "{reply}");
    assert!(reply["ask"]["llm"]["generated_tokens"].as_u64() > Some(0));
    assert!(
        reply["text"].as_str().unwrap().contains("47-moon"),
        "{reply}"
    );
    let status = control.ok("status", json!({}));
    let llm = engine(&status, "llm");
    assert_eq!(llm["restarts"], 1, "{llm}");
    assert_ne!(llm["pid"].as_u64(), Some(pid), "{llm}");
}

/// `seen` ends with the `assistant.error` for `engine` killed (SIGKILL)
/// while it worked on `utterance`; the apology is then said aloud, and this
/// returns once it has been.
fn apologised(
    seen: &[(String, Value)],
    events: &mut Conn,
    control: &mut Conn,
    daemon: &Daemon,
    (engine, utterance): (&str, &Value),
) {
    let error = last(seen, "assistant.error");
    assert_eq!(error["code"], "engine_failed", "{error}");
    assert_eq!(&error["utterance"], utterance, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("engine `{engine}` crashed")) && message.contains("signal: 9"),
        "{message}"
    );
    let said = spoken_until_finished(events, daemon);
    assert!(
        said.starts_with("Sorry, that failed")
            && said.contains(&format!("engine {engine} crashed")),
        "{said}"
    );
    status_until(control, "the apology to end", |s| {
        s["speech"]["active"] == 0
    });
}

/// The text of the `speech.chunk` events up to the `speech.finished` of the
/// first utterance that said something (a reply stopped before its first
/// sentence finishes silently).
fn spoken_until_finished(events: &mut Conn, daemon: &Daemon) -> String {
    let mut said = Vec::new();
    while said.is_empty() {
        let seen = events_until_failing_on(events, "speech.finished", daemon, &[]);
        said.extend(
            seen.iter()
                .filter(|(n, _)| n == "speech.chunk")
                .map(|(_, d)| d["text"].as_str().unwrap().to_string()),
        );
    }
    said.join(" ")
}

/// Whether process `pid` is still running.
fn alive(pid: u64) -> bool {
    // A reaped process has no /proc entry; an unreaped one is a zombie.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// One spoken question answered; returns the worker pids `engine.state`
/// reported meanwhile.
fn ask_aloud(
    control: &mut Conn,
    events: &mut Conn,
    daemon: &Daemon,
    clips: (&[f32], &[f32]),
) -> Vec<u64> {
    send_pcm(control, &voice::woken(clips.0, clips.1));
    let seen = events_until(events, "assistant.reply", daemon);
    let answer = answer_of(&seen);
    assert!(answer.contains("kettle-47-moon"), "{answer}");
    seen.iter()
        .filter(|(n, _)| n == "engine.state")
        .filter_map(|(_, d)| d["pid"].as_u64())
        .collect()
}

fn unloaded(control: &mut Conn, workers: &[u64]) -> u64 {
    let status = status_until(control, "the engines to unload", |s| {
        s["engines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["state"] == "stopped")
    });
    for &pid in workers {
        support::wait_until("the worker process to be gone", || !alive(pid));
    }
    status["rss_bytes"].as_u64().unwrap()
}

#[test]
fn after_the_engines_unload_no_worker_is_left_and_the_daemon_is_back_to_idle() {
    let daemon = Daemon::start_indexed(
        voice::home("[engines]\nidle_unload_secs = 1\n\n[assistant]\nfollowup_secs = 0\n"),
        5,
    );
    let mut control = daemon.connect().with_timeout(240);
    let dir: &Path = daemon.home.path();
    let wake = speech(&mut control, dir, "Hey Jarvis.");
    let question = speech(&mut control, dir, "What is the wifi password?");
    let mut events = subscribe(&daemon);

    // Warm: everything the daemon itself loads for a turn (VAD, wake word,
    // embedder, voice) is loaded; then the STT worker unloads.
    let first = ask_aloud(&mut control, &mut events, &daemon, (&wake, &question));
    assert!(!first.is_empty(), "the STT worker was started");
    let idle = unloaded(&mut control, &first);

    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.extend(ask_aloud(
            &mut control,
            &mut events,
            &daemon,
            (&wake, &question),
        ));
    }
    let after = unloaded(&mut control, &workers);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    eprintln!(
        "daemon RSS idle {:.1} MiB, after three more turns {:.1} MiB",
        mib(idle),
        mib(after)
    );
    // Back to idle, give or take allocator slack. Before Piper's ONNX
    // Runtime arena was shrunk after each sentence, three turns left +79 to
    // +82 MiB in some runs (the arena kept the longest sentence's buffers).
    assert!(
        mib(after) <= mib(idle) + IDLE_SLACK_MIB,
        "daemon RSS {:.1} MiB after three turns, {:.1} MiB idle",
        mib(after),
        mib(idle)
    );
}

/// How far above its idle size the daemon may be once its engines unloaded.
const IDLE_SLACK_MIB: f64 = 40.0;
