//! The listening loop end to end in a real daemon: generated "Hey Jarvis,
//! <question>" speech goes in (a WAV file fed at real pace by `voxd serve
//! --audio-in`, or PCM chunks over the socket), real openWakeWord, Silero
//! VAD and Whisper tiny.en (in the real `voxd-stt` worker) run, and the
//! events come out in order: `wake.detected` → `speech.start` →
//! `speech.end` → `transcript.final` whose text is the question (by WER).
//! Also: malformed PCM chunks are refused and the daemon keeps serving;
//! the echo gate (mute) lets wake words through but no utterance; a
//! follow-up needs no wake word; a missing capture device is a clear error;
//! a capture device that goes away is reopened when it comes back; an
//! utterance is transcribed at its final pause, during the hangover, and
//! speech after an earlier pause is not lost.
//! The voice loop is off: what is tested here is the ear alone
//! (`tests/voice.rs` answers what it hears).

mod support;

use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::Engine as _;
use serde_json::{json, Value};
use support::pulse;
use support::wer::Wer;
use support::{test_audio, test_model, worker_bin, Conn, Daemon, Home};

/// A daemon on the test model store with the real `voxd-stt`.
fn config(extra: &str) -> String {
    let store = test_model("openwakeword").parent().unwrap().to_path_buf();
    test_model("silero-vad");
    test_model("whisper-tiny.en");
    format!(
        "[models]\ndir = \"{}\"\n\n[engines.stt]\ncommand = \"{}\"\n\n[audio]\noutput = \"null\"\n\n[assistant]\nvoice_loop = false\n\n{extra}\n",
        store.display(),
        worker_bin("voxd-stt").display()
    )
}

fn clip(n: usize) -> (PathBuf, String, (f64, f64)) {
    let path = test_audio().join(format!("wake/{n:02}.wav"));
    let text = std::fs::read_to_string(path.with_extension("txt")).unwrap();
    let times = std::fs::read_to_string(path.with_extension("times")).unwrap();
    let t: Vec<f64> = times
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    (path, text.trim().to_string(), (t[0], t[1]))
}

fn samples(path: &Path) -> Vec<f32> {
    voxd::stt::wav::read(path).unwrap().samples
}

fn subscribe(daemon: &Daemon) -> Conn {
    let mut conn = daemon.connect().with_timeout(180);
    conn.ok(
        "subscribe",
        json!({ "events": ["wake.", "speech.start", "speech.end", "transcript.", "listen."] }),
    );
    conn
}

/// Events up to and including the first `until`, within 180 s (scaled).
fn events_until(conn: &mut Conn, until: &str, daemon: &Daemon) -> Vec<(String, Value)> {
    let deadline = Instant::now() + support::scaled_secs(180);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Some(msg) = conn.read() else { break };
        let Some(name) = msg["event"].as_str() else {
            continue;
        };
        seen.push((name.to_string(), msg["data"].clone()));
        if name == until {
            return seen;
        }
        assert_ne!(name, "listen.error", "{msg}\n{}", daemon.log());
    }
    panic!("no {until} event; saw {seen:#?}\n{}", daemon.log());
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

fn data<'a>(events: &'a [(String, Value)], name: &str) -> &'a Value {
    &events.iter().find(|(n, _)| n == name).unwrap().1
}

/// The margin of every WER check here: each question, heard without an
/// error when measured (and the same audio every run), may lose one of its
/// seven or eight words.
const ONE_WORD: f64 = 0.15;

/// Checks one woken utterance: event order, times against the known
/// question (`offset` s of silence added before the clip), and the text.
fn check_utterance(events: &[(String, Value)], question: &str, times: (f64, f64), offset: f64) {
    let order: Vec<&str> = names(events)
        .into_iter()
        .filter(|n| {
            [
                "wake.detected",
                "speech.start",
                "speech.end",
                "transcript.final",
            ]
            .contains(n)
        })
        .collect();
    assert_eq!(
        order,
        [
            "wake.detected",
            "speech.start",
            "speech.end",
            "transcript.final"
        ],
        "{events:#?}"
    );
    let (q_start, q_end) = (times.0 + offset, times.1 + offset);
    let wake = data(events, "wake.detected");
    assert_eq!(wake["name"], "hey_jarvis");
    assert!(wake["score"].as_f64().unwrap() >= 0.5, "{wake}");
    // Fired after the phrase, before the question had gone far.
    let t = wake["time"].as_f64().unwrap();
    assert!(
        t > offset + 1.6 && t < q_start + 0.6,
        "wake at {t}, question at {q_start}"
    );
    let start = data(events, "speech.start");
    assert_eq!(start["trigger"], "wake");
    assert_eq!(start["wake_word"], "hey_jarvis");
    let s = start["time"].as_f64().unwrap();
    assert!(
        (s - q_start).abs() <= 0.3,
        "speech.start {s}, question {q_start}"
    );
    let end = data(events, "speech.end");
    let e = end["time"].as_f64().unwrap();
    assert!(
        (e - q_end).abs() <= 0.3,
        "speech.end {e}, question ends {q_end}"
    );
    assert_eq!(end["discarded"], false);
    let fin = data(events, "transcript.final");
    assert_eq!(fin["source"], "listen");
    assert_eq!(fin["utterance"], start["utterance"]);
    let text = fin["text"].as_str().unwrap();
    let mut wer = Wer::default();
    wer.add(question, text);
    wer.assert_near(&format!("{question:?} heard as {text:?}"), 0.0, ONE_WORD);
}

#[test]
fn serve_audio_in_wakes_and_transcribes_the_question() {
    let (path, question, times) = clip(0);
    // Silence first (three seconds, scaled), so the test is subscribed in
    // time: checked.
    let home = Home::new(&config(""));
    let wav = home.path().join("in.wav");
    let lead = support::lead_in(3.0);
    let mut audio = vec![0.0; lead];
    audio.extend(samples(&path));
    support::write_wav(&wav, &audio);
    let daemon = Daemon::start_with_args(home, &["--audio-in", wav.to_str().unwrap()]);
    let mut events = subscribe(&daemon);
    support::assert_within_lead_in(&mut daemon.connect(), lead);
    let seen = events_until(&mut events, "transcript.final", &daemon);
    check_utterance(&seen, &question, times, lead as f64 / 16_000.0);
    // Partial transcripts came while the question was still being heard.
    let partials: Vec<&Value> = seen
        .iter()
        .filter(|(n, _)| n == "transcript.partial")
        .map(|(_, d)| d)
        .collect();
    assert!(!partials.is_empty(), "{seen:#?}");
    assert!(partials.iter().all(|p| p["source"] == "listen"));

    let status = daemon.connect().ok("listen", json!({ "action": "status" }));
    assert_eq!(status["listening"], true, "{status}");
    assert_eq!(status["wakes"], 1, "{status}");
    assert_eq!(status["utterances"], 1, "{status}");
    assert!(status["input"].as_str().unwrap().starts_with("wav: "));

    // The CLI: status, stop, status again.
    let (ok, stdout, stderr) = daemon.home.run(&["listen", "--status"]);
    assert!(
        ok && stdout.contains("listening to wav:"),
        "{stdout}{stderr}"
    );
    let (ok, stdout, _) = daemon.home.run(&["listen", "--stop"]);
    assert!(ok && stdout.contains("stopped listening"), "{stdout}");
    let (_, stdout, _) = daemon.home.run(&["listen", "--status"]);
    assert!(stdout.contains("not listening"), "{stdout}");
}

/// "Hey Jarvis, <clip 0's question>", then, after a 400 ms pause (longer
/// than early_transcribe_ms, 200, shorter than the hangover, 700), clip 1's
/// question when `go_on`, fed to a daemon with no partial transcripts (the
/// early transcription is the worker's only work before the end); returns
/// the one utterance's `transcript.final` and the questions said.
fn pause_then(go_on: bool) -> (Value, String) {
    let home = Home::new(&config(
        "[stt]\npartial_interval_ms = 0\n\n[listen]\nearly_transcribe_ms = 200\nhangover_ms = 700\n",
    ));
    let (first, mut said, _) = clip(0);
    let wav = home.path().join("in.wav");
    let lead = support::lead_in(3.0);
    let mut audio = vec![0.0; lead];
    audio.extend(samples(&first));
    // clip 0 ends with silence; trim it to the pause wanted.
    while audio.last().is_some_and(|s| s.abs() < 1e-3) {
        audio.pop();
    }
    audio.extend(vec![0.0; 6_400]);
    if go_on {
        let (second, q1, (s1, e1)) = clip(1);
        let rest = samples(&second);
        let cut = |t: f64| ((t * 16_000.0) as usize).min(rest.len());
        audio.extend(&rest[cut(s1 - 0.05)..cut(e1 + 0.05)]);
        said = format!("{said} {q1}");
    }
    audio.extend(vec![0.0; 32_000]);
    support::write_wav(&wav, &audio);

    let daemon = Daemon::start_with_args(home, &["--audio-in", wav.to_str().unwrap()]);
    let mut events = subscribe(&daemon);
    support::assert_within_lead_in(&mut daemon.connect(), lead);
    let seen = events_until(&mut events, "transcript.final", &daemon);
    let starts = names(&seen)
        .iter()
        .filter(|n| **n == "speech.start")
        .count();
    assert_eq!(starts, 1, "one utterance: {seen:#?}");
    let fin = data(&seen, "transcript.final").clone();
    let text = fin["text"].as_str().unwrap();
    let mut wer = Wer::default();
    wer.add(&said, text);
    wer.assert_near(&format!("{said:?} heard as {text:?}"), 0.0, ONE_WORD);
    (fin, said)
}

#[test]
fn an_utterance_that_ends_at_a_pause_is_transcribed_during_the_hangover() {
    let (fin, _) = pause_then(false);
    // Made when the speech paused, before the hangover ended.
    assert_eq!(fin["early"], true, "{fin}");
}

#[test]
fn speech_after_a_pause_is_not_lost_to_early_transcription() {
    // Transcribed early at the first pause too, but that transcript is void
    // once the speaker goes on. Whether the final one is early depends on
    // how soon the worker is free after the first (on a loaded machine it
    // is still busy when the utterance ends).
    pause_then(true);
}

/// The next utterance woke voxd and was heard as `question` (by WER).
fn woken_and_heard(events: &mut Conn, daemon: &Daemon, question: &str) {
    let seen = events_until(events, "transcript.final", daemon);
    assert!(names(&seen).contains(&"wake.detected"), "{seen:#?}");
    let text = data(&seen, "transcript.final")["text"].as_str().unwrap();
    let mut wer = Wer::default();
    wer.add(question, text);
    wer.assert_near(&format!("{question:?} heard as {text:?}"), 0.0, ONE_WORD);
}

fn send_pcm(conn: &mut Conn, audio: &[f32], rate: u32, channels: u16) {
    let frames = rate as usize / 10;
    for chunk in audio.chunks(frames * channels as usize) {
        let bytes: Vec<u8> = chunk
            .iter()
            .flat_map(|s| ((s * 32767.0) as i16).to_le_bytes())
            .collect();
        let pcm = base64::engine::general_purpose::STANDARD.encode(bytes);
        conn.ok(
            "listen",
            json!({ "action": "audio", "pcm": pcm, "rate": rate, "channels": channels }),
        );
    }
}

fn error_code(reply: &Value) -> &str {
    assert_eq!(reply["ok"], false, "{reply}");
    reply["error"]["code"].as_str().unwrap()
}

#[test]
fn socket_pcm_is_heard_with_mute_and_followups_and_bad_chunks_are_refused() {
    let daemon = Daemon::start(&config(""));
    let mut events = subscribe(&daemon);
    let mut control = daemon.connect().with_timeout(120);

    // Audio before a socket source is listening: a clear error.
    let reply = control.request("listen", json!({ "action": "audio", "pcm": "AAA=" }));
    assert_eq!(error_code(&reply), "invalid_params");
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("socket"));
    let status = control.ok("listen", json!({ "action": "start", "input": "socket" }));
    assert_eq!(status["input"], "socket");
    assert_eq!(status["wake_words"], json!(["hey_jarvis"]));

    // Malformed chunks: refused, nothing else lost.
    for (bad, want) in [
        (json!({ "pcm": "not base64!" }), "base64"),
        (json!({ "pcm": "AAAA" }), "whole number"),
        (json!({ "pcm": "AAA=", "rate": 0 }), "rate"),
        (json!({ "pcm": "AAA=", "channels": 0 }), "channels"),
    ] {
        let mut args = bad.clone();
        args["action"] = json!("audio");
        let reply = control.request("listen", args);
        assert_eq!(error_code(&reply), "bad_audio", "{bad}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains(want), "{bad}: {message}");
    }
    let reply = control.request("listen", json!({ "action": "audio" }));
    assert_eq!(error_code(&reply), "invalid_params");

    // Stereo 44.1 kHz, converted by the daemon.
    let (path, question, times) = clip(1);
    let mono = samples(&path);
    let stereo: Vec<f32> = voxd::audio::resample(&mono, 16_000, 44_100)
        .unwrap()
        .into_iter()
        .flat_map(|s| [s, s])
        .collect();

    // Muted: the wake word is still heard (barge-in), no utterance starts.
    control.ok("listen", json!({ "action": "mute" }));
    send_pcm(&mut control, &stereo, 44_100, 2);
    let seen = events_until(&mut events, "wake.detected", &daemon);
    assert_eq!(data(&seen, "wake.detected")["name"], "hey_jarvis");
    // The listener runs behind the socket when decoding is slow: unmuted
    // before it has heard the whole muted pass, it would hear the rest of
    // that pass (and a late wake word in it) unmuted. Wait for it.
    let pass = mono.len() as f64 / 16_000.0;
    support::wait_until("the muted pass is heard whole", || {
        let status = control.ok("listen", json!({ "action": "status" }));
        status["heard_secs"].as_f64().unwrap() >= pass - 0.1
    });
    let muted_wakes = control.ok("listen", json!({ "action": "status" }))["wakes"].clone();
    control.ok("listen", json!({ "action": "unmute" }));
    // Unmuted: the same clip, now heard whole (an utterance from the muted
    // pass would break the order `check_utterance` asserts). Times count
    // from the start of listening: the first pass is the offset.
    send_pcm(&mut control, &stereo, 44_100, 2);
    let seen = events_until(&mut events, "transcript.final", &daemon);
    // Events of the muted pass still on their way are not this pass's.
    let seen: Vec<(String, Value)> = seen
        .into_iter()
        .filter(|(_, d)| d["time"].as_f64().is_none_or(|t| t >= pass))
        .collect();
    check_utterance(&seen, &question, times, pass);

    // A follow-up: the question alone, no wake word.
    control.ok("listen", json!({ "action": "followup", "ms": 5000 }));
    let from = ((times.0 - 0.5) * 16_000.0) as usize;
    send_pcm(&mut control, &mono[from..], 16_000, 1);
    let seen = events_until(&mut events, "transcript.final", &daemon);
    assert!(!names(&seen).contains(&"wake.detected"), "{seen:#?}");
    assert_eq!(data(&seen, "speech.start")["trigger"], "followup");
    let text = data(&seen, "transcript.final")["text"].as_str().unwrap();
    let mut wer = Wer::default();
    wer.add(&question, text);
    wer.assert_near(&format!("{question:?} heard as {text:?}"), 0.0, ONE_WORD);

    let status = control.ok("listen", json!({ "action": "status" }));
    assert_eq!(
        status["wakes"].as_u64(),
        muted_wakes.as_u64().map(|w| w + 1),
        "{status}"
    );
    assert_eq!(status["utterances"], 2, "{status}");
    assert_eq!(control.ok("ping", json!({}))["pong"], true);
    assert_eq!(
        control.ok("listen", json!({ "action": "stop" }))["stopped"],
        true
    );
    let reply = control.request("listen", json!({ "action": "audio", "pcm": "AAA=" }));
    assert_eq!(error_code(&reply), "invalid_params");
}

#[test]
fn capture_devices_are_listed_and_a_missing_one_is_a_clear_error() {
    let daemon = Daemon::start(&config(""));
    // No sound card here: the listing still works and says what to do.
    let (ok, stdout, stderr) = daemon.home.run(&["audio", "devices"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("input devices"), "{stdout}");
    let (ok, stdout, _) = daemon.home.run(&["audio", "devices", "--json"]);
    assert!(ok);
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    assert!(listed.get("inputs").is_some(), "{listed}");
    let reply = daemon.connect().request(
        "listen",
        json!({ "action": "start", "input": "cpal", "device": "no such microphone" }),
    );
    assert_eq!(reply["ok"], false, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("no such microphone"), "{message}");
    assert!(message.contains("voxd audio devices"), "{message}");
    // A WAV input that is not audio: a clear error, still serving.
    let junk = daemon.home.path().join("junk.wav");
    std::fs::write(&junk, b"this is not a wav file").unwrap();
    let reply = daemon
        .connect()
        .request("listen", json!({ "action": "start", "file": junk }));
    assert_eq!(error_code(&reply), "bad_audio");
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("junk.wav"));
    assert_eq!(daemon.connect().ok("ping", json!({}))["pong"], true);
}

/// An ALSA capture device that reads `infile` (the file plugin over the
/// null device): the cpal source on a real ALSA PCM, no sound card needed.
fn alsa_mic_home(infile: &Path) -> Home {
    let home = Home::new(&config(""));
    std::fs::write(
        home.path().join(".asoundrc"),
        format!(
            "pcm.voxdmic {{\n  type file\n  slave.pcm \"null\"\n  file \"/dev/null\"\n  infile \"{}\"\n  \
             format \"raw\"\n  hint {{ show on description \"voxd test mic\" }}\n}}\n",
            infile.display()
        ),
    )
    .unwrap();
    home
}

#[test]
fn the_cpal_source_hears_an_alsa_capture_device() {
    let tmp = tempfile::tempdir().unwrap();
    let infile = tmp.path().join("mic.raw");
    std::fs::write(&infile, b"").unwrap();
    let home = alsa_mic_home(&infile);
    let (ok, stdout, stderr) = home.run(&["audio", "devices", "--json"]);
    assert!(ok, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    let mic = listed["inputs"]
        .as_array()
        .unwrap_or_else(|| panic!("inputs listed: {stdout}"))
        .iter()
        .find(|d| d["name"] == "voxd test mic")
        .unwrap_or_else(|| panic!("the test mic is listed: {stdout}"))
        .clone();
    let rate = mic["sample_rate"].as_u64().unwrap() as u32;
    let channels = mic["channels"].as_u64().unwrap() as usize;
    let format = mic["sample_format"].as_str().unwrap().to_string();
    // The clip at the device's own rate, channels and sample format.
    let (path, question, _) = clip(2);
    let audio = voxd::audio::resample(&samples(&path), 16_000, rate).unwrap();
    let mut raw = Vec::new();
    for s in audio {
        for _ in 0..channels {
            match format.as_str() {
                "f32" => raw.extend(s.to_le_bytes()),
                "i16" => raw.extend(((s * 32767.0) as i16).to_le_bytes()),
                "i32" => raw.extend(((s as f64 * 2147483647.0) as i32).to_le_bytes()),
                other => panic!("test device format {other}"),
            }
        }
    }
    std::fs::write(&infile, raw).unwrap();
    let daemon = Daemon::start_in(home);
    let mut events = subscribe(&daemon);
    let status = daemon.connect().ok(
        "listen",
        json!({ "action": "start", "input": "cpal", "device": "voxd test mic" }),
    );
    assert_eq!(status["input"], "cpal: voxd test mic", "{status}");
    woken_and_heard(&mut events, &daemon, &question);
    assert_eq!(
        daemon.connect().ok("listen", json!({ "action": "stop" }))["stopped"],
        true
    );
}

#[test]
fn a_capture_device_that_goes_away_is_reopened_when_it_comes_back() {
    // The microphone is a PulseAudio monitor source; the server going down
    // is the device going away.
    let mut server = pulse::Server::start();
    let home = Home::new(&config(""));
    std::fs::write(
        home.path().join(".asoundrc"),
        "pcm.voxdmic {\n  type pulse\n  device \"voxd.monitor\"\n  \
         hint { show on description \"voxd pulse mic\" }\n}\n\
         pcm.voxdspeaker {\n  type pulse\n  device \"voxd\"\n}\n",
    )
    .unwrap();
    let (key, value) = server.env();
    let daemon = Daemon::start_with_env(home, &[(key, &value)]);
    let mut events = subscribe(&daemon);
    let status = daemon.connect().ok(
        "listen",
        json!({ "action": "start", "input": "cpal", "device": "voxd pulse mic" }),
    );
    assert_eq!(status["input"], "cpal: voxd pulse mic", "{status}");

    server.stop();
    let seen = events_until(&mut events, "listen.device", &daemon);
    let lost = data(&seen, "listen.device");
    assert_eq!(lost["state"], "lost", "{lost}");
    assert_eq!(lost["device"], "voxd pulse mic", "{lost}");
    // Still serving, still listening, waiting for the device.
    let mut control = daemon.connect();
    support::wait_until("`listen status` to show the device lost", || {
        let status = control.ok("listen", json!({ "action": "status" }));
        assert_eq!(status["listening"], true, "{status}");
        status["input"].as_str().unwrap().ends_with("(lost)")
    });

    server.restart();
    let seen = events_until(&mut events, "listen.device", &daemon);
    let restored = data(&seen, "listen.device");
    assert_eq!(restored["state"], "restored", "{restored}");
    assert!(restored["lost_ms"].as_u64() > Some(0), "{restored}");

    // It hears again: a question played into the sink reaches the monitor.
    let (path, question, _) = clip(3);
    let played = std::process::Command::new("aplay")
        .args(["-q", "-D", "voxdspeaker"])
        .arg(&path)
        .env("HOME", daemon.home.path())
        .env(key, &value)
        .status()
        .unwrap();
    assert!(played.success(), "aplay failed:\n{}", server.log());
    woken_and_heard(&mut events, &daemon, &question);
}
