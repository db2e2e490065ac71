//! The transcription task: gathers each utterance's audio as the listening
//! thread sends it, re-decodes the growing utterance for a
//! `transcript.partial` every `stt.partial_interval_ms` of new audio (one
//! decode at a time, run beside the task so audio keeps arriving), and
//! publishes `transcript.final` when the utterance ends. A partial still
//! decoding when its utterance ends is cancelled: the final never waits
//! behind it. Both events carry `"source": "listen"` so the voice pipeline
//! can subscribe.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::events::{Event, Events};
use crate::stt::{Audio16k, Pace, Stt, SttError, Transcript};

/// What the listening thread sends.
#[derive(Debug)]
pub enum Heard {
    Start { id: u64 },
    Audio { id: u64, samples: Vec<f32> },
    End { id: u64 },
    Abandon { id: u64 },
}

struct Current {
    id: u64,
    audio: Vec<f32>,
    /// Length at the last partial.
    decoded: usize,
}

/// A partial decode in flight: aborting the task drops its request, which
/// cancels the decode in the worker.
struct PartialDecode {
    id: u64,
    secs: f64,
    task: JoinHandle<Result<Transcript, SttError>>,
}

pub async fn run(
    mut heard: mpsc::UnboundedReceiver<Heard>,
    stt: Arc<dyn Stt>,
    events: Events,
    partial_interval_ms: u32,
) {
    let interval = partial_interval_ms as usize * 16;
    let mut current: Option<Current> = None;
    let mut partial: Option<PartialDecode> = None;
    loop {
        let first = tokio::select! {
            msg = heard.recv() => match msg {
                Some(msg) => msg,
                None => break,
            },
            done = async { (&mut partial.as_mut()?.task).await.ok() }, if partial.is_some() => {
                if let (Some(p), Some(result)) = (partial.take(), done) {
                    publish_partial(&events, p.id, p.secs, result);
                }
                start_partial(&mut partial, current.as_mut(), &stt, interval);
                continue;
            }
        };
        // Catch up with everything already sent before decoding anything.
        let mut batch = vec![first];
        while let Ok(more) = heard.try_recv() {
            batch.push(more);
        }
        let mut ended = Vec::new();
        for msg in batch {
            match msg {
                Heard::Start { id } => {
                    cancel(&mut partial);
                    current = Some(Current {
                        id,
                        audio: Vec::new(),
                        decoded: 0,
                    })
                }
                Heard::Audio { id, samples } => {
                    if let Some(c) = current.as_mut().filter(|c| c.id == id) {
                        c.audio.extend(samples);
                    }
                }
                Heard::End { id } => {
                    if let Some(c) = current.take_if(|c| c.id == id) {
                        cancel(&mut partial);
                        ended.push(c);
                    }
                }
                Heard::Abandon { id } => {
                    if current.take_if(|c| c.id == id).is_some() {
                        cancel(&mut partial);
                    }
                }
            }
        }
        for utterance in ended {
            transcribe_final(&*stt, &events, utterance).await;
        }
        start_partial(&mut partial, current.as_mut(), &stt, interval);
    }
    cancel(&mut partial);
}

/// Starts a partial decode of `current` when none is running and enough
/// new audio has arrived since the last one.
fn start_partial(
    partial: &mut Option<PartialDecode>,
    current: Option<&mut Current>,
    stt: &Arc<dyn Stt>,
    interval: usize,
) {
    let Some(c) = current else { return };
    if partial.is_some() || interval == 0 || c.audio.len() < c.decoded + interval {
        return;
    }
    c.decoded = c.audio.len();
    let audio = audio16k(c.audio.clone());
    let secs = audio.secs();
    let stt = stt.clone();
    *partial = Some(PartialDecode {
        id: c.id,
        secs,
        task: tokio::spawn(async move { stt.transcribe(&audio, Pace::Batch, None).await }),
    });
}

fn cancel(partial: &mut Option<PartialDecode>) {
    if let Some(p) = partial.take() {
        p.task.abort();
    }
}

fn publish_partial(events: &Events, id: u64, secs: f64, result: Result<Transcript, SttError>) {
    match result {
        Ok(t) => events.publish(Event::new(
            "transcript.partial",
            json!({
                "utterance": id,
                "text": t.text.trim(),
                "audio_secs": secs,
                "source": "listen",
            }),
        )),
        Err(e) => tracing::warn!(error = %e, "partial transcription failed"),
    }
}

fn audio16k(samples: Vec<f32>) -> Audio16k {
    Audio16k {
        samples,
        source_rate: crate::stt::wav::RATE,
        source_channels: 1,
    }
}

async fn transcribe_final(stt: &dyn Stt, events: &Events, utterance: Current) {
    let audio = audio16k(utterance.audio);
    match stt.transcribe(&audio, Pace::Batch, None).await {
        Ok(t) => events.publish(Event::new(
            "transcript.final",
            json!({
                "utterance": utterance.id,
                "text": t.text.trim(),
                "segments": t.segments,
                "audio_secs": audio.secs(),
                "decode_ms": t.decode_ms,
                "source": "listen",
            }),
        )),
        Err(e) => {
            tracing::warn!(utterance = utterance.id, error = %e, "transcription failed");
            events.publish(Event::new(
                "listen.error",
                json!({
                    "utterance": utterance.id,
                    "code": e.code().as_str(),
                    "error": e.to_string(),
                }),
            ));
        }
    }
}
