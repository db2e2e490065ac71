//! `describe` → `info`: what this server offers, read from the installed
//! models, voices and wake words without loading any (Home Assistant
//! gives `describe` one second). One program per service: `asr` (the
//! Whisper model), `tts` (the voice, streaming), `wake` (every installed
//! wake word) and `handle` (voxd's answers from the notes, streaming). A
//! service whose model is missing is left out, and no satellite is ever
//! advertised: Home Assistant would then load nothing else from the port.

use serde_json::{json, Value};
use voxd_proto::{kind as proto_kind, Frame};

use crate::config::Config;
use crate::{listen, speak, stt};

/// voxd's version, for every program and model.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The name of the `handle` model: answers from the notes.
pub const HANDLE_MODEL: &str = "voxd-notes";

/// The programs `info` may list, one per service: what `select-program`
/// may name.
pub const PROGRAMS: [&str; 4] = [ASR, TTS, WAKE, HANDLE];
const ASR: &str = "voxd-stt";
const TTS: &str = "voxd-tts";
const WAKE: &str = "voxd-wake";
const HANDLE: &str = "voxd-assistant";

fn attribution() -> Value {
    json!({ "name": "voxd", "url": env!("CARGO_PKG_REPOSITORY") })
}

/// An installed artifact named `name` with `extra` fields.
fn artifact(name: &str, description: &str, extra: Value) -> Value {
    let mut value = json!({
        "name": name,
        "attribution": attribution(),
        "installed": true,
        "description": description,
        "version": VERSION,
    });
    if let (Value::Object(map), Value::Object(extra)) = (&mut value, extra) {
        map.extend(extra);
    }
    value
}

/// The `info` event for `config`'s installed models.
pub fn info(config: &Config) -> Frame {
    let asr_languages = match stt::selected_model(config) {
        Ok(model) => {
            let languages = stt::languages(config, &model);
            Some((model.name(), languages))
        }
        Err(e) => {
            tracing::debug!(error = %e, "wyoming info: no speech-to-text model");
            None
        }
    };
    let asr: Vec<Value> = asr_languages
        .iter()
        .map(|(name, languages)| {
            let model = artifact(
                name,
                "Whisper (whisper.cpp)",
                json!({ "languages": languages }),
            );
            artifact(
                ASR,
                "voxd speech to text",
                json!({ "models": [model], "supports_transcript_streaming": false }),
            )
        })
        .collect();

    let tts: Vec<Value> = match speak::describe_voice("", &config.models) {
        Ok(voice) => {
            let speakers: Option<Vec<Value>> = (!voice.speakers.is_empty()).then(|| {
                voice
                    .speakers
                    .iter()
                    .map(|s| json!({ "name": s }))
                    .collect()
            });
            let languages: Vec<String> = voice.language.into_iter().collect();
            let voice = artifact(
                &voice.name,
                "Piper voice",
                json!({ "languages": languages, "speakers": speakers }),
            );
            vec![artifact(
                TTS,
                "voxd text to speech",
                json!({ "voices": [voice], "supports_synthesize_streaming": true }),
            )]
        }
        Err(e) => {
            tracing::debug!(error = %e, "wyoming info: no voice");
            Vec::new()
        }
    };

    let words = listen::installed_wake_words(config).unwrap_or_else(|e| {
        tracing::debug!(error = %e, "wyoming info: no wake words");
        Vec::new()
    });
    let wake: Vec<Value> = (!words.is_empty())
        .then(|| {
            let models: Vec<Value> = words
                .iter()
                .map(|w| {
                    artifact(
                        w,
                        "openWakeWord",
                        json!({ "languages": ["en"], "phrase": w.replace('_', " ") }),
                    )
                })
                .collect();
            artifact(WAKE, "voxd wake words", json!({ "models": models }))
        })
        .into_iter()
        .collect();

    let handle_languages = asr_languages
        .map(|(_, languages)| languages)
        .unwrap_or_else(|| vec!["en".to_owned()]);
    let handle_model = artifact(
        HANDLE_MODEL,
        "answers from your notes, with citations",
        json!({ "languages": handle_languages }),
    );
    let handle = artifact(
        HANDLE,
        "voxd: answers from your notes, with citations",
        json!({ "models": [handle_model], "supports_handled_streaming": true }),
    );

    Frame::new(proto_kind::INFO).with_data(json!({
        "asr": asr,
        "tts": tts,
        "wake": wake,
        "handle": [handle],
        "intent": [],
        "mic": [],
        "snd": [],
    }))
}
