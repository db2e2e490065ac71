//! Round trip: `voxd say` writes WAVs; Whisper tiny.en (the CTranslate2
//! test model, through Python faster-whisper, which the bootstrap installs
//! into `$VOXD_TEST_PYTHON`'s environment) transcribes them; the word error
//! rate over ten fixed sentences stays at or below 10 %.

mod support;

use std::process::Command;

use serde_json::{json, Value};
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

/// Normalised words: lower case, no punctuation, Whisper's digits as words.
fn words(text: &str) -> Vec<String> {
    const NUMBERS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    text.split_whitespace()
        .map(|w| {
            let w: String = w
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase();
            match w.parse::<usize>() {
                Ok(n) if n < NUMBERS.len() => NUMBERS[n].to_string(),
                _ => w,
            }
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word-level edit distance.
fn errors(reference: &[String], hypothesis: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let cost = if r == h { prev } else { prev + 1 };
            prev = row[j + 1];
            row[j + 1] = cost.min(row[j] + 1).min(prev + 1);
        }
    }
    row[hypothesis.len()]
}

#[test]
fn word_error_rate_counts_edits() {
    let r = words("the cat sat on the mat");
    assert_eq!(errors(&r, &words("The cat sat on the mat.")), 0);
    assert_eq!(errors(&r, &words("the cat sat on mat")), 1);
    assert_eq!(errors(&r, &words("a cat sat in the hat")), 3);
    assert_eq!(errors(&r, &[]), 6);
    assert_eq!(words("At 9, not 20!"), ["at", "nine", "not", "twenty"]);
}

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
    let (mut errs, mut total) = (0, 0);
    for (sentence, heard) in SENTENCES.iter().zip(&transcripts) {
        let reference = words(sentence);
        let e = errors(&reference, &words(heard));
        println!("{e} errors: {sentence:?} → {heard:?}");
        errs += e;
        total += reference.len();
    }
    let wer = errs as f64 / total as f64;
    assert!(wer <= 0.10, "WER {:.1} % ({errs}/{total})", wer * 100.0);
}
