//! Custom wake phrases (issue 5): "hey computer", configured as text with
//! no model trained for it and no openWakeWord model loaded, wakes a real
//! daemon. Speech in the Piper voice goes in over the socket's PCM source;
//! real Silero VAD cuts it, Whisper (`voxd-stt`) transcribes each stretch
//! of speech heard while asleep, and the phrase is matched in the text.
//! Other speech does not wake voxd; the phrase then a question, and the
//! phrase and the question in one breath, are both answered from the notes.

mod support;

use serde_json::{json, Value};
use support::voice::{self, events_until, last, send_pcm, silence, speech};
use support::Daemon;

fn all<'a>(seen: &'a [(String, Value)], name: &str) -> Vec<&'a Value> {
    seen.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, d)| d)
        .collect()
}

#[test]
fn a_wake_phrase_configured_as_text_wakes_voxd_and_other_speech_does_not() {
    // No follow-up window: every question below must be woken by the phrase.
    let daemon = Daemon::start_indexed(
        voice::home(
            "wake_words = []\nwake_phrases = [\"hey computer\"]\n\n\
             [assistant]\nfollowup_secs = 0\n",
        ),
        5,
    );
    let mut control = daemon.connect().with_timeout(240);
    let dir = daemon.home.path().to_path_buf();
    let other = speech(&mut control, &dir, "Hello there, how are you today?");
    let phrase = speech(&mut control, &dir, "Hey computer.");
    let question = speech(&mut control, &dir, "What is the wifi password?");
    let one_breath = speech(
        &mut control,
        &dir,
        "Hey computer, what is the front door code?",
    );

    let status = control.ok("listen", json!({ "action": "status" }));
    assert_eq!(status["wake_words"], json!([]), "{status}");
    assert_eq!(status["wake_phrases"], json!(["hey computer"]), "{status}");

    let mut events = daemon.connect().with_timeout(240);
    events.ok(
        "subscribe",
        json!({ "events": ["wake.", "transcript.final", "assistant.", "listen.error"] }),
    );
    // Other speech, then the phrase on its own, a pause longer than the
    // end-of-speech hangover, and the question.
    let mut audio = silence(1.0);
    audio.extend(&other);
    audio.extend(silence(2.0));
    audio.extend(&phrase);
    audio.extend(silence(1.5));
    audio.extend(&question);
    audio.extend(silence(3.0));
    send_pcm(&mut control, &audio);

    let seen = events_until(&mut events, "assistant.reply", &daemon);
    let wakes = all(&seen, "wake.detected");
    assert_eq!(wakes.len(), 1, "only the phrase wakes voxd: {seen:#?}");
    assert_eq!(wakes[0]["source"], "phrase", "{seen:#?}");
    assert_eq!(wakes[0]["name"], "hey computer", "{seen:#?}");
    let finals = all(&seen, "transcript.final");
    assert_eq!(
        finals.len(),
        1,
        "the other speech is not a question: {seen:#?}"
    );
    assert_eq!(finals[0]["wake_phrase"], "hey computer", "{seen:#?}");
    let text = finals[0]["text"].as_str().unwrap().to_lowercase();
    assert!(text.contains("password"), "{seen:#?}");
    let reply = last(&seen, "assistant.reply");
    assert!(
        reply["text"].as_str().unwrap().contains("kettle-47-moon"),
        "{reply}"
    );

    // The phrase and the question in one breath: the question is what
    // follows the phrase.
    let mut audio = silence(1.0);
    audio.extend(&one_breath);
    audio.extend(silence(3.0));
    send_pcm(&mut control, &audio);
    let seen = events_until(&mut events, "assistant.reply", &daemon);
    let wake = last(&seen, "wake.detected");
    assert_eq!(wake["source"], "phrase", "{seen:#?}");
    let heard = last(&seen, "transcript.final");
    let text = heard["text"].as_str().unwrap().to_lowercase();
    assert!(
        text.contains("door") && !text.contains("computer"),
        "{heard}"
    );
    let reply = last(&seen, "assistant.reply");
    assert!(reply["text"].as_str().unwrap().contains("4417"), "{reply}");

    let status = control.ok("listen", json!({ "action": "status" }));
    assert_eq!(status["wakes"], 2, "{status}");
}
