//! The voice loop in a test daemon: a home with the fixture notes and every
//! model the loop runs (openWakeWord, Silero VAD, Whisper in `voxd-stt`,
//! MiniLM, the Piper voice), speech made by the daemon's own voice (with
//! `tts.variation = 0`: the same audio for a text in every run), PCM sent
//! over the socket's audio source, and the events that come back.

use std::fs;
use std::path::Path;
use std::time::Instant;

use base64::Engine as _;
use serde_json::{json, Value};

use super::{copy_dir, test_model, worker_bin, Conn, Daemon, Home};

/// The language model of [`thinking_home`].
pub const LLM: &str = "gemma3-270m-base";

/// The listening rate of the socket source.
pub const RATE: u32 = 16_000;

/// Events that fail [`events_until`].
pub const ERRORS: &[&str] = &["listen.error", "assistant.error"];

/// A home for a voice-loop daemon: the fixture notes in `notes/`, the
/// socket audio source listening from the start, extractive answers (no
/// language model), and `extra` TOML appended right after the `[listen]`
/// keys (so it may begin with more of them) and sections not set here,
/// e.g. `[audio]`, `[engines]`. Unless `extra` has their sections, replies
/// go to `reply.wav` and the follow-up window is 8 s.
pub fn home(extra: &str) -> Home {
    home_answering(Answers::Extractive, extra)
}

/// [`home`] whose answers the test store's language model (the base Gemma
/// in `voxd-llm`, one thread, 64 tokens) writes from the notes.
pub fn thinking_home(extra: &str) -> Home {
    home_answering(Answers::Generative, extra)
}

enum Answers {
    Extractive,
    Generative,
}

fn home_answering(answers: Answers, extra: &str) -> Home {
    let store = test_model("openwakeword").parent().unwrap().to_path_buf();
    for id in [
        "silero-vad",
        "whisper-tiny.en",
        "all-minilm-l6-v2",
        "piper-en_US-joe-medium",
    ] {
        test_model(id);
    }
    // The `llm` role, the worker's section and the answer mode.
    let (models, llm, mode) = match answers {
        Answers::Extractive => ("[]".to_string(), String::new(), "extractive"),
        Answers::Generative => {
            test_model(LLM);
            (
                format!("[{LLM:?}]"),
                format!(
                    "[engines.llm]\ncommand = {:?}\nthreads = 1\nmax_tokens = 64\n\n",
                    worker_bin("voxd-llm").display().to_string()
                ),
                "generative",
            )
        }
    };
    let home = Home::new("");
    let notes = home.path().join("notes");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes"),
        &notes,
    );
    let audio = if extra.contains("[audio]") {
        String::new()
    } else {
        format!(
            "[audio]\noutput = \"wav\"\nfile = {:?}\n\n",
            home.path().join("reply.wav").display().to_string()
        )
    };
    let assistant = if extra.contains("[assistant]") {
        ""
    } else {
        "[assistant]\nfollowup_secs = 8\n\n"
    };
    let config = format!(
        "[models]\ndir = {store:?}\nsources = [\"pypi\"]\nllm = {models}\n\n\
         [engines.stt]\ncommand = {stt:?}\n\n\
         {llm}\
         [rag]\nnotes = [{notes:?}]\nanswer_mode = {mode:?}\n\n\
         [tts]\nvoice = \"piper-en_US-joe-medium\"\nvariation = 0.0\n\n\
         {audio}\
         [listen]\ninput = \"socket\"\nstart = true\n\
         {extra}\n{assistant}",
        store = store.display().to_string(),
        stt = worker_bin("voxd-stt").display().to_string(),
        notes = notes.display().to_string(),
    );
    fs::write(home.path().join("voxd.toml"), config).unwrap();
    home
}

/// `text` in the Piper voice, at 16 kHz mono (written to a file in `dir`,
/// never to the daemon's audio output).
pub fn speech(conn: &mut Conn, dir: &Path, text: &str) -> Vec<f32> {
    let out = dir.join(format!("clip-{}.wav", text.len()));
    conn.ok("say", json!({ "text": text, "out": out }));
    voxd::stt::wav::read(&out).unwrap().samples
}

pub fn silence(secs: f32) -> Vec<f32> {
    vec![0.0; (secs * RATE as f32) as usize]
}

/// Silence, the wake word, a short pause, `question`, and silence long
/// enough to end the utterance.
pub fn woken(wake: &[f32], question: &[f32]) -> Vec<f32> {
    let mut audio = silence(1.5);
    audio.extend(wake);
    audio.extend(silence(0.4));
    audio.extend(question);
    audio.extend(silence(3.0));
    audio
}

/// Feeds `audio` to the socket source in 100 ms chunks.
pub fn send_pcm(conn: &mut Conn, audio: &[f32]) {
    for chunk in audio.chunks(RATE as usize / 10) {
        let bytes: Vec<u8> = chunk
            .iter()
            .flat_map(|s| ((s * 32767.0) as i16).to_le_bytes())
            .collect();
        let pcm = base64::engine::general_purpose::STANDARD.encode(bytes);
        conn.ok("listen", json!({ "action": "audio", "pcm": pcm }));
    }
}

/// Events up to and including the first `until`, failing on [`ERRORS`].
pub fn events_until(conn: &mut Conn, until: &str, daemon: &Daemon) -> Vec<(String, Value)> {
    events_until_failing_on(conn, until, daemon, ERRORS)
}

/// Events up to and including the first `until`, failing on any of `fatal`.
pub fn events_until_failing_on(
    conn: &mut Conn,
    until: &str,
    daemon: &Daemon,
    fatal: &[&str],
) -> Vec<(String, Value)> {
    let deadline = Instant::now() + super::scaled_secs(240);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let msg = match conn.try_read() {
            Ok(Some(msg)) => msg,
            Ok(None) => break,
            Err(e) => panic!("no {until} event ({e}); saw {seen:#?}\n{}", daemon.log()),
        };
        let Some(name) = msg["event"].as_str() else {
            continue;
        };
        assert!(!fatal.contains(&name), "{msg}\n{}", daemon.log());
        seen.push((name.to_string(), msg["data"].clone()));
        if name == until {
            return seen;
        }
    }
    panic!("no {until} event; saw {seen:#?}\n{}", daemon.log());
}

/// The data of the last `name` event in `seen`.
pub fn last<'a>(seen: &'a [(String, Value)], name: &str) -> &'a Value {
    &seen
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} among {seen:#?}"))
        .1
}

/// Whether `seen` holds a `name` event.
pub fn has(seen: &[(String, Value)], name: &str) -> bool {
    seen.iter().any(|(n, _)| n == name)
}

/// `status` until `cond` holds for it (polled; see [`super::wait_until`]).
pub fn status_until(conn: &mut Conn, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let mut status = Value::Null;
    super::wait_until(what, || {
        status = conn.ok("status", json!({}));
        cond(&status)
    });
    status
}

/// The `name` engine in a `status` result.
pub fn engine<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["engines"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("no engine {name} in {status}"))
}
