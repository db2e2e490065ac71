//! The Piper voice runner against Piper's reference implementation
//! (`piper-tts` 1.8.0 on ONNX Runtime 1.32.0, recorded in
//! `tests/fixtures/piper_reference.json` by `piper_reference.py`): the same
//! phoneme ids for the same text — punctuation kept, PAD after BOS — and
//! audio of the same length.

mod support;

use serde_json::Value;
use voxd::config::Config;
use voxd::speak::piper::{PiperVoice, Settings};
use voxd::speak::Tts;

fn joe(settings: impl FnOnce(&mut Settings)) -> PiperVoice {
    let config = Config::builtin();
    let dir = support::test_model("piper-en_US-joe-medium");
    let mut s = Settings::from_config(&config.tts);
    settings(&mut s);
    PiperVoice::load(&dir, s, &config.onnx, 0).expect("the joe voice loads")
}

fn reference() -> Vec<Value> {
    let text = include_str!("fixtures/piper_reference.json");
    let json: Value = serde_json::from_str(text).unwrap();
    json["texts"].as_array().unwrap().clone()
}

/// The id of `phoneme` in the joe voice.
fn id_of(phoneme: &str) -> i64 {
    let dir = support::test_model("piper-en_US-joe-medium");
    let json: Value =
        serde_json::from_slice(&std::fs::read(dir.join("en_US-joe-medium.onnx.json")).unwrap())
            .unwrap();
    json["phoneme_id_map"][phoneme][0].as_i64().unwrap()
}

#[test]
fn phoneme_ids_match_pipers_reference() {
    let voice = joe(|_| {});
    // The one known difference: the espeak-ng that piper-tts bundles (a
    // later commit of 1.52) writes a palatal glide "ʲ" after /i/ before a
    // vowel ("the old" → ðɪʲ ˈoʊld); espeak-rs-sys's 1.52.0.1 does not.
    let glide = id_of("ʲ");
    let pad = id_of("_");
    for case in reference() {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<Vec<i64>> = serde_json::from_value(case["ids"].clone()).unwrap();
        let expected: Vec<Vec<i64>> = expected
            .into_iter()
            .map(|ids| {
                let mut out = Vec::with_capacity(ids.len());
                let mut i = 0;
                while i < ids.len() {
                    if ids[i] == glide && ids.get(i + 1) == Some(&pad) {
                        i += 2;
                        continue;
                    }
                    out.push(ids[i]);
                    i += 1;
                }
                out
            })
            .collect();
        assert_eq!(voice.phoneme_ids(text).unwrap(), expected, "{text:?}");
    }
}

#[test]
fn audio_length_matches_pipers_reference() {
    let mut voice = joe(|_| {});
    let rate = voice.sample_rate() as f64;
    assert_eq!(rate, 22050.0);
    let (mut ours_total, mut theirs_total) = (0.0, 0.0);
    for case in reference() {
        let text = case["text"].as_str().unwrap();
        let theirs = case["seconds"].as_f64().unwrap();
        let audio = voice.synthesize(text).unwrap();
        let ours = audio.len() as f64 / rate;
        // Piper's durations are sampled (noise_w): one text varies by a
        // few percent from run to run, the sum over ten far less.
        assert!(
            (ours / theirs - 1.0).abs() < 0.25,
            "{text:?}: {ours:.2} s, reference {theirs:.2} s"
        );
        let peak = audio.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!(
            (peak - 1.0).abs() < 1e-3,
            "peak-normalised like piper-tts: {peak}"
        );
        ours_total += ours;
        theirs_total += theirs;
    }
    assert!(
        (ours_total / theirs_total - 1.0).abs() < 0.10,
        "total {ours_total:.2} s, reference {theirs_total:.2} s"
    );
}

#[test]
fn commas_and_stops_are_pauses() {
    let mut voice = joe(|_| {});
    let with = voice.synthesize("One, two, three. Four.").unwrap().len();
    let without = voice.synthesize("One two three four").unwrap().len();
    assert!(
        with as f64 > without as f64 * 1.15,
        "punctuation adds pauses: {with} vs {without} samples"
    );
}

#[test]
fn speed_and_volume_apply() {
    let text = "The quick brown fox jumps over the lazy dog, twice.";
    let normal = joe(|_| {}).synthesize(text).unwrap();
    let fast = joe(|s| s.speed = 2.0).synthesize(text).unwrap();
    let ratio = fast.len() as f64 / normal.len() as f64;
    assert!(
        (0.4..0.65).contains(&ratio),
        "speed 2 → half as long: {ratio:.2}"
    );
    let quiet = joe(|s| s.volume = 0.25).synthesize(text).unwrap();
    let peak = quiet.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!((peak - 0.25).abs() < 1e-3, "volume 0.25 → peak {peak}");
}

#[test]
fn odd_text_gives_speech_or_nothing_never_a_failure() {
    let mut voice = joe(|_| {});
    for text in ["", "...", "🙂🙂🙂", "\u{200b}\u{feff}", "ﷺ ∑ ⊕", "a\u{0}b"] {
        match voice.synthesize(text) {
            Ok(audio) => assert!(audio.iter().all(|s| s.is_finite()), "{text:?}"),
            Err(e) => assert!(text.contains('\0'), "{text:?}: {e}"),
        }
    }
}

#[test]
fn missing_and_corrupt_voices_are_clear_errors() {
    let config = Config::builtin();
    let settings = Settings::from_config(&config.tts);
    let tmp = tempfile::tempdir().unwrap();
    let err = PiperVoice::load(&tmp.path().join("nope"), settings.clone(), &config.onnx, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no such file"), "{err}");
    // A directory with garbage for a model and a valid config.
    let joe = support::test_model("piper-en_US-joe-medium");
    std::fs::write(tmp.path().join("bad.onnx"), b"this is not an onnx model").unwrap();
    std::fs::copy(
        joe.join("en_US-joe-medium.onnx.json"),
        tmp.path().join("bad.onnx.json"),
    )
    .unwrap();
    let err = PiperVoice::load(tmp.path(), settings.clone(), &config.onnx, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("bad.onnx"), "{err}");
    // A config that is not a Piper config.
    std::fs::write(tmp.path().join("bad.onnx.json"), b"{\"audio\": 1}").unwrap();
    let err = PiperVoice::load(tmp.path(), settings, &config.onnx, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a Piper voice config"), "{err}");
}

/// Peak resident memory of this test process, in MiB.
fn peak_mib() -> u64 {
    support::proc_kib("self", "VmHWM") / 1024
}

/// Symbols are read out as words, so a short text can be a very long
/// phoneme sequence, and the model's memory grows with its square: 2 KB
/// of them once peaked at 11.3 GB. Each inference call now takes at most
/// `MAX_PHONEMES` (cut at word breaks), and the whole text is still said.
#[test]
fn symbol_heavy_text_is_synthesised_in_bounded_pieces() {
    use voxd::speak::piper::MAX_PHONEMES;
    let mut voice = joe(|_| {});
    let text = "$ % & * # @ + = ".repeat(30);
    let ids = voice.phoneme_ids(&text).unwrap();
    let longest = ids.iter().map(Vec::len).max().unwrap();
    // BOS, PAD, then each phoneme and a PAD, then EOS.
    assert!(longest <= 2 * MAX_PHONEMES + 3, "{longest} ids in one call");
    assert!(
        ids.len() > 1,
        "the text was not cut: {} piece(s)",
        ids.len()
    );
    let before = peak_mib();
    let audio = voice.synthesize(&text).unwrap();
    let grew = peak_mib().saturating_sub(before);
    // ~240 words read out: well over a minute of speech.
    assert!(audio.len() > 60 * 22_050, "{} samples", audio.len());
    assert!(grew < 1024, "synthesis raised the peak by {grew} MiB");
}
