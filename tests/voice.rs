//! The whole voice loop in a real daemon (issue 8, scenario 1): speech
//! goes in over the socket's PCM source — silence, "Hey Jarvis", a
//! question about the notes, silence — and real openWakeWord, Silero VAD,
//! Whisper (`voxd-stt`), MiniLM retrieval and the Piper voice answer it.
//! The spoken reply, transcribed back by Whisper, holds the fact from the
//! notes, and the events cite the note. A follow-up question right after
//! the reply needs no wake word.

mod support;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use support::wer::normalise;
use support::{test_model, worker_bin, Conn, Daemon, Home};

const RATE: u32 = 16_000;

fn start() -> Daemon {
    let store = test_model("openwakeword").parent().unwrap().to_path_buf();
    for id in [
        "silero-vad",
        "whisper-tiny.en",
        "all-minilm-l6-v2",
        "piper-en_US-joe-medium",
    ] {
        test_model(id);
    }
    let home = Home::new("");
    let notes = home.path().join("notes");
    support::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes"),
        &notes,
    );
    let config = format!(
        "[models]\ndir = {store:?}\nsources = [\"pypi\"]\nllm = []\n\n\
         [engines.stt]\ncommand = {stt:?}\n\n\
         [rag]\nnotes = [{notes:?}]\nanswer_mode = \"extractive\"\n\n\
         [tts]\nvoice = \"piper-en_US-joe-medium\"\n\n\
         [audio]\noutput = \"wav\"\nfile = {wav:?}\n\n\
         [listen]\ninput = \"socket\"\nstart = true\n\n\
         [assistant]\nfollowup_secs = 8\n",
        store = store.display().to_string(),
        stt = worker_bin("voxd-stt").display().to_string(),
        notes = notes.display().to_string(),
        wav = home.path().join("reply.wav").display().to_string(),
    );
    fs::write(home.path().join("voxd.toml"), config).unwrap();
    Daemon::start_in(home)
}

/// `text` in the Piper voice, at 16 kHz mono.
fn speech(conn: &mut Conn, dir: &Path, text: &str) -> Vec<f32> {
    let out = dir.join(format!("{}.wav", text.len()));
    conn.ok("say", json!({ "text": text, "out": out }));
    voxd::stt::wav::read(&out).unwrap().samples
}

fn silence(secs: f32) -> Vec<f32> {
    vec![0.0; (secs * RATE as f32) as usize]
}

fn send_pcm(conn: &mut Conn, audio: &[f32]) {
    for chunk in audio.chunks(RATE as usize / 10) {
        let bytes: Vec<u8> = chunk
            .iter()
            .flat_map(|s| ((s * 32767.0) as i16).to_le_bytes())
            .collect();
        let pcm = base64::engine::general_purpose::STANDARD.encode(bytes);
        conn.ok("listen", json!({ "action": "audio", "pcm": pcm }));
    }
}

/// Events up to and including the first `until` (failing on errors).
fn events_until(conn: &mut Conn, until: &str, daemon: &Daemon) -> Vec<(String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Some(msg) = conn.read() else { break };
        let Some(name) = msg["event"].as_str() else {
            continue;
        };
        assert!(
            !["listen.error", "assistant.error"].contains(&name),
            "{msg}\n{}",
            daemon.log()
        );
        seen.push((name.to_string(), msg["data"].clone()));
        if name == until {
            return seen;
        }
    }
    panic!("no {until} event; saw {seen:#?}\n{}", daemon.log());
}

fn reply_of(seen: &[(String, Value)]) -> &Value {
    &seen
        .iter()
        .rev()
        .find(|(n, _)| n == "assistant.reply")
        .unwrap()
        .1
}

#[test]
fn a_spoken_question_after_the_wake_word_is_answered_aloud_from_the_notes() {
    let daemon = start();
    let mut control = daemon.connect().with_timeout(240);
    support::wait_for_notes(&mut control, 5);
    let dir = daemon.home.path().to_path_buf();
    let wake = speech(&mut control, &dir, "Hey Jarvis.");
    let question = speech(&mut control, &dir, "What is the wifi password?");
    let follow_up = speech(&mut control, &dir, "And what is the front door code?");
    // What the voice wrote so far was the clips; the replies start here.
    let reply_wav = dir.join("reply.wav");
    let _ = fs::remove_file(&reply_wav);

    let mut events = daemon.connect().with_timeout(240);
    events.ok(
        "subscribe",
        json!({ "events": ["wake.", "speech.start", "speech.end", "transcript.final", "assistant.", "listen.error"] }),
    );
    // examples/on-wake.sh reacts to the wake word (and exits after one).
    let on_wake = support::example(daemon.home.path(), "on-wake.sh")
        .arg("1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    support::wait_until("on-wake.sh subscribed", || {
        control.ok("status", json!({}))["connections"].as_u64() >= Some(3)
    });
    let mut audio = silence(1.5);
    audio.extend(&wake);
    audio.extend(silence(0.4));
    audio.extend(&question);
    audio.extend(silence(3.0));
    send_pcm(&mut control, &audio);

    let seen = events_until(&mut events, "assistant.reply", &daemon);
    let order: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    let at = |name: &str| {
        order
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no {name}: {order:?}"))
    };
    assert!(at("wake.detected") < at("speech.start"), "{order:?}");
    assert!(at("speech.end") < at("transcript.final"), "{order:?}");
    let reply = reply_of(&seen);
    assert_eq!(reply["intent"], "question", "{reply}");
    let on_wake = on_wake.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&on_wake.stdout);
    assert!(
        on_wake.status.success() && printed.starts_with("woken by \"hey_jarvis\" (score "),
        "examples/on-wake.sh: {printed}"
    );
    assert!(
        reply["text"].as_str().unwrap().contains("kettle-47-moon"),
        "{reply}"
    );
    assert!(
        reply["citations"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("/notes/home.md"),
        "{reply}"
    );
    assert!(reply["timings"]["stt_ms"].as_u64().is_some(), "{reply}");
    assert!(
        reply["timings"]["first_audio_ms"].as_u64().is_some(),
        "{reply}"
    );

    // What was said aloud is the fact from the notes.
    let heard = control.ok("transcribe", json!({ "path": reply_wav }));
    let words = normalise(heard["text"].as_str().unwrap()).join(" ");
    assert!(
        words.contains("kettle") && words.contains("moon"),
        "{heard}"
    );

    // A follow-up right after the reply: no wake word needed.
    let mut audio = silence(0.5);
    audio.extend(&follow_up);
    audio.extend(silence(3.0));
    send_pcm(&mut control, &audio);
    let seen = events_until(&mut events, "assistant.reply", &daemon);
    assert!(
        !seen.iter().any(|(n, _)| n == "wake.detected"),
        "the follow-up needed no wake word: {seen:#?}"
    );
    let start = &seen.iter().find(|(n, _)| n == "speech.start").unwrap().1;
    assert_eq!(start["trigger"], "followup", "{start}");
    let reply = reply_of(&seen);
    assert!(reply["text"].as_str().unwrap().contains("4417"), "{reply}");
}
