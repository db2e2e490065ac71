//! Round trip: `voxd say` writes WAVs; Whisper tiny.en (the CTranslate2
//! test model, through Python faster-whisper, which the bootstrap installs
//! into `$VOXD_TEST_PYTHON`'s environment) transcribes them; the word error
//! rate over ten fixed sentences stays near its measured value
//! ([`support::wer::Wer::assert_near`]).

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::wer::Wer;
use support::Daemon;

const SENTENCES: [&str; 10] = [
    "The library opens at nine in the morning.",
    "Please turn off the lights in the kitchen.",
    "My sister bought a new bicycle last week.",
    "The train to the airport leaves every twenty minutes.",
    "Remember to water the plants on the balcony.",
    "We are having soup and fresh bread for dinner.",
    "The meeting was moved to Thursday afternoon.",
    "It will be cold and windy tomorrow.",
    "Can you set a timer for ten minutes?",
    "The children played football in the park.",
];

const TRANSCRIBE: &str = r#"
import json, sys
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=2)
for path in sys.argv[2:]:
    segments, _ = model.transcribe(path, beam_size=1, language="en")
    print(json.dumps(" ".join(s.text for s in segments)))
"#;

#[test]
fn whisper_understands_what_voxd_says() {
    let python = std::env::var("VOXD_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("VOXD_TEST_PYTHON is not set: run `bash scripts/bootstrap.sh test`")
    });
    let whisper = support::test_model("whisper-tiny.en");
    let joe = support::test_model("piper-en_US-joe-medium");
    let daemon = Daemon::start(&format!(
        "[models]\ndir = {:?}\n[tts]\nvoice = \"piper-en_US-joe-medium\"\n[audio]\noutput = \"null\"\n",
        joe.parent().unwrap().display().to_string()
    ));
    let mut conn = daemon.connect();
    let mut wavs = Vec::new();
    for (i, sentence) in SENTENCES.iter().enumerate() {
        let out = daemon.home.path().join(format!("{i}.wav"));
        let reply: Value = conn.ok("say", json!({ "text": sentence, "out": out }));
        assert_eq!(reply["chunks"], 1);
        wavs.push(out);
    }
    let output = Command::new(&python)
        .arg("-c")
        .arg(TRANSCRIBE)
        .arg(&whisper)
        .args(&wavs)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        output.status.success(),
        "faster-whisper failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let transcripts: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(transcripts.len(), SENTENCES.len());
    let mut wer = Wer::default();
    for (sentence, heard) in SENTENCES.iter().zip(&transcripts) {
        let e = wer.add(sentence, heard);
        println!("{e} errors: {sentence:?} → {heard:?}");
    }
    // Measured: no error in the 79 words; the margin is two words.
    wer.assert_near("of faster-whisper on voxd's speech", 0.0, 2.0 / 79.0);
}
