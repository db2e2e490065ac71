//! Nothing leaves the machine. The daemon and its workers run under
//! strace while it speaks (Piper, through ONNX Runtime), listens (Silero
//! VAD and openWakeWord, ONNX Runtime too), transcribes (whisper.cpp in
//! `voxd-stt`), writes (llama.cpp in `voxd-llm`) and searches notes
//! (candle's MiniLM), and long enough after for a library's background
//! upload to start: none may open a single internet socket, not even to
//! look a name up. The PyPI build of ONNX Runtime carries
//! Microsoft's telemetry, which asks for mobile.events.data.microsoft.com
//! some seconds after a session is created unless voxd turns it off
//! (`src/onnx.rs`).

mod support;

use std::fs;
use std::time::Duration;

use serde_json::json;
use support::{test_model, Daemon, Home};

#[test]
fn no_engine_opens_an_internet_socket() {
    let store = test_model("piper-en_US-joe-medium")
        .parent()
        .unwrap()
        .display()
        .to_string();
    let home = Home::new(&format!(
        "[models]\ndir = {store:?}\nsources = [\"pypi\"]\n\
         [tts]\nvoice = \"piper-en_US-joe-medium\"\n[audio]\noutput = \"null\"\n\
         [listen]\ninput = \"socket\"\n"
    ));
    let trace = home.path().join("trace");
    let trace_arg = trace.display().to_string();
    let mut daemon = Daemon::start_under(
        home,
        &[
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=socket,connect",
            "-o",
            &trace_arg,
        ],
    );
    let mut conn = daemon.connect();
    let wav = daemon.home.path().join("said.wav");
    conn.ok(
        "say",
        json!({ "text": "Nothing leaves this machine.", "out": wav }),
    );
    conn.ok("listen", json!({ "action": "start" }));
    let heard = conn.ok("transcribe", json!({ "path": wav }));
    assert!(
        heard["text"].as_str().unwrap().contains("machine"),
        "{heard}"
    );
    conn.ok(
        "generate",
        json!({ "prompt": "One, two,", "max_tokens": 4 }),
    );
    conn.ok("notes", json!({ "action": "search", "query": "machine" }));
    // ONNX Runtime's telemetry looked its host up ~9 s after the first
    // session (measured on this VM); twice that, with margin.
    std::thread::sleep(Duration::from_secs(20));
    conn.ok("shutdown", json!({}));
    assert!(daemon.wait_exit().success(), "{}", daemon.log());

    let trace = fs::read_to_string(&trace).unwrap();
    assert!(
        trace.contains("socket(AF_UNIX"),
        "the trace saw no socket at all:\n{trace}"
    );
    let internet: Vec<&str> = trace.lines().filter(|l| l.contains("AF_INET")).collect();
    assert!(
        internet.is_empty(),
        "voxd opened internet sockets:\n{}",
        internet.join("\n")
    );
}
