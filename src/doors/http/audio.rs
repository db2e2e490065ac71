//! OpenAI's audio endpoints: `POST /v1/audio/transcriptions` (a multipart
//! WAV upload at any rate, width and channel count → Whisper) and `POST
//! /v1/audio/speech` (Piper, streamed: each sentence's audio is sent as it
//! is synthesised).
//!
//! Uploads must be WAV (other containers get a 400 that says so);
//! `language` and `prompt` are accepted and the installed model's language
//! is used. Speech comes as `wav` (the voice's rate, a streaming header
//! whose sizes say "unknown", as streamed WAV servers write it) or `pcm`
//! (16-bit little-endian mono at 24 kHz, what OpenAI's `pcm` is).

use std::convert::Infallible;
use std::path::Path;

use axum::body::{Body, Bytes};
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Multipart, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::error::{Dialect, Failure};
use super::stream::channel;
use super::Api;
use crate::audio::{self, Pcm};
use crate::speak::{SayOptions, Target};
use crate::stt::{self, Pace, Segment, SttError};

const D: Dialect = Dialect::OpenAi;
/// OpenAI's `pcm`: 16-bit mono at this rate.
const PCM_RATE: u32 = 24_000;

/// What a transcription is answered with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Json,
    Text,
    VerboseJson,
    Srt,
    Vtt,
}

impl Format {
    fn parse(name: &str) -> Result<Format, Failure> {
        Ok(match name {
            "json" => Format::Json,
            "text" => Format::Text,
            "verbose_json" => Format::VerboseJson,
            "srt" => Format::Srt,
            "vtt" => Format::Vtt,
            other => {
                return Err(Failure::bad_request(
                    D,
                    format!(
                        "`response_format` {other:?}: use json, text, verbose_json, srt or vtt"
                    ),
                ))
            }
        })
    }
}

/// `POST /v1/audio/transcriptions`.
#[utoipa::path(post, path = "/v1/audio/transcriptions", tag = "OpenAI",
    request_body(content = String, content_type = "multipart/form-data",
        description = "`file`: a WAV file; `response_format`: json, text, verbose_json, srt or vtt"),
    responses((status = 200, description = "The transcript in the asked format"),
        (status = 400, description = "Not a usable WAV file, or a bad field"),
        (status = 413, description = "Longer than http.max_audio_secs, or larger than http.max_body_bytes")))]
pub async fn transcriptions(
    State(api): State<Api>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, Failure> {
    let mut form =
        form.map_err(|r| Failure::new(D, r.status(), "invalid_multipart", r.body_text()))?;
    let mut file: Option<(String, Bytes)> = None;
    let mut format = Format::Json;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| Failure::new(D, e.status(), "invalid_multipart", e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let filename = field.file_name().unwrap_or("upload.wav").to_string();
        let value = field
            .bytes()
            .await
            .map_err(|e| Failure::new(D, e.status(), "invalid_multipart", e.body_text()))?;
        match name.as_str() {
            "file" => file = Some((filename, value)),
            "response_format" => format = Format::parse(&String::from_utf8_lossy(&value))?,
            // The installed model, its language and no prompt are used.
            _ => {}
        }
    }
    let Some((filename, wav)) = file else {
        return Err(Failure::bad_request(
            D,
            "no `file` field: upload the audio as `file`",
        ));
    };
    let name = Path::new(&filename).to_path_buf();
    let audio = {
        let name = name.clone();
        tokio::task::spawn_blocking(move || stt::wav::read_bytes(&wav, &name))
            .await
            .map_err(|e| Failure::from_api(D, crate::api::ApiError::internal(e)))?
            .map_err(|e| Failure::from_api(D, SttError::from(e).into()))?
    };
    let max = api.assistant.config.config.http.max_audio_secs;
    if audio.secs() > max as f64 {
        return Err(Failure::new(
            D,
            StatusCode::PAYLOAD_TOO_LARGE,
            "audio_too_long",
            format!(
                "{filename} is {:.0} s long; http.max_audio_secs is {max}",
                audio.secs()
            ),
        ));
    }
    let (partials, _) = mpsc::unbounded_channel();
    let heard = api
        .assistant
        .transcribe_audio(audio, &name, Pace::Batch, partials)
        .await
        .map_err(|e| Failure::from_api(D, e.into()))?;
    let transcript = heard.transcript;
    let text = transcript.text.trim().to_string();
    Ok(match format {
        Format::Json => Json(json!({ "text": text })).into_response(),
        Format::Text => text_response("text/plain; charset=utf-8", format!("{text}\n")),
        Format::VerboseJson => {
            let segments: Vec<_> = transcript
                .segments
                .iter()
                .enumerate()
                .map(|(id, s)| json!({ "id": id, "start": s.start, "end": s.end, "text": s.text }))
                .collect();
            Json(json!({
                "task": "transcribe",
                "language": "english",
                "duration": transcript.audio_secs,
                "text": text,
                "segments": segments,
            }))
            .into_response()
        }
        Format::Srt => text_response(
            "application/x-subrip",
            subtitles(&transcript.segments, false),
        ),
        Format::Vtt => text_response("text/vtt", subtitles(&transcript.segments, true)),
    })
}

fn text_response(content_type: &'static str, body: String) -> Response {
    ([(CONTENT_TYPE, content_type)], body).into_response()
}

/// SubRip (numbered cues, `00:00:01,500`) or WebVTT (`WEBVTT` first,
/// `00:00:01.500`).
fn subtitles(segments: &[Segment], vtt: bool) -> String {
    let stamp = |secs: f64| {
        let ms = (secs.max(0.0) * 1000.0).round() as u64;
        let sep = if vtt { '.' } else { ',' };
        format!(
            "{:02}:{:02}:{:02}{sep}{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    let mut out = String::from(if vtt { "WEBVTT\n\n" } else { "" });
    for (i, s) in segments.iter().enumerate() {
        if !vtt {
            out.push_str(&format!("{}\n", i + 1));
        }
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            stamp(s.start),
            stamp(s.end),
            s.text.trim()
        ));
    }
    out
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Speech {
    input: String,
    #[serde(default)]
    voice: Option<String>,
    #[serde(default)]
    response_format: Option<String>,
    #[serde(default)]
    speed: Option<f32>,
}

/// OpenAI's own voice names: clients send one by default; they mean the
/// configured voice here.
const OPENAI_VOICES: &[&str] = &[
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
];

/// `POST /v1/audio/speech`.
#[utoipa::path(post, path = "/v1/audio/speech", tag = "OpenAI", request_body = Speech,
    responses((status = 200, description = "Audio (audio/wav or audio/pcm), streamed sentence by sentence"),
        (status = 400, description = "An unknown voice or format, an empty or too long text")))]
pub async fn speech(
    State(api): State<Api>,
    body: Result<Json<Speech>, JsonRejection>,
) -> Result<Response, Failure> {
    let Json(req) = body.map_err(|r| Failure::from_json(D, r))?;
    let pcm = match req.response_format.as_deref() {
        None | Some("wav") => false,
        Some("pcm") => true,
        Some(other) => {
            return Err(Failure::bad_request(
                D,
                format!("`response_format` {other:?}: voxd writes wav or pcm"),
            ))
        }
    };
    if req.speed.is_some_and(|s| (s - 1.0).abs() > f32::EPSILON) {
        return Err(Failure::bad_request(
            D,
            "`speed` other than 1.0 is not supported",
        ));
    }
    let voice = req
        .voice
        .filter(|v| !OPENAI_VOICES.contains(&v.as_str()))
        .unwrap_or_default();
    let (tx, mut rx) = mpsc::unbounded_channel::<Pcm>();
    let options = SayOptions {
        voice,
        target: Target::Channel(tx),
        hold: None,
    };
    let assistant = api.assistant.clone();
    let mut said = tokio::spawn(async move { assistant.speaker.say(&req.input, options).await });
    // The first sentence's audio, or why there is none (an unknown voice,
    // an empty or too long text): an error is still a proper reply here.
    let first = tokio::select! {
        pcm = rx.recv() => pcm,
        outcome = &mut said => {
            let outcome = outcome.map_err(|e| Failure::from_api(D, crate::api::ApiError::internal(e)))?;
            outcome.map_err(|e| Failure::from_api(D, e.into()))?;
            rx.recv().await
        }
    };
    let Some(first) = first else {
        return Err(Failure::from_api(
            D,
            crate::api::ApiError::internal("no audio was made"),
        ));
    };
    let rate = if pcm { PCM_RATE } else { first.rate };
    let bytes = channel(
        &api.assistant,
        Vec::new(),
        move |out: mpsc::Sender<Result<Bytes, Infallible>>| async move {
            let _said = said;
            if !pcm
                && out
                    .send(Ok(Bytes::from(streaming_wav_header(rate))))
                    .await
                    .is_err()
            {
                return;
            }
            let mut next = Some(first);
            while let Some(chunk) = next {
                let samples = match audio::resample(&chunk.samples, chunk.rate, rate) {
                    Ok(samples) => samples,
                    Err(e) => {
                        tracing::warn!(error = %e, "speech: cannot resample; stopping");
                        return;
                    }
                };
                let data: Vec<u8> = audio::to_i16(&samples).flat_map(i16::to_le_bytes).collect();
                if out.send(Ok(Bytes::from(data))).await.is_err() {
                    return; // the client left: dropping `rx` stops the utterance
                }
                next = rx.recv().await;
            }
        },
    );
    let content_type = if pcm { "audio/pcm" } else { "audio/wav" };
    Ok(([(CONTENT_TYPE, content_type)], Body::from_stream(bytes)).into_response())
}

/// A 16-bit mono WAV header for audio of unknown length: both sizes are
/// `0xFFFFFFFF`, which streaming readers take as "until the end".
fn streaming_wav_header(rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&1u16.to_le_bytes()); // mono
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2).to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtitles_number_srt_cues_and_head_vtt() {
        let segments = [
            Segment {
                start: 0.0,
                end: 1.5,
                text: " Hello.".into(),
            },
            Segment {
                start: 61.25,
                end: 3661.0,
                text: "Bye.".into(),
            },
        ];
        assert_eq!(
            subtitles(&segments, false),
            "1\n00:00:00,000 --> 00:00:01,500\nHello.\n\n2\n00:01:01,250 --> 01:01:01,000\nBye.\n\n"
        );
        assert!(subtitles(&segments, true)
            .starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello.\n"));
    }

    #[test]
    fn the_streaming_header_is_a_16_bit_mono_wav_of_unknown_length() {
        let h = streaming_wav_header(22_050);
        assert_eq!(h.len(), 44);
        assert_eq!(&h[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(h[24..28].try_into().unwrap()), 22_050);
        assert_eq!(&h[40..44], &[0xff; 4]);
    }
}
