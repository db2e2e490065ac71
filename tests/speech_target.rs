//! Speech into the caller's own channel ([`Target::Channel`]), with the
//! real Piper voice in process: each sentence's audio streams out at the
//! voice's own rate as it is made, the daemon's output is never opened,
//! a caller that drops its receiver stops the utterance, and an utterance
//! says when its first audio was queued.

mod support;

use tokio::sync::mpsc;
use voxd::config::Config;
use voxd::events::Events;
use voxd::metrics::Pipeline;
use voxd::speak::{Pcm, SayOptions, Speaker, Target, Utterance};

/// The joe voice (22,050 Hz), and an output device that does not exist:
/// speech that reached the daemon's output would fail.
fn speaker() -> Speaker {
    let mut config = Config::builtin();
    config.tts.voice = support::test_model("piper-en_US-joe-medium")
        .display()
        .to_string();
    config.audio.output = "cpal".into();
    config.audio.device = "no such device".into();
    Speaker::new(&config, Events::new(64), Pipeline::default())
}

/// An utterance whose audio comes to the returned receiver.
fn open_into_channel(speaker: &Speaker) -> (Utterance, mpsc::UnboundedReceiver<Pcm>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let options = SayOptions {
        target: Target::Channel(tx),
        ..SayOptions::default()
    };
    (speaker.open(options).unwrap(), rx)
}

#[tokio::test]
async fn sentences_stream_into_the_callers_channel_at_the_voices_rate() {
    let speaker = speaker();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let options = SayOptions {
        target: Target::Channel(tx),
        ..SayOptions::default()
    };
    let outcome = speaker
        .say("The kettle is on. Tea is ready.", options)
        .await
        .expect("speech into a channel");
    let mut chunks: Vec<Pcm> = Vec::new();
    while let Some(pcm) = rx.recv().await {
        chunks.push(pcm);
    }
    assert_eq!(chunks.len(), 2, "one chunk per sentence");
    assert_eq!(outcome.chunks, 2);
    assert!(
        chunks.iter().all(|c| c.rate == 22_050),
        "{:?}",
        chunks[0].rate
    );
    let samples: usize = chunks.iter().map(|c| c.samples.len()).sum();
    assert_eq!(samples as u64, outcome.samples);
    assert!(samples > 22_050, "{samples} samples for two sentences");
    assert!(!outcome.interrupted);
}

#[tokio::test]
async fn a_caller_that_drops_its_receiver_stops_the_utterance() {
    let speaker = speaker();
    let (mut utterance, mut rx) = open_into_channel(&speaker);
    let text = "This is one sentence of many. ".repeat(20);
    utterance.push(&text).unwrap();
    let done = tokio::spawn(utterance.finish());
    rx.recv().await.expect("the first sentence");
    drop(rx);
    let outcome = done.await.unwrap().unwrap();
    assert!(outcome.interrupted, "{outcome:?}");
    assert!(
        outcome.chunks < 20,
        "all {} sentences were made",
        outcome.chunks
    );
}

/// `Utterance::first_audio` resolves when the first sentence is queued,
/// before the utterance ends, and says what its synthesis took; an
/// utterance stopped before any audio has none.
#[tokio::test]
async fn first_audio_comes_with_the_first_sentence() {
    let speaker = speaker();
    let (mut utterance, mut rx) = open_into_channel(&speaker);
    let first = utterance.first_audio();
    utterance.push("The kettle is on. ").unwrap();
    let first = first.await.expect("the first sentence's audio");
    assert!(first.synth_ms > 0, "{first:?}");
    assert_eq!(first.held_ms, None);
    assert!(rx.try_recv().is_ok(), "queued before first_audio resolved");
    utterance.push("Tea is ready.").unwrap();
    let outcome = utterance.finish().await.unwrap();
    assert_eq!(outcome.chunks, 2);

    let mut silent = speaker.open(SayOptions::default()).unwrap();
    let none = silent.first_audio();
    speaker.stop();
    drop(silent);
    assert!(
        none.await.is_none(),
        "a stopped utterance has no first audio"
    );
}
