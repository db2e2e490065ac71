//! The Wyoming door against the real `wyoming` client from PyPI
//! (`tests/wyoming/client.py`, driven here): a real daemon with the real
//! Whisper, Piper voice, openWakeWord models and the fixture notes serves
//! `describe`, speech to text of Piper-voiced clips (at the clip's own
//! 22,050 Hz, and as 48 kHz stereo 24-bit, three at once), `synthesize`
//! and streaming synthesis (whose audio is heard back through Whisper:
//! every sentence once, in one format, in bounded chunks, the first before
//! the stream ends), wake words on a wake clip and on other speech, and a
//! question about the notes answered with its fact and citation, streamed.
//! A second daemon, started with `voxd serve --wyoming` on TCP with small
//! limits and no models, meets bad input: each error is precise, ends its
//! connection, and the daemon still answers `ping`; an idle client and one
//! over the connection limit are told why and let go, and shutdown closes
//! an open connection at once.

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};
use support::wer::{normalise, says, Wer};
use support::{test_audio, test_model, worker_bin, Daemon, Home};

/// The voice the daemon speaks with, as `info` names it.
const VOICE: &str = "piper-en_US-joe-medium";
/// Small limits for the bad-input daemon.
const HEADER_LIMIT: usize = 4096;
const PAYLOAD_LIMIT: usize = 65_536;

/// Runs `client.py URI SCENARIO ARGS…` and returns what it printed.
fn client(uri: &str, scenario: &str, args: &[&str], daemon: &Daemon) -> Value {
    let python = std::env::var("VOXD_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("VOXD_TEST_PYTHON is not set: run `bash scripts/bootstrap.sh test`")
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wyoming/client.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(uri)
        .arg(scenario)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "client.py {scenario} {args:?} failed: {}\nthe daemon's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        daemon.log()
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "client.py {scenario} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A daemon with every model, the fixture notes (extractive answers: the
/// base test model's are not stable enough to assert on) and Wyoming on a
/// Unix socket in its home; ready once the notes are indexed.
fn full_daemon() -> (Daemon, String) {
    let store = test_model("all-minilm-l6-v2")
        .parent()
        .unwrap()
        .to_path_buf();
    for model in [VOICE, "whisper-tiny.en", "openwakeword"] {
        test_model(model);
    }
    let home = Home::new("");
    let notes = home.path().join("notes");
    support::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes"),
        &notes,
    );
    let uri = format!("unix://{}", home.path().join("wyoming.sock").display());
    let config = format!(
        "[models]\ndir = {store:?}\nsources = [\"pypi\"]\n\n\
         [engines.stt]\ncommand = {stt:?}\n\n\
         [rag]\nnotes = [{notes:?}]\nanswer_mode = \"extractive\"\n\n\
         [tts]\nvoice = {VOICE:?}\nvariation = 0.0\n\n\
         [audio]\noutput = \"null\"\n\n\
         [assistant]\nvoice_loop = false\n\n\
         [wyoming]\nlisten = {uri:?}\n",
        store = store.display().to_string(),
        stt = worker_bin("voxd-stt").display().to_string(),
        notes = notes.display().to_string(),
    );
    std::fs::write(home.path().join("voxd.toml"), config).unwrap();
    (Daemon::start_indexed(home, 5), uri)
}

/// What Whisper (through the daemon's own `transcribe`) hears in `wav`.
fn heard(daemon: &Daemon, wav: &Path) -> String {
    let mut conn = daemon.connect().with_timeout(120);
    let reply = conn.ok("transcribe", json!({ "path": wav }));
    reply["text"].as_str().unwrap().to_string()
}

/// Chunk sizes within Home Assistant's bounds: at most 4,096 samples, and
/// at least 1,024 except each sentence's last.
fn assert_chunks_bounded(audio: &Value) {
    let types: Vec<&str> = audio["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let mut sizes = audio["chunks"].as_array().unwrap().iter();
    for (i, t) in types.iter().enumerate() {
        if *t != "audio-chunk" {
            continue;
        }
        let size = sizes.next().unwrap().as_u64().unwrap();
        let last_of_sentence = types.get(i + 1) != Some(&"audio-chunk");
        assert!(
            size <= 4096 && (size >= 1024 || last_of_sentence),
            "a chunk of {size} samples: {audio}"
        );
    }
}

#[test]
fn home_assistant_s_requests_are_served_with_real_models() {
    let started = Instant::now();
    let (daemon, uri) = full_daemon();
    let tmp = tempfile::tempdir().unwrap();
    let audio = test_audio();

    // describe → info, fast, before any model is loaded.
    let described = client(&uri, "describe", &[], &daemon);
    let elapsed = described["elapsed_ms"].as_f64().unwrap();
    // Home Assistant waits one second; half of it, scaled on slow machines.
    let budget = support::scaled(std::time::Duration::from_millis(500)).as_secs_f64() * 1000.0;
    assert!(elapsed < budget, "describe took {elapsed} ms: {described}");
    let info = &described["info"];
    let asr = &info["asr"][0];
    assert_eq!(asr["installed"], true, "{info}");
    assert_eq!(asr["models"][0]["name"], "whisper-tiny.en", "{info}");
    assert_eq!(asr["models"][0]["languages"], json!(["en"]), "{info}");
    let tts = &info["tts"][0];
    assert_eq!(tts["supports_synthesize_streaming"], true, "{info}");
    assert_eq!(tts["voices"][0]["name"], VOICE, "{info}");
    assert_eq!(tts["voices"][0]["languages"], json!(["en_US"]), "{info}");
    assert_eq!(tts["voices"][0]["installed"], true, "{info}");
    let words: Vec<&str> = info["wake"][0]["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        words,
        ["alexa", "hey_jarvis", "hey_mycroft", "hey_rhasspy"],
        "{info}"
    );
    assert_eq!(
        info["wake"][0]["models"][1]["phrase"], "hey jarvis",
        "{info}"
    );
    let handle = &info["handle"][0];
    assert_eq!(handle["supports_handled_streaming"], true, "{info}");
    assert_eq!(handle["models"][0]["languages"], json!(["en"]), "{info}");
    for program in ["asr", "tts", "wake", "handle"] {
        let p = &info[program][0];
        assert_eq!(p["attribution"]["name"], "voxd", "{program}: {info}");
        assert_eq!(p["version"], env!("CARGO_PKG_VERSION"), "{program}: {info}");
    }
    assert!(
        described["raw"]["satellite"].is_null(),
        "a satellite hides every other service from Home Assistant: {described}"
    );

    // Speech to text of a Piper-voiced clip at 22,050 Hz.
    let clip = audio.join("piper/00.wav");
    let expected = std::fs::read_to_string(audio.join("00.txt")).unwrap();
    let transcript = client(&uri, "transcribe", &[clip.to_str().unwrap()], &daemon);
    let mut wer = Wer::default();
    wer.add(&expected, transcript["text"].as_str().unwrap());
    // Measured: no error in the 7 words (as tests/stt.rs on this clip);
    // margin one word.
    wer.assert_near(&format!("transcribe over Wyoming: {transcript}"), 0.0, 0.15);
    assert_eq!(transcript["language"], "en", "{transcript}");

    // Several at once, one connection each (the engine queue serves them);
    // the third as 48 kHz stereo 24-bit audio.
    let wide = tmp.path().join("03-48k-stereo-24bit.wav");
    let converted = Command::new("sox")
        .arg(audio.join("piper/03.wav"))
        .args(["-r", "48000", "-c", "2", "-b", "24", "-t", "wavpcm"])
        .arg(&wide)
        .status()
        .expect("sox runs");
    assert!(converted.success());
    let clips: Vec<String> = [
        audio.join("piper/01.wav"),
        audio.join("piper/02.wav"),
        wide.clone(),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect();
    let args: Vec<&str> = clips.iter().map(String::as_str).collect();
    let parallel = client(&uri, "parallel", &args, &daemon);
    assert_eq!(parallel["described"], true, "{parallel}");
    let mut wer = Wer::default();
    for n in 1..=3 {
        let expected = std::fs::read_to_string(audio.join(format!("{n:02}.txt"))).unwrap();
        wer.add(&expected, parallel["texts"][n - 1].as_str().unwrap());
    }
    // Measured: 0 errors in these clips' words; margin one word in ten.
    wer.assert_near(&format!("transcriptions at once: {parallel}"), 0.0, 0.1);

    // synthesize: one format, bounded chunks, heard back by Whisper.
    let said = "The garden gate is painted blue.";
    let wav = tmp.path().join("synthesize.wav");
    let synth = client(
        &uri,
        "synthesize",
        &[said, VOICE, wav.to_str().unwrap()],
        &daemon,
    );
    assert_eq!(synth["formats"], json!([[22050, 2, 1]]), "{synth}");
    assert!(synth["chunks"].as_array().unwrap().len() > 3, "{synth}");
    assert_chunks_bounded(&synth);
    let back = heard(&daemon, &wav);
    assert!(
        says(&back, "garden gate") && says(&back, "blue"),
        "heard {back:?}"
    );

    // Streaming synthesis with Home Assistant's compatibility `synthesize`
    // in the middle: each sentence once, all in one format.
    let text = "The kettle is on the stove. We eat at seven tonight. Please feed the cat.";
    let wav = tmp.path().join("stream.wav");
    let stream = client(
        &uri,
        "synthesize-stream",
        &[text, VOICE, wav.to_str().unwrap()],
        &daemon,
    );
    let formats = stream["formats"].as_array().unwrap();
    assert_eq!(formats.len(), 3, "one audio-start per sentence: {stream}");
    assert!(
        formats.iter().all(|f| *f == json!([22050, 2, 1])),
        "{stream}"
    );
    let types = stream["types"].as_array().unwrap();
    assert_eq!(types.last().unwrap(), "synthesize-stopped", "{stream}");
    assert_chunks_bounded(&stream);
    let back = heard(&daemon, &wav);
    let words = normalise(&back);
    for word in ["kettle", "seven", "cat"] {
        let times = words.iter().filter(|w| *w == word).count();
        assert_eq!(times, 1, "{word:?} heard {times} times in {back:?}");
    }
    let mut wer = Wer::default();
    wer.add(text, &back);
    // Measured: 0 errors in 15 words; margin two words.
    wer.assert_near(&format!("streamed speech heard back: {back:?}"), 0.0, 0.15);

    // Wake words: "Hey Jarvis." (from 1.5 s, its question 0.4 s after
    // it) fires after the phrase, before the question has gone far; other
    // speech is not-detected.
    let wake = audio.join("wake/00.wav");
    let times = std::fs::read_to_string(wake.with_extension("times")).unwrap();
    let question_at: f64 = times.split_whitespace().next().unwrap().parse().unwrap();
    let found = client(
        &uri,
        "wake",
        &[wake.to_str().unwrap(), "hey_jarvis"],
        &daemon,
    );
    let events = found["events"].as_array().unwrap();
    assert_eq!(events[0]["type"], "detection", "{found}");
    assert_eq!(events[0]["data"]["name"], "hey_jarvis", "{found}");
    let at = events[0]["data"]["timestamp"].as_f64().unwrap() / 1000.0;
    assert!(
        at > 1.6 && at < question_at + 0.6,
        "detected at {at} s; the wake word is said from 1.5 s, the question from {question_at} s"
    );
    assert!(
        events.iter().all(|e| e["type"] != "not-detected"),
        "{found}"
    );
    let none = client(&uri, "wake", &[clip.to_str().unwrap()], &daemon);
    let types: Vec<&str> = none["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["not-detected", "pong"], "{none}");

    // A question about the notes: the fact and its citation, streamed.
    let answer = client(&uri, "handle", &["What is the wifi password?"], &daemon);
    let types: Vec<&str> = answer["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"handled-start"), "{answer}");
    assert!(types.contains(&"handled-chunk"), "{answer}");
    assert_eq!(
        &types[types.len() - 2..],
        ["handled", "handled-stop"],
        "{answer}"
    );
    let handled = &answer["handled"][0];
    let text = handled["text"].as_str().unwrap();
    assert!(text.contains("kettle-47-moon"), "{answer}");
    assert!(text.contains("(Source: home.md, line"), "{answer}");
    assert_eq!(
        answer["chunks"], handled["text"],
        "the chunks make up the answer"
    );
    let context = &handled["context"];
    assert_eq!(context["conversation_id"], "ha-conversation-1", "{answer}");
    let cited = &context["citations"][0];
    assert!(
        cited["path"].as_str().unwrap().ends_with("/notes/home.md"),
        "{answer}"
    );
    let line = cited["line_start"].as_u64().unwrap();
    let home_md = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes/home.md"),
    )
    .unwrap();
    assert!(
        home_md
            .lines()
            .nth(line as usize - 1)
            .unwrap()
            .contains("kettle-47-moon"),
        "line {line} of home.md is not the fact: {answer}"
    );

    // status counts what was served; no connection is left open.
    let mut conn = daemon.connect();
    daemon.wait_until(
        "the Wyoming connections to close",
        support::scaled_secs(10),
        || conn.ok("status", json!({}))["wyoming"]["connections"] == 0,
    );
    let status = conn.ok("status", json!({}));
    let wyoming = &status["wyoming"];
    assert_eq!(wyoming["listen"], uri.as_str(), "{status}");
    let (ok, printed, err) = daemon.home.run(&["status"]);
    assert!(ok, "{err}");
    let line = format!("wyoming: {uri}, 0 connection(s) open; requests: describe 2, detect 2,");
    assert!(printed.contains(&line), "{printed}");
    for (kind, n) in [
        ("describe", 2),
        ("transcribe", 4),
        ("synthesize", 1),
        ("synthesize-start", 1),
        ("detect", 2),
        ("transcript", 1),
    ] {
        assert_eq!(wyoming["requests"][kind], n, "{kind}: {status}");
    }
    let metrics = conn.ok("metrics", json!({}));
    let text = metrics["text"].as_str().unwrap();
    assert!(
        text.contains("voxd_requests_total{command=\"wyoming.handle\",code=\"ok\"} 1"),
        "{text}"
    );
    assert!(text.contains("voxd_wyoming_connections 0"), "{text}");
    eprintln!(
        "Wyoming conformance: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A free loopback TCP port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn bad_input_gets_a_precise_error_and_the_daemon_keeps_serving() {
    let uri = format!("tcp://127.0.0.1:{}", free_port());
    let empty_store = tempfile::tempdir().unwrap();
    // Turned on by `voxd serve --wyoming URI`, its limits from the config.
    let home = Home::new(&format!(
        "[models]\ndir = {store:?}\n\n[audio]\noutput = \"null\"\n\n\
         [wyoming]\nmax_header_bytes = {HEADER_LIMIT}\n\
         max_payload_bytes = {PAYLOAD_LIMIT}\nmax_connections = 2\nidle_timeout_secs = 2\n",
        store = empty_store.path().display().to_string(),
    ));
    let mut daemon = Daemon::start_with_args(home, &["--wyoming", &uri]);
    let limits = [HEADER_LIMIT.to_string(), PAYLOAD_LIMIT.to_string()];
    for (case, code) in [
        ("unknown_type", "unknown_event"),
        ("unknown_program", "invalid_params"),
        ("oversized_header", "header_too_long"),
        ("oversized_payload", "payload_too_long"),
        ("chunk_before_start", "audio_not_started"),
        ("garbage", "bad_event"),
        ("bad_audio_format", "bad_audio_format"),
        ("missing_model", "no_model"),
    ] {
        let bad = client(&uri, "bad", &[case, &limits[0], &limits[1]], &daemon);
        assert_eq!(bad["error"]["code"], code, "{case}: {bad}");
        assert!(
            !bad["error"]["text"].as_str().unwrap_or_default().is_empty(),
            "{case}: {bad}"
        );
        assert_eq!(
            bad["closed"], true,
            "{case}: the connection stays open: {bad}"
        );
        let ping = client(&uri, "ping", &[], &daemon);
        assert_eq!(ping["pong"], true, "after {case}: {ping}");
        assert_eq!(ping["text"], "still there?", "after {case}: {ping}");
    }
    let text = |case: &str| {
        client(&uri, "bad", &[case, &limits[0], &limits[1]], &daemon)["error"]["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(text("unknown_type").contains("fly-to-the-moon"));
    assert!(text("unknown_program").contains("voxd-stt"));
    assert!(text("oversized_header").contains(&HEADER_LIMIT.to_string()));
    assert!(text("missing_model").contains("voxd models pull"));

    // A client that says nothing is let go.
    let idle = client(&uri, "bad", &["idle", &limits[0], &limits[1]], &daemon);
    assert_eq!(idle["error"]["code"], "idle_timeout", "{idle}");
    assert_eq!(idle["closed"], true, "{idle}");

    // Over wyoming.max_connections, a client is told why and closed.
    let addr = uri.strip_prefix("tcp://").unwrap();
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let busy = client(&uri, "bad", &["busy", &limits[0], &limits[1]], &daemon);
    assert_eq!(busy["error"]["code"], "too_many_connections", "{busy}");
    assert_eq!(busy["closed"], true, "{busy}");
    drop(held);
    daemon.wait_until(
        "a connection slot to come free",
        support::scaled_secs(10),
        || {
            client(&uri, "bad", &["busy", &limits[0], &limits[1]], &daemon)["error"]["code"]
                == "idle_timeout"
        },
    );

    // Shutdown closes an idle connection at once and exits cleanly.
    let mut open = TcpStream::connect(addr).unwrap();
    open.set_read_timeout(Some(support::scaled_secs(10)))
        .unwrap();
    let stopping = Instant::now();
    let status = daemon.terminate();
    assert!(status.success(), "{status:?}\n{}", daemon.log());
    let mut rest = Vec::new();
    open.read_to_end(&mut rest)
        .expect("the connection is closed, not left hanging");
    assert!(
        stopping.elapsed() < support::scaled_secs(5),
        "shutdown took {:?}",
        stopping.elapsed()
    );
}

/// Generative answers stream over Wyoming token by token, as the model
/// writes them (the extractive answer of the test above is one piece).
/// Greedy decoding makes this answer the same every run, and supported by
/// its source (tests/llm.rs), so the chunks are the whole answer.
#[test]
fn a_generated_answer_streams_as_the_model_writes_it() {
    let uri = format!("tcp://127.0.0.1:{}", free_port());
    let (home, _notes) = support::notes_and_model_home(&format!(
        "answer_mode = \"generative\"\n\n[wyoming]\nlisten = {uri:?}\n"
    ));
    let daemon = Daemon::start_indexed(home, 5);
    let answer = client(&uri, "handle", &["What is the wifi password?"], &daemon);
    let types: Vec<&str> = answer["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let chunks = types.iter().filter(|t| **t == "handled-chunk").count();
    assert!(chunks >= 4, "{chunks} chunks: {answer}");
    assert_eq!(
        &types[types.len() - 2..],
        ["handled", "handled-stop"],
        "{answer}"
    );
    let text = answer["handled"][0]["text"].as_str().unwrap();
    assert!(text.contains("kettle-47-moon"), "{answer}");
    assert!(text.contains("(Source: home.md, line"), "{answer}");
    let streamed = answer["chunks"].as_str().unwrap();
    assert!(
        streamed.split_whitespace().eq(text.split_whitespace()),
        "streamed {streamed:?}, answered {text:?}"
    );
}
