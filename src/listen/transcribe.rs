//! The transcription task: gathers each utterance's audio as the listening
//! thread sends it, re-decodes the growing utterance for a
//! `transcript.partial` every `stt.partial_interval_ms` of new audio (one
//! decode at a time; a backlog is caught up first, so partials never delay
//! the final), and publishes `transcript.final` when the utterance ends.
//! Both carry `"source": "listen"` so the voice pipeline can subscribe.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc;

use crate::events::{Event, Events};
use crate::stt::{Audio16k, Pace, Stt};

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

pub async fn run(
    mut heard: mpsc::UnboundedReceiver<Heard>,
    stt: Arc<dyn Stt>,
    events: Events,
    partial_interval_ms: u32,
) {
    let interval = partial_interval_ms as usize * 16;
    let mut current: Option<Current> = None;
    while let Some(first) = heard.recv().await {
        // Catch up with everything already sent before decoding anything.
        let mut batch = vec![first];
        while let Ok(more) = heard.try_recv() {
            batch.push(more);
        }
        let mut ended = Vec::new();
        for msg in batch {
            match msg {
                Heard::Start { id } => {
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
                        ended.push(c);
                    }
                }
                Heard::Abandon { id } => {
                    current.take_if(|c| c.id == id);
                }
            }
        }
        for utterance in ended {
            transcribe_final(&*stt, &events, utterance).await;
        }
        if let Some(c) = current.as_mut() {
            if interval > 0 && c.audio.len() >= c.decoded + interval {
                c.decoded = c.audio.len();
                let audio = audio16k(c.audio.clone());
                match stt.transcribe(&audio, Pace::Batch, None).await {
                    Ok(t) => events.publish(Event::new(
                        "transcript.partial",
                        json!({
                            "utterance": c.id,
                            "text": t.text.trim(),
                            "audio_secs": audio.secs(),
                            "source": "listen",
                        }),
                    )),
                    Err(e) => tracing::warn!(error = %e, "partial transcription failed"),
                }
            }
        }
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
