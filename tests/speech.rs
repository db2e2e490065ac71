//! Spoken replies end to end: the real daemon, the real joe voice, real
//! WAV files, the real ALSA library (a file-backed test device), and the
//! control socket.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use support::{wait_until, Conn, Daemon, Home};

/// Config with the test model store and extra TOML appended.
fn config(extra: &str) -> String {
    let joe = support::test_model("piper-en_US-joe-medium");
    let store = joe.parent().unwrap();
    format!(
        "[models]\ndir = {:?}\n[tts]\nvoice = \"piper-en_US-joe-medium\"\n{extra}",
        store.display().to_string()
    )
}

fn wav_config(file: &Path) -> String {
    config(&format!(
        "[audio]\noutput = \"wav\"\nfile = {:?}\n",
        file.display().to_string()
    ))
}

/// Reads a WAV: (rate, samples).
fn read_wav(path: &Path) -> (u32, Vec<i16>) {
    let mut reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{} is not a valid WAV: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(spec.channels, 1);
    assert_eq!(spec.bits_per_sample, 16);
    let samples = reader.samples::<i16>().map(Result::unwrap).collect();
    (spec.sample_rate, samples)
}

/// Waits for the next event named `name` on a subscribed connection.
fn next_event(conn: &mut Conn, name: &str) -> Value {
    let deadline = Instant::now() + support::scaled_secs(120);
    while Instant::now() < deadline {
        let msg = conn.read().expect("voxd closed the connection");
        if msg["event"] == name {
            return msg["data"].clone();
        }
    }
    panic!("no {name} event");
}

fn subscribe(daemon: &Daemon, events: &[&str]) -> Conn {
    let mut conn = daemon.connect();
    conn.ok("subscribe", json!({ "events": events }));
    conn
}

fn error_of(reply: &Value) -> (String, String) {
    assert_eq!(reply["ok"], json!(false), "expected an error: {reply}");
    (
        reply["error"]["code"].as_str().unwrap().to_string(),
        reply["error"]["message"].as_str().unwrap().to_string(),
    )
}

#[test]
fn say_out_writes_a_valid_wav_of_plausible_length() {
    let daemon = Daemon::start(&config("[audio]\noutput = \"null\"\n"));
    let out = daemon.home.path().join("reply.wav");
    let text = "Hello, the weather today is sunny. Tomorrow it will rain in the afternoon.";
    let (ok, stdout, stderr) = daemon
        .home
        .run(&["say", text, "--out", out.to_str().unwrap()]);
    assert!(ok, "voxd say failed: {stderr}");
    assert!(stdout.contains("spoke 2 sentence(s)"), "{stdout}");
    let (rate, samples) = read_wav(&out);
    assert_eq!(rate, 22050);
    let seconds = samples.len() as f64 / rate as f64;
    // 13 words at a normal pace: 3.5–7 s (Piper's reference says ~4.9 s,
    // plus 2 × 0.2 s sentence silence).
    assert!((3.5..7.0).contains(&seconds), "{seconds:.2} s");
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!(peak > 30000, "peak-normalised speech, not silence: {peak}");
}

#[test]
fn daemon_audio_out_appends_every_reply_to_one_wav() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("replies.wav");
    let home = Home::new(&config(""));
    // `voxd serve --audio-out FILE.wav`, as users run it.
    let log = std::fs::File::create(home.path().join("voxd.log")).unwrap();
    let child = home
        .voxd(&["serve", "--log-format", "text", "--audio-out"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + support::scaled_secs(60);
    while std::os::unix::net::UnixStream::connect(home.socket()).is_err() {
        assert!(Instant::now() < deadline, "voxd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let daemon = Daemon { home, child };
    let mut conn = daemon.connect();
    let first = conn.ok("say", json!({ "text": "First reply." }));
    let second = conn.ok("say", json!({ "text": "Second reply, a bit longer." }));
    assert_eq!(first["interrupted"], json!(false));
    assert_eq!(first["chunks"], 1);
    let (rate, samples) = read_wav(&file);
    assert_eq!(rate, 22050);
    let expected = first["samples"].as_u64().unwrap() + second["samples"].as_u64().unwrap();
    assert_eq!(samples.len() as u64, expected, "both replies, back to back");
}

#[test]
fn the_first_sentence_is_spoken_before_the_text_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&wav_config(&tmp.path().join("out.wav")));
    let mut events = subscribe(&daemon, &["speech."]);
    let mut llm = daemon.connect();
    // An LLM reply, token by token; the stream stays open throughout.
    let tokens = [
        "The",
        " weather",
        " today",
        " is",
        " sunny",
        ".",
        " Tomorrow",
        " brings",
        " rain",
        ",",
        " and",
        " then",
        " snow",
        ".",
        " Dr",
        ".",
        " Lee",
        " agrees",
        "!",
    ];
    let open = llm.ok("say", json!({ "text": tokens[0], "more": true }));
    let utterance = open["utterance"].as_u64().unwrap();
    assert_eq!(open["open"], json!(true));
    let mut sent = 1;
    // Send tokens until the first sentence is complete and confirmed (the
    // splitter needs the whitespace after the stop).
    while tokens[sent - 1] != " Tomorrow" {
        llm.ok(
            "say",
            json!({ "utterance": utterance, "text": tokens[sent], "more": true }),
        );
        sent += 1;
    }
    let started = next_event(&mut events, "speech.started");
    assert_eq!(started["utterance"], utterance);
    // The first chunk comes while the rest of the text has not been sent.
    let chunk = next_event(&mut events, "speech.chunk");
    assert_eq!(chunk["utterance"], utterance);
    assert_eq!(chunk["index"], 0);
    assert_eq!(chunk["text"], "The weather today is sunny.");
    assert!(chunk["samples"].as_u64().unwrap() > 10_000);
    assert!(sent < tokens.len(), "the last token is still unsent");
    for (i, token) in tokens.iter().enumerate().skip(sent) {
        let last = i == tokens.len() - 1;
        let reply = llm.ok(
            "say",
            json!({ "utterance": utterance, "text": token, "more": !last }),
        );
        if last {
            assert_eq!(reply["chunks"], 3, "{reply}");
            assert_eq!(reply["interrupted"], json!(false));
        }
    }
    let texts: Vec<Value> = (0..2)
        .map(|_| next_event(&mut events, "speech.chunk")["text"].clone())
        .collect();
    assert_eq!(
        texts,
        [
            json!("Tomorrow brings rain, and then snow."),
            json!("Dr. Lee agrees!")
        ]
    );
    let finished = next_event(&mut events, "speech.finished");
    assert_eq!(finished["utterance"], utterance);
    assert_eq!(finished["chunks"], 3);
}

#[test]
fn bad_input_gets_a_clear_error_or_speech_and_the_queue_keeps_working() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&wav_config(&tmp.path().join("out.wav")));
    let mut conn = daemon.connect();
    for text in ["", "   ", "...!!! ???", "```\nfn main() {}\n```"] {
        let (code, message) = error_of(&conn.request("say", json!({ "text": text })));
        assert_eq!(code, "invalid_params", "{text:?}");
        assert!(message.contains("nothing to say"), "{message}");
    }
    let big = "This sentence is repeated to make a very long text. ".repeat(2000);
    assert!(big.len() > 100_000);
    let (code, message) = error_of(&conn.request("say", json!({ "text": big })));
    assert_eq!(code, "invalid_params");
    assert!(message.contains("tts.max_text_bytes"), "{message}");
    // Characters espeak cannot say are skipped; the words around them are spoken.
    let odd = conn.ok(
        "say",
        json!({ "text": "Smile 🙂\u{200b} please \u{7} ⊕ ∑ ﷺ, thanks." }),
    );
    assert_eq!(odd["interrupted"], json!(false));
    assert!(odd["samples"].as_u64().unwrap() > 22050, "{odd}");
    // Missing and corrupt voices: clear errors naming the file.
    let (code, message) = error_of(&conn.request(
        "say",
        json!({ "text": "Hello.", "voice": "/nonexistent/voice.onnx" }),
    ));
    assert_eq!(code, "invalid_params");
    assert!(message.contains("/nonexistent/voice.onnx"), "{message}");
    let bad = tmp.path().join("bad.onnx");
    std::fs::write(&bad, b"not a model").unwrap();
    std::fs::copy(
        support::test_model("piper-en_US-joe-medium").join("en_US-joe-medium.onnx.json"),
        tmp.path().join("bad.onnx.json"),
    )
    .unwrap();
    let (_, message) = error_of(&conn.request(
        "say",
        json!({ "text": "Hello.", "voice": bad.display().to_string() }),
    ));
    assert!(message.contains("bad.onnx"), "{message}");
    let (code, _) =
        error_of(&conn.request("say", json!({ "text": "Hello.", "out": "relative.wav" })));
    assert_eq!(code, "invalid_params");
    let (code, message) = error_of(&conn.request(
        "say",
        json!({ "text": "Hello.", "out": "/nonexistent/dir/x.wav" }),
    ));
    assert_eq!(code, "engine_failed");
    assert!(message.contains("/nonexistent/dir"), "{message}");
    let (code, _) = error_of(&conn.request("say", json!({ "utterance": 999, "text": "x" })));
    assert_eq!(code, "invalid_params");
    // After all that, speech still works.
    let fine = conn.ok("say", json!({ "text": "Still here." }));
    assert_eq!(fine["chunks"], 1);
    assert!(
        daemon.log().contains("speech failed"),
        "failures are logged"
    );
}

#[test]
fn stop_interrupts_speech_and_clears_the_queue() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&wav_config(&tmp.path().join("out.wav")));
    let mut events = subscribe(&daemon, &["speech."]);
    let long: String = (1..=12)
        .map(|i| format!("This is sentence number {i} of a long answer. "))
        .collect();
    // Two utterances queued: the long one, speaking, and one behind it.
    let mut first = daemon.connect();
    first.send_raw(format!("{}\n", json!({"id": "long", "cmd": "say", "text": long})).as_bytes());
    next_event(&mut events, "speech.chunk");
    let mut second = daemon.connect();
    second.send_raw(b"{\"id\":\"next\",\"cmd\":\"say\",\"text\":\"Queued behind.\"}\n");
    let mut status = daemon.connect();
    wait_until("the second utterance is queued", || {
        status.ok("status", json!({}))["speech"]["active"] == json!(2)
    });
    let stopped = daemon.connect().ok("stop", json!({}));
    assert_eq!(stopped["stopped"], json!(true));
    let reply = first.read().unwrap();
    assert_eq!(reply["id"], "long");
    assert_eq!(reply["result"]["interrupted"], json!(true), "{reply}");
    assert!(reply["result"]["chunks"].as_u64().unwrap() < 12, "{reply}");
    let queued = second.read().unwrap();
    assert_eq!(queued["result"]["interrupted"], json!(true), "{queued}");
    assert_eq!(queued["result"]["chunks"], 0);
    let interrupted = next_event(&mut events, "speech.interrupted");
    assert_eq!(interrupted["utterance"], reply["result"]["utterance"]);
    // Nothing speaking now; the next utterance plays normally.
    assert_eq!(
        daemon.connect().ok("stop", json!({}))["stopped"],
        json!(false)
    );
    let after = daemon.connect().ok("say", json!({ "text": "Back again." }));
    assert_eq!(after["interrupted"], json!(false));
}

/// An ALSA configuration whose devices write what they play to files.
fn alsa_home(extra: &str, dir: &Path) -> (Home, PathBuf) {
    let home = Home::new(&config(extra));
    let raw = dir.join("device.raw");
    std::fs::write(
        home.path().join(".asoundrc"),
        format!(
            "pcm.voxdtest {{\n  type file\n  slave.pcm \"null\"\n  file \"{}\"\n  format \"raw\"\n  \
             hint {{ show on description \"voxd test output\" }}\n}}\n",
            raw.display()
        ),
    )
    .unwrap();
    (home, raw)
}

#[test]
fn speech_plays_through_an_alsa_device_resampled_to_its_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, raw) = alsa_home(
        "[audio]\noutput = \"cpal\"\ndevice = \"voxd test output\"\n",
        tmp.path(),
    );
    let (ok, stdout, stderr) = home.run(&["audio", "devices", "--json"]);
    assert!(ok, "{stderr}");
    let devices: Value = serde_json::from_str(&stdout).unwrap();
    let device = devices["outputs"]
        .as_array()
        .unwrap_or_else(|| panic!("outputs listed: {stdout}"))
        .iter()
        .find(|d| d["name"] == "voxd test output")
        .unwrap_or_else(|| panic!("the test device is listed: {stdout}"));
    let rate = device["sample_rate"].as_u64().unwrap();
    let channels = device["channels"].as_u64().unwrap();
    let daemon = Daemon::start_in(home);
    let reply = daemon
        .connect()
        .ok("say", json!({ "text": "Hello from the sound card." }));
    let seconds = reply["samples"].as_f64().unwrap() / reply["sample_rate"].as_f64().unwrap();
    // The device got the speech at its own rate (Piper's is 22050 Hz).
    assert_ne!(rate, 22050);
    let bytes = std::fs::metadata(&raw).map(|m| m.len()).unwrap_or(0);
    let bytes_per_second = (rate * channels) as f64 * 2.0; // the device's S16 or wider
    assert!(
        bytes as f64 >= seconds * bytes_per_second * 0.9,
        "{bytes} bytes for {seconds:.2} s at {rate} Hz × {channels}"
    );
    // A device that does not exist is a clear error naming it.
    let (home, _) = alsa_home(
        "[audio]\noutput = \"cpal\"\ndevice = \"no such card\"\n",
        tmp.path(),
    );
    let daemon = Daemon::start_in(home);
    let (code, message) = error_of(&daemon.connect().request("say", json!({ "text": "Hi." })));
    assert_eq!(code, "engine_failed");
    assert!(message.contains("no such card"), "{message}");
    assert!(message.contains("voxd audio devices"), "{message}");
}

#[test]
fn the_socket_sink_streams_pcm_events() {
    let daemon = Daemon::start(&config("[audio]\noutput = \"socket\"\n"));
    let mut events = subscribe(&daemon, &["speech.audio", "speech.finished"]);
    let reply = daemon.connect().ok("say", json!({ "text": "One. Two." }));
    let mut samples = 0u64;
    loop {
        let msg = events.read().unwrap();
        if msg["event"] == "speech.finished" {
            break;
        }
        let data = &msg["data"];
        assert_eq!(data["rate"], 22050);
        assert_eq!(data["format"], "s16le");
        let pcm = base64::engine::general_purpose::STANDARD
            .decode(data["pcm"].as_str().unwrap())
            .unwrap();
        assert_eq!(pcm.len() as u64, data["samples"].as_u64().unwrap() * 2);
        samples += data["samples"].as_u64().unwrap();
    }
    assert_eq!(samples, reply["samples"].as_u64().unwrap());
}
