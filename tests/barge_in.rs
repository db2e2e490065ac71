//! Barge-in in a real daemon (issue 9): voxd reads a long note aloud
//! through a sound device that plays at real pace (cpal → ALSA → a private
//! PulseAudio null sink, see `support::pulse`), the wake word comes in over
//! the socket's PCM source while it plays, and the playback stops, the turn
//! is cancelled, and the question said after the wake word is answered.

mod support;

use std::fs;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use support::pulse::{self, PacedDevice};
use support::voice::{self, events_until, has, last, send_pcm, silence, speech, status_until};
use support::Daemon;

/// The newest note: ten sentences, about half a minute read aloud, all of
/// it within what "read my last note" reads (600 bytes).
const DIARY: &str = "\
Monday was the first dry day after a long week of rain.
We walked along the river to the old mill and back.
The herons stood in the shallows and did not move at all.
At the bridge a man was painting the railings a dark green.
We bought bread and cherries at the market near the station.
In the afternoon the wind turned and clouds came from the west.
The cat slept on the windowsill until the light was gone.
Later we read by the stove and listened to the radio.
The forecast promised more rain for the rest of the week.
We planned to repair the garden fence on Saturday morning.
";

/// The paced device as cpal sees it: rate, channels, sample format.
fn device_format(home: &support::Home, env: &(&str, String)) -> (u64, u64, String) {
    let out = home
        .voxd(&["audio", "devices", "--json"])
        .env(env.0, &env.1)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let devices: Value = serde_json::from_str(&stdout).unwrap();
    let device = devices["outputs"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == pulse::DEVICE))
        .unwrap_or_else(|| panic!("{} is listed: {stdout}", pulse::DEVICE));
    (
        device["sample_rate"].as_u64().unwrap(),
        device["channels"].as_u64().unwrap(),
        device["sample_format"].as_str().unwrap().to_string(),
    )
}

#[test]
fn the_wake_word_during_a_spoken_reply_stops_it_and_the_next_question_is_answered() {
    let home = voice::home(&format!(
        "[audio]\noutput = \"cpal\"\ndevice = {:?}\n",
        pulse::DEVICE
    ));
    let device = PacedDevice::start(home.path());
    let diary = home.path().join("notes/diary.md");
    fs::write(&diary, DIARY).unwrap();
    fs::File::options()
        .write(true)
        .open(&diary)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(3600))
        .unwrap();
    let env = device.env();
    let (rate, channels, format) = device_format(&home, &env);
    let daemon = Daemon::start_indexed_with_env(home, &[(env.0, env.1.as_str())], 6);
    let mut control = daemon.connect().with_timeout(240);
    let dir = daemon.home.path().to_path_buf();
    let wake = speech(&mut control, &dir, "Hey Jarvis.");
    let read = speech(&mut control, &dir, "Read my last note.");
    let question = speech(&mut control, &dir, "What is the wifi password?");
    // The whole note, spoken to a file: how long reading it takes.
    let full = control.ok(
        "say",
        json!({ "text": DIARY, "out": dir.join("diary.wav") }),
    );
    let full_chunks = full["chunks"].as_u64().unwrap();
    let full_secs = full["samples"].as_f64().unwrap() / full["sample_rate"].as_f64().unwrap();
    assert!(full_chunks >= 10 && full_secs > 20.0, "{full}");
    let taken = || device.taken(rate, channels, &format);
    assert!(taken().first.is_none());

    let mut events = daemon.connect().with_timeout(240);
    events.ok(
        "subscribe",
        json!({ "events": ["wake.", "speech.", "transcript.final", "assistant.", "listen.error"] }),
    );
    send_pcm(&mut control, &voice::woken(&wake, &read));
    // The reply's first sentence is queued...
    let seen = events_until(&mut events, "speech.chunk", &daemon);
    let utterance = last(&seen, "speech.chunk")["utterance"].clone();
    // ...and the device is playing it.
    support::wait_until("the device to play the reply", || taken().first.is_some());
    let status = control.ok("status", json!({}));
    assert_eq!(status["speech"]["active"], 1, "{status}");

    // The wake word while it plays. The echo gate (listen.gate_while_speaking,
    // on by default) keeps voxd from hearing speech while it talks, but
    // never the wake word.
    let mut audio = silence(0.3);
    audio.extend(&wake);
    audio.extend(silence(0.5));
    send_pcm(&mut control, &audio);
    let seen = events_until(&mut events, "assistant.reply", &daemon);
    let order: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    let at = |name: &str| {
        order
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no {name}: {order:?}"))
    };
    assert!(
        at("wake.detected") < at("assistant.interrupted"),
        "{order:?}"
    );
    assert!(
        at("assistant.interrupted") < at("speech.interrupted"),
        "{order:?}"
    );
    assert!(!has(&seen, "speech.finished"), "{order:?}");
    assert_eq!(last(&seen, "assistant.interrupted")["reason"], "wake word");
    let stopped = last(&seen, "speech.interrupted");
    assert_eq!(stopped["utterance"], utterance, "{stopped}");
    // Synthesis stopped too: fewer sentences than the note has were made.
    assert!(
        stopped["chunks"].as_u64().unwrap() < full_chunks,
        "{stopped}, the whole note is {full_chunks} chunks"
    );
    let reply = last(&seen, "assistant.reply");
    assert_eq!(reply["intent"], "latest_note", "{reply}");
    assert_eq!(reply["interrupted"], true, "{reply}");
    assert!(reply["text"].as_str().unwrap().contains("heron"), "{reply}");

    // The device stopped: it takes silence now, and the sound it took is
    // a fraction of the note.
    status_until(&mut control, "speech to stop", |s| {
        s["speech"]["active"] == 0
    });
    support::wait_until("3 s of silence at the device", || taken().quiet() > 3.0);
    let stopped = taken();
    assert!(
        stopped.sound() < full_secs / 2.0,
        "the device played {:.1} s of a {full_secs:.1} s reply",
        stopped.sound()
    );

    // Listening resumed: the wake word armed it, and the question said
    // after it is heard and answered.
    let mut audio = question.clone();
    audio.extend(silence(3.0));
    send_pcm(&mut control, &audio);
    let seen = events_until(&mut events, "assistant.reply", &daemon);
    assert_eq!(last(&seen, "speech.start")["trigger"], "wake");
    let reply = last(&seen, "assistant.reply");
    assert_eq!(reply["interrupted"], false, "{reply}");
    assert!(
        reply["text"].as_str().unwrap().contains("kettle-47-moon"),
        "{reply}"
    );
    // ... and spoken through the device after the interrupted reply.
    support::wait_until("the answer at the device", || {
        taken().last > stopped.last.map(|l| l + 1.0)
    });
}
