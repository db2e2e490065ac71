//! The listening stages on real models and generated speech: openWakeWord
//! wake words (fire on "Hey Jarvis" clips at every 80 ms frame alignment,
//! never on other speech), Silero VAD + the endpointer (utterance
//! boundaries within 300 ms of the known ones, ended within the hangover).

mod support;

use std::path::{Path, PathBuf};

use voxd::config::Config;
use voxd::listen::endpoint::{Boundary, EndpointSettings, Endpointer};
use voxd::listen::vad::{Vad, FRAME};
use voxd::listen::wake::{WakeSettings, WakeWords, STEP};

fn wake_words(words: &[&str]) -> WakeWords {
    let config = Config::builtin();
    let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    WakeWords::load(
        &config.onnx,
        &support::test_model("openwakeword"),
        &words,
        WakeSettings {
            threshold: 0.5,
            refractory_steps: 25,
        },
        1,
    )
    .expect("the openWakeWord models load")
}

fn read(path: &Path) -> Vec<f32> {
    voxd::stt::wav::read(path).expect("readable clip").samples
}

fn wake_clips() -> Vec<PathBuf> {
    let mut clips: Vec<PathBuf> = std::fs::read_dir(support::test_audio().join("wake"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    clips.sort();
    assert!(clips.len() >= 8, "{clips:?}");
    clips
}

/// Known start and end (seconds) of the question in a wake clip.
fn question_times(clip: &Path) -> (f64, f64) {
    let times = std::fs::read_to_string(clip.with_extension("times")).unwrap();
    let v: Vec<f64> = times
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    (v[0], v[1])
}

/// Runs `audio` (after `offset` samples of silence) through fresh wake
/// words; returns each word's highest score and the detections' names.
fn scan(words: &[&str], audio: &[f32], offset: usize) -> (Vec<f32>, Vec<String>) {
    let mut wake = wake_words(words);
    let mut stream = vec![0.0; offset];
    stream.extend_from_slice(audio);
    let mut best = vec![0.0f32; words.len()];
    let mut fired = Vec::new();
    for chunk in stream.chunks(STEP) {
        fired.extend(wake.push(chunk).unwrap().into_iter().map(|d| d.name));
        for (b, s) in best.iter_mut().zip(wake.scores()) {
            *b = b.max(*s);
        }
    }
    (best, fired)
}

#[test]
fn hey_jarvis_fires_on_every_clip_at_every_frame_alignment() {
    let mut misses = Vec::new();
    let mut runs = 0;
    for clip in wake_clips() {
        let audio = read(&clip);
        // Four alignments of the clip against the 80 ms steps.
        for offset in [0, STEP / 4, STEP / 2, 3 * STEP / 4] {
            runs += 1;
            let (best, fired) = scan(&["hey_jarvis"], &audio, offset);
            eprintln!(
                "{} +{offset}: hey_jarvis {:.3} {fired:?}",
                clip.display(),
                best[0]
            );
            // Exactly one detection: the refractory period holds.
            if fired != ["hey_jarvis"] {
                misses.push(format!(
                    "{} +{offset}: {fired:?} ({:.3})",
                    clip.display(),
                    best[0]
                ));
            }
        }
    }
    // openWakeWord's own target is < 5 % false rejects.
    assert!(
        misses.len() * 20 <= runs,
        "{} of {runs} runs missed: {misses:#?}",
        misses.len()
    );
}

#[test]
fn other_speech_wakes_nothing() {
    let audio_dir = support::test_audio();
    let words = ["hey_jarvis", "alexa", "hey_rhasspy"];
    let mut worst = (0.0f32, String::new());
    let mut clips = 0;
    for set in ["piper", "espeak"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(audio_dir.join(set))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for path in paths {
            // Silence before, so the front end is warm when the speech starts.
            let (best, fired) = scan(&words, &read(&path), 16_000 * 3 / 2);
            clips += 1;
            assert!(fired.is_empty(), "{} woke {fired:?}", path.display());
            for (w, b) in words.iter().zip(best) {
                if b > worst.0 {
                    worst = (b, format!("{w} on {}", path.display()));
                }
            }
        }
    }
    eprintln!(
        "{clips} clips of other speech; highest score {:.4} ({})",
        worst.0, worst.1
    );
    assert!(clips >= 40);
    // Margin below the 0.5 threshold. The Piper clips are rendered anew with
    // the voice's random noise on each machine: alexa has reached 0.31 on
    // one rendering of an ordinary sentence, hey_jarvis stays near 0.
    assert!(worst.0 < 0.4, "too close to waking: {worst:?}");
}

#[test]
fn several_wake_words_run_at_once_and_each_fires_only_for_itself() {
    let clip = &wake_clips()[0];
    let (best, fired) = scan(&["alexa", "hey_jarvis", "hey_mycroft"], &read(clip), 0);
    assert_eq!(fired, ["hey_jarvis"], "{best:?}");
    assert!(best[1] > 0.5 && best[0] < 0.1 && best[2] < 0.1, "{best:?}");
}

#[test]
fn vad_endpoints_the_question_within_300_ms() {
    let config = Config::builtin();
    let hangover_frames = 10; // 320 ms
    for clip in wake_clips() {
        let (q_start, q_end) = question_times(&clip);
        let audio = read(&clip);
        let mut vad = Vad::load(&config.onnx, &support::test_model("silero-vad"), 1).unwrap();
        let mut endpointer = Endpointer::new(EndpointSettings {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_frames: 8,
            hangover_frames,
        });
        let mut segments = Vec::new();
        let mut open = None;
        for (i, frame) in audio.chunks_exact(FRAME).enumerate() {
            let p = vad.probability(frame).unwrap();
            match endpointer.push(p) {
                Some(Boundary::Start { onset }) => open = Some(onset),
                Some(Boundary::End { onset, end }) => {
                    assert_eq!(open.take(), Some(onset));
                    // Reported as soon as the hangover has passed.
                    assert_eq!(i as u64 + 1, end + hangover_frames);
                    let secs = |f: u64| (f * FRAME as u64) as f64 / 16_000.0;
                    segments.push((secs(onset), secs(end)));
                }
                None => {}
            }
        }
        eprintln!(
            "{}: question {q_start:.2}–{q_end:.2}, segments {segments:?}",
            clip.display()
        );
        // The wake phrase and the question, each within 300 ms.
        assert_eq!(segments.len(), 2, "{}: {segments:?}", clip.display());
        let (start, end) = segments[1];
        assert!(
            (start - q_start).abs() <= 0.3 && (end - q_end).abs() <= 0.3,
            "{}: question {q_start:.2}–{q_end:.2}, heard {start:.2}–{end:.2}",
            clip.display()
        );
        assert!(segments[0].0 >= 1.2, "{segments:?}");
    }
}

#[test]
fn silence_and_noise_are_not_speech() {
    let config = Config::builtin();
    let mut vad = Vad::load(&config.onnx, &support::test_model("silero-vad"), 1).unwrap();
    // Two seconds of silence, then two of low white noise (xorshift).
    let mut x: u32 = 0x9e37_79b9;
    let mut audio = vec![0.0f32; 32_000];
    audio.extend((0..32_000).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        (x as f32 / u32::MAX as f32 - 0.5) * 0.02
    }));
    let highest = audio
        .chunks_exact(FRAME)
        .map(|f| vad.probability(f).unwrap())
        .fold(0.0f32, f32::max);
    assert!(highest < 0.5, "speech probability {highest}");
}
