//! `voxd-stt`: voxd's speech-to-text engine worker. It links whisper.cpp
//! (through `whisper-rs`) so that the daemon never does, and speaks
//! `voxd-proto` frames on stdio.
//!
//! # Frames
//!
//! At start it announces `info{name:"stt", pid, version}` (no model yet).
//!
//! - `load{model, threads?}` → `done{model, n_vocab, multilingual, model_type}`:
//!   loads a whisper.cpp ggml model (kept until another one is asked for).
//! - `transcribe{model, language?, initial_prompt?, threads?, audio_ctx?,
//!   fit_audio_ctx?, audio_ctx_margin_ms?, audio_ctx_min_ms?,
//!   partial_interval_ms?}`, then the audio as `audio-chunk{rate:16000,
//!   width:2, channels:1}` frames with s16le payloads, then `audio-stop` →
//!   `transcript{text, segments:[{start, end, text}], audio_secs, decode_ms,
//!   audio_ctx}` → `done`. The model is loaded first if it is not the one in
//!   memory. With `fit_audio_ctx`, the encoder window covers the audio plus
//!   the margin (at least `audio_ctx_min_ms`) instead of 30 s; a fitted
//!   decode that repeats itself is decoded again with the full window, and
//!   `audio_ctx` says which window gave the text (0 = full). With
//!   `partial_interval_ms` > 0, each time that much new audio has arrived
//!   and the decoder is idle, the whole buffer so far is decoded again and
//!   sent as `transcript-partial{text, audio_secs}` (live sources).
//! - `cancel`: the request in flight ends with `error{code:"cancelled"}`,
//!   aborting a decode under way.
//! - `ping` → `pong` at any time (a reader task apart from the decoder
//!   thread), `describe` → `info`, `stop` or end of stdin → exit 0.
//!
//! Failures end the request with `error{code, text}`: `bad-request`,
//! `unsupported-audio`, `no-audio`, `load-failed`, `decode-failed`,
//! `cancelled`.

mod decoder;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::BufReader;
use tokio::sync::mpsc;
use voxd_proto::{kind, read_frame, write_frame, Frame};

use decoder::{Job, Params};

/// Sample rate, width and channels the worker accepts.
const RATE: u64 = 16_000;

fn info() -> Frame {
    Frame::new(kind::INFO).with_data(json!({
        "name": "stt",
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
        "engine": "whisper.cpp",
    }))
}

/// The transcription being received.
struct Receiving {
    gen: u64,
    params: Params,
    samples: Vec<f32>,
    /// Samples present when the last partial decode was queued.
    partial_at: usize,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Frame>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(frame) = out_rx.recv().await {
            if let Err(e) = write_frame(&mut stdout, &frame).await {
                eprintln!("voxd-stt: cannot write to stdout: {e}");
                std::process::exit(1);
            }
        }
    });
    let _ = out_tx.send(info());

    // The request generation: bumped by every new request and by `cancel`;
    // a decode whose generation is no longer current aborts.
    let current = Arc::new(AtomicU64::new(0));
    let (jobs, idle) = decoder::spawn(out_tx.clone(), current.clone());

    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut receiving: Option<Receiving> = None;
    let send = |f: Frame| {
        let _ = out_tx.send(f);
    };
    let code = loop {
        let frame = match read_frame(&mut stdin).await {
            Ok(Some(f)) => f,
            Ok(None) => break ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("voxd-stt: bad frame: {e}");
                break ExitCode::from(1);
            }
        };
        match frame.kind.as_str() {
            kind::PING => send(Frame::new(kind::PONG)),
            kind::DESCRIBE => send(info()),
            kind::STOP => break ExitCode::SUCCESS,
            kind::CANCEL => {
                current.fetch_add(1, Ordering::SeqCst);
                // Audio still arriving: nothing is decoding it, answer here.
                // Otherwise the decoder ends the request it is working on.
                if receiving.take().is_some() {
                    send(Frame::error("cancelled", "request cancelled"));
                }
            }
            "load" => {
                let gen = current.fetch_add(1, Ordering::SeqCst) + 1;
                receiving = None;
                match Params::from_data(&frame.data) {
                    Ok(params) => {
                        let _ = jobs.send(Job::Load { gen, params });
                    }
                    Err(e) => send(Frame::error("bad-request", e)),
                }
            }
            "transcribe" => {
                let gen = current.fetch_add(1, Ordering::SeqCst) + 1;
                receiving = match Params::from_data(&frame.data) {
                    Ok(params) => Some(Receiving {
                        gen,
                        params,
                        samples: Vec::new(),
                        partial_at: 0,
                    }),
                    Err(e) => {
                        send(Frame::error("bad-request", e));
                        None
                    }
                };
            }
            "audio-chunk" => {
                let Some(r) = receiving.as_mut() else {
                    // The rest of a request that already ended (error or cancel).
                    continue;
                };
                if let Err(e) = check_format(&frame.data) {
                    receiving = None;
                    current.fetch_add(1, Ordering::SeqCst);
                    send(Frame::error("unsupported-audio", e));
                    continue;
                }
                if frame.payload.len() % 2 != 0 {
                    receiving = None;
                    current.fetch_add(1, Ordering::SeqCst);
                    send(Frame::error(
                        "unsupported-audio",
                        format!(
                            "audio-chunk payload of {} bytes is not whole 16-bit samples",
                            frame.payload.len()
                        ),
                    ));
                    continue;
                }
                r.samples.extend(
                    frame
                        .payload
                        .chunks_exact(2)
                        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0),
                );
                let interval = r.params.partial_interval_samples();
                if interval > 0
                    && r.samples.len() - r.partial_at >= interval
                    && idle.load(Ordering::SeqCst)
                {
                    r.partial_at = r.samples.len();
                    idle.store(false, Ordering::SeqCst);
                    let _ = jobs.send(Job::Partial {
                        gen: r.gen,
                        params: r.params.clone(),
                        samples: r.samples.clone(),
                    });
                }
            }
            "audio-stop" => {
                if let Some(r) = receiving.take() {
                    let _ = jobs.send(Job::Final {
                        gen: r.gen,
                        params: r.params,
                        samples: r.samples,
                    });
                }
            }
            other => send(Frame::error(
                "bad-request",
                format!("voxd-stt does not know frame type `{other}`"),
            )),
        }
    };
    // Abort a decode under way, let queued frames out, then leave.
    current.fetch_add(1, Ordering::SeqCst);
    drop(jobs);
    drop(out_tx);
    let _ = writer.await;
    code
}

/// Checks an `audio-chunk`'s format: 16 kHz, 16-bit, mono.
fn check_format(data: &Value) -> Result<(), String> {
    let field = |k: &str| data.get(k).and_then(Value::as_u64);
    match (field("rate"), field("width"), field("channels")) {
        (Some(RATE), Some(2), Some(1)) => Ok(()),
        (rate, width, channels) => Err(format!(
            "audio-chunk must be 16000 Hz, 2-byte, 1-channel PCM; got rate {rate:?}, width {width:?}, channels {channels:?} (the daemon resamples)"
        )),
    }
}
