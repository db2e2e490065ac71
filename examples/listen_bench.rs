//! The voxd side of `bench/listen.py`: runs the listening stages that run on
//! every frame (openWakeWord `hey_jarvis` + Silero VAD, one ONNX thread
//! each) over a WAV file as fast as they go, 80 ms at a time, and prints
//! JSON: frames, seconds of audio, the compute time of each run (both
//! stages, and the wake word and the VAD apart), the best run's per-frame
//! time, the highest wake score, when the score first reached the threshold
//! (0.5), and the frames judged speech.
//!
//!     cargo run --release --example listen_bench -- OPENWAKEWORD_DIR SILERO_DIR CLIP.wav [RUNS]

use std::path::PathBuf;
use std::time::Instant;

use voxd::config::Config;
use voxd::listen::vad::{Vad, FRAME};
use voxd::listen::wake::{WakeSettings, WakeWords, STEP};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (wake_dir, vad_dir, clip) = match args.as_slice() {
        [w, v, c, ..] => (PathBuf::from(w), PathBuf::from(v), PathBuf::from(c)),
        _ => {
            eprintln!("usage: listen_bench OPENWAKEWORD_DIR SILERO_DIR CLIP.wav [RUNS]");
            std::process::exit(2);
        }
    };
    let runs: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(3);
    let config = Config::builtin();
    let audio = voxd::stt::wav::read(&clip).expect("a readable WAV").samples;
    let settings = WakeSettings {
        threshold: 0.5,
        refractory_steps: 25,
    };
    let mut best = f64::MAX;
    let (mut totals, mut wake_secs, mut vad_secs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut top, mut speech) = (0.0f32, 0usize);
    // Seconds of audio heard when the score first reached the threshold.
    let mut detected: Option<f64> = None;
    for _ in 0..runs {
        let mut wake = WakeWords::load(
            &config.onnx,
            &wake_dir,
            &["hey_jarvis".to_string()],
            settings,
            1,
        )
        .expect("wake models load");
        let mut vad = Vad::load(&config.onnx, &vad_dir, 1).expect("VAD loads");
        let mut pending: Vec<f32> = Vec::new();
        (top, speech, detected) = (0.0, 0, None);
        let (mut in_wake, mut in_vad) = (0.0f64, 0.0f64);
        let started = Instant::now();
        for (i, step) in audio.chunks_exact(STEP).enumerate() {
            let t = Instant::now();
            wake.push(step).expect("wake inference");
            in_wake += t.elapsed().as_secs_f64();
            let score = wake.scores()[0];
            top = top.max(score);
            if detected.is_none() && score >= settings.threshold {
                detected = Some(((i + 1) * STEP) as f64 / 16_000.0);
            }
            let t = Instant::now();
            pending.extend_from_slice(step);
            while pending.len() >= FRAME {
                let frame: Vec<f32> = pending.drain(..FRAME).collect();
                if vad.probability(&frame).expect("VAD inference") >= 0.5 {
                    speech += 1;
                }
            }
            in_vad += t.elapsed().as_secs_f64();
        }
        let total = started.elapsed().as_secs_f64();
        best = best.min(total);
        totals.push(total);
        wake_secs.push(in_wake);
        vad_secs.push(in_vad);
    }
    let frames = audio.len() / STEP;
    println!(
        "{}",
        serde_json::json!({
            "frames": frames,
            "audio_secs": (frames * STEP) as f64 / 16_000.0,
            "compute_secs": best,
            "run_secs": totals,
            "wake_secs": wake_secs,
            "vad_secs": vad_secs,
            "per_frame_ms": best * 1000.0 / frames as f64,
            "max_score": top,
            "detected_secs": detected,
            "speech_frames": speech,
        })
    );
}
