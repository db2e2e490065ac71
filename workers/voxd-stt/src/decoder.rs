//! The decoding thread: owns the whisper.cpp context and state, runs one
//! job at a time, and reports on the frame channel.

use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use voxd_proto::{kind, Frame};
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

const RATE: usize = 16_000;
/// Encoder frames per second of audio (1500 frames = 30 s).
const CTX_PER_SEC: usize = 50;
/// The encoder's full window.
const FULL_CTX: usize = 1500;

/// Decoding parameters of one request.
#[derive(Debug, Clone)]
pub struct Params {
    model: PathBuf,
    language: String,
    initial_prompt: String,
    threads: i32,
    /// Fixed encoder context (frames of 20 ms); 0 = whisper's full window.
    audio_ctx: usize,
    /// Size the encoder context to the audio (plus the margin).
    fit_audio_ctx: bool,
    audio_ctx_margin_ms: usize,
    /// The smallest fitted window: whisper repeats itself on tiny ones.
    audio_ctx_min_ms: usize,
    partial_interval_ms: usize,
}

impl Params {
    pub fn from_data(data: &Value) -> Result<Params, String> {
        let model = data
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .ok_or("`model` (path of a whisper.cpp ggml file) is required")?;
        let str_field = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let num = |k: &str, default: u64| -> Result<u64, String> {
            match data.get(k) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v
                    .as_u64()
                    .ok_or(format!("`{k}` must be a non-negative integer, not {v}")),
            }
        };
        let threads = num("threads", 2)?.clamp(1, 256) as i32;
        let audio_ctx = num("audio_ctx", 0)? as usize;
        if audio_ctx > FULL_CTX {
            return Err(format!(
                "`audio_ctx` {audio_ctx} exceeds whisper's {FULL_CTX}"
            ));
        }
        Ok(Params {
            model: PathBuf::from(model),
            language: str_field("language"),
            initial_prompt: str_field("initial_prompt"),
            threads,
            audio_ctx,
            fit_audio_ctx: data
                .get("fit_audio_ctx")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            audio_ctx_margin_ms: num("audio_ctx_margin_ms", 1000)? as usize,
            audio_ctx_min_ms: num("audio_ctx_min_ms", 0)? as usize,
            partial_interval_ms: num("partial_interval_ms", 0)? as usize,
        })
    }

    /// New audio (in samples) between partial decodes; 0 = none.
    pub fn partial_interval_samples(&self) -> usize {
        self.partial_interval_ms * RATE / 1000
    }

    /// The encoder context for `samples` of audio; 0 = whisper's default.
    fn audio_ctx_for(&self, samples: usize) -> usize {
        if self.fit_audio_ctx {
            let ms = (samples * 1000 / RATE + self.audio_ctx_margin_ms).max(self.audio_ctx_min_ms);
            let ctx = (ms * CTX_PER_SEC).div_ceil(1000);
            if ctx < FULL_CTX {
                return ctx;
            }
            return 0;
        }
        self.audio_ctx
    }
}

/// Work for the decoding thread.
pub enum Job {
    Load {
        gen: u64,
        params: Params,
    },
    Partial {
        gen: u64,
        params: Params,
        samples: Vec<f32>,
    },
    Final {
        gen: u64,
        params: Params,
        samples: Vec<f32>,
    },
}

struct Loaded {
    path: PathBuf,
    ctx: WhisperContext,
    state: WhisperState,
}

/// What the abort callback reads.
struct Abort {
    current: Arc<AtomicU64>,
    gen: u64,
}

/// whisper.cpp's abort callback: abort once the request is no longer current.
unsafe extern "C" fn abort_if_stale(user_data: *mut c_void) -> bool {
    // SAFETY: `user_data` points to the `Abort` that `decode` keeps alive
    // (on its stack) for the whole of `whisper_full_with_state`.
    let abort = unsafe { &*(user_data as *const Abort) };
    abort.current.load(Ordering::SeqCst) != abort.gen
}

/// Starts the decoding thread; returns its job queue and the "idle" flag.
pub fn spawn(
    out: UnboundedSender<Frame>,
    current: Arc<AtomicU64>,
) -> (std::sync::mpsc::Sender<Job>, Arc<AtomicBool>) {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let idle = Arc::new(AtomicBool::new(true));
    let idle_flag = idle.clone();
    std::thread::Builder::new()
        .name("whisper".into())
        .spawn(move || {
            let mut loaded: Option<Loaded> = None;
            let send = |f: Frame| {
                let _ = out.send(f);
            };
            for job in rx {
                match job {
                    Job::Load { gen, params } => match load(&mut loaded, &params) {
                        Ok(l) if current.load(Ordering::SeqCst) == gen => {
                            send(Frame::new(kind::DONE).with_data(describe(l)))
                        }
                        Ok(_) => send(Frame::error("cancelled", "request cancelled")),
                        Err(e) => send(Frame::error("load-failed", e)),
                    },
                    Job::Partial {
                        gen,
                        params,
                        samples,
                    } => {
                        if current.load(Ordering::SeqCst) == gen {
                            if let Ok(l) = load(&mut loaded, &params) {
                                if let Ok(Decoded { text, .. }) =
                                    decode(l, &params, &samples, &current, gen)
                                {
                                    if current.load(Ordering::SeqCst) == gen {
                                        send(Frame::new("transcript-partial").with_data(json!({
                                            "text": text,
                                            "audio_secs": samples.len() as f64 / RATE as f64,
                                        })));
                                    }
                                }
                            }
                        }
                        idle_flag.store(true, Ordering::SeqCst);
                    }
                    Job::Final {
                        gen,
                        params,
                        samples,
                    } => {
                        for frame in finish(&mut loaded, &params, &samples, &current, gen) {
                            send(frame);
                        }
                    }
                }
            }
        })
        .expect("spawn the decoding thread");
    (tx, idle)
}

/// The reply frames of a whole request.
fn finish(
    loaded: &mut Option<Loaded>,
    params: &Params,
    samples: &[f32],
    current: &Arc<AtomicU64>,
    gen: u64,
) -> Vec<Frame> {
    let cancelled = || vec![Frame::error("cancelled", "request cancelled")];
    if current.load(Ordering::SeqCst) != gen {
        return cancelled();
    }
    if samples.is_empty() {
        return vec![Frame::error(
            "no-audio",
            "no audio arrived before audio-stop",
        )];
    }
    let l = match load(loaded, params) {
        Ok(l) => l,
        Err(e) => return vec![Frame::error("load-failed", e)],
    };
    let started = Instant::now();
    match decode(l, params, samples, current, gen) {
        Ok(Decoded {
            text,
            segments,
            audio_ctx,
        }) => vec![
            Frame::new("transcript").with_data(json!({
                "text": text,
                "segments": segments,
                "audio_secs": samples.len() as f64 / RATE as f64,
                "decode_ms": started.elapsed().as_millis() as u64,
                "audio_ctx": audio_ctx,
            })),
            Frame::new(kind::DONE),
        ],
        Err(_) if current.load(Ordering::SeqCst) != gen => cancelled(),
        Err(e) => vec![Frame::error("decode-failed", e)],
    }
}

fn describe(l: &Loaded) -> Value {
    json!({
        "model": l.path,
        "n_vocab": l.ctx.n_vocab(),
        "multilingual": l.ctx.is_multilingual(),
        "model_type": l.ctx.model_type_readable_str_lossy().map(|s| s.into_owned()).unwrap_or_default(),
    })
}

/// The model `params` names, loading it (and dropping another) if needed.
fn load<'a>(loaded: &'a mut Option<Loaded>, params: &Params) -> Result<&'a mut Loaded, String> {
    if loaded.as_ref().is_none_or(|l| l.path != params.model) {
        *loaded = None;
        let path = &params.model;
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("cannot read whisper model {}: {e}", path.display()))?;
        let path_str = path
            .to_str()
            .ok_or_else(|| format!("model path {} is not UTF-8", path.display()))?;
        let ctx = WhisperContext::new_with_params(path_str, WhisperContextParameters::default())
            .map_err(|e| {
                format!(
                    "whisper.cpp cannot load {} ({} bytes): {e}; is it a whisper.cpp ggml model? (see the worker's stderr)",
                    path.display(),
                    meta.len()
                )
            })?;
        let state = ctx
            .create_state()
            .map_err(|e| format!("cannot create a whisper state for {}: {e}", path.display()))?;
        *loaded = Some(Loaded {
            path: path.clone(),
            ctx,
            state,
        });
    }
    loaded.as_mut().ok_or_else(|| "no model loaded".to_owned())
}

/// A decoded transcript.
struct Decoded {
    text: String,
    /// `[{start, end, text}]`, in seconds.
    segments: Vec<Value>,
    /// The encoder window it was decoded with; 0 = whisper's full 30 s.
    audio_ctx: usize,
}

/// Decodes `samples`, in a window fitted to them when the parameters ask
/// for it. A fitted window that makes whisper repeat itself (its known
/// failure on short windows) is decoded again with the full window.
fn decode(
    l: &mut Loaded,
    params: &Params,
    samples: &[f32],
    current: &Arc<AtomicU64>,
    gen: u64,
) -> Result<Decoded, String> {
    let audio_ctx = params.audio_ctx_for(samples.len());
    let pass = decode_with(l, params, audio_ctx, samples, current, gen)?;
    if audio_ctx == 0 || !(pass.capped || repeats(&pass.text)) {
        return Ok(Decoded {
            text: pass.text,
            segments: pass.segments,
            audio_ctx,
        });
    }
    eprintln!(
        "voxd-stt: the {audio_ctx}-frame window looped ({:?}); decoding with the full window",
        pass.text
    );
    let pass = decode_with(l, params, 0, samples, current, gen)?;
    Ok(Decoded {
        text: pass.text,
        segments: pass.segments,
        audio_ctx: 0,
    })
}

/// Whether `text` says the same four words (or more) twice: whisper's
/// repetition loop, rare in a real utterance of a few seconds.
fn repeats(text: &str) -> bool {
    const N: usize = 4;
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let mut seen = std::collections::HashSet::new();
    words.windows(N).any(|gram| !seen.insert(gram))
}

/// Most tokens a segment may take in a fitted window: far more than anyone
/// says in that time (speech runs at 3 to 6 tokens a second), far fewer
/// than a repetition loop writes before whisper stops it (224).
fn token_cap(samples: usize) -> i32 {
    (16 + 10 * samples / RATE) as i32
}

/// What one whisper.cpp pass made of the audio.
struct Pass {
    text: String,
    segments: Vec<Value>,
    /// A segment reached [`token_cap`]: its text may be cut short.
    capped: bool,
}

/// One whisper.cpp pass over `samples` with encoder window `audio_ctx` (0 =
/// full).
fn decode_with(
    l: &mut Loaded,
    params: &Params,
    audio_ctx: usize,
    samples: &[f32],
    current: &Arc<AtomicU64>,
    gen: u64,
) -> Result<Pass, String> {
    let mut fp = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    fp.set_n_threads(params.threads);
    fp.set_language(Some(if params.language.is_empty() {
        "en"
    } else {
        &params.language
    }));
    if !params.initial_prompt.is_empty() {
        fp.set_initial_prompt(&params.initial_prompt);
    }
    if audio_ctx > 0 {
        fp.set_audio_ctx(audio_ctx as i32);
        // No temperature fallback in a fitted window: a repetition loop
        // there would be decoded again at five temperatures (minutes on a
        // small board). One greedy pass, and the full window if it loops.
        fp.set_temperature_inc(0.0);
        fp.set_max_tokens(token_cap(samples.len()));
    }
    fp.set_print_progress(false);
    fp.set_print_realtime(false);
    fp.set_print_special(false);
    fp.set_print_timestamps(false);
    let abort = Abort {
        current: current.clone(),
        gen,
    };
    // SAFETY: `abort_if_stale` only reads the `Abort` behind the pointer,
    // which lives on this stack frame until after `full` returns.
    unsafe {
        fp.set_abort_callback(Some(abort_if_stale));
        fp.set_abort_callback_user_data(&abort as *const Abort as *mut c_void);
    }
    // whisper.cpp needs at least 1 s of audio; pad short clips with silence.
    let padded: Vec<f32>;
    let audio = if samples.len() < RATE + RATE / 10 {
        padded = samples
            .iter()
            .copied()
            .chain(std::iter::repeat(0.0))
            .take(RATE + RATE / 10)
            .collect();
        &padded[..]
    } else {
        samples
    };
    l.state
        .full(fp, audio)
        .map_err(|e| format!("whisper.cpp failed to transcribe: {e}"))?;
    let cap = token_cap(samples.len());
    let mut text = String::new();
    let mut segments = Vec::new();
    let mut capped = false;
    for seg in l.state.as_iter() {
        let t = seg.to_str_lossy().map_err(|e| e.to_string())?.into_owned();
        capped |= audio_ctx > 0 && seg.n_tokens() >= cap;
        text.push_str(&t);
        segments.push(json!({
            "start": seg.start_timestamp() as f64 / 100.0,
            "end": seg.end_timestamp() as f64 / 100.0,
            "text": t.trim(),
        }));
    }
    Ok(Pass {
        text: text.trim().to_owned(),
        segments,
        capped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_phrase_is_a_repetition_loop() {
        assert!(repeats(
            "How many days are left until the end of the month? How many days are left"
        ));
        assert!(repeats("Turn off the lights. turn OFF the lights!"));
        assert!(!repeats(
            "How many days are left until the end of the month?"
        ));
        // Short repeats are speech, not a loop.
        assert!(!repeats("no no no, stop, stop it now"));
        assert!(!repeats(""));
    }

    #[test]
    fn the_fitted_window_covers_the_audio_the_margin_and_the_minimum() {
        let params = |fit: bool, margin: u64, min: u64| {
            Params::from_data(&json!({
                "model": "m.bin",
                "fit_audio_ctx": fit,
                "audio_ctx_margin_ms": margin,
                "audio_ctx_min_ms": min,
            }))
            .unwrap()
        };
        // 2 s + 1 s margin = 150 frames of 20 ms.
        assert_eq!(params(true, 1000, 0).audio_ctx_for(2 * RATE), 150);
        assert_eq!(params(true, 1000, 5000).audio_ctx_for(2 * RATE), 250);
        assert_eq!(params(true, 1000, 5000).audio_ctx_for(10 * RATE), 550);
        // Past 30 s: whisper's own full window.
        assert_eq!(params(true, 1000, 0).audio_ctx_for(30 * RATE), 0);
        assert_eq!(params(false, 1000, 5000).audio_ctx_for(2 * RATE), 0);
    }
}
