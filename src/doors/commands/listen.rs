//! `listen`: the microphone loop. `start` begins
//! listening to `listen.input` or the source given; `stop`; `status`;
//! `mute`/`unmute` (the echo gate by hand); `followup` (the next utterance
//! needs no wake word); and `audio`, a chunk of base64 16-bit PCM for the
//! `socket` source.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::api::{ApiError, ErrorCode};
use crate::audio::input::PcmChunk;
use crate::audio::AudioError;
use crate::listen::{ListenError, StartOptions};

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum Listen {
    /// Starts listening; every field defaults to `[listen]`.
    Start {
        #[serde(default)]
        input: Option<String>,
        #[serde(default)]
        device: Option<String>,
        /// A WAV file (implies `input: "wav"`).
        #[serde(default)]
        file: Option<PathBuf>,
    },
    Stop {},
    Status {},
    Mute {},
    Unmute {},
    /// Opens a follow-up window of `ms` milliseconds (default 8000).
    Followup {
        #[serde(default)]
        ms: Option<u64>,
    },
    /// Base64 s16le PCM for the `socket` source.
    Audio {
        pcm: String,
        #[serde(default = "default_rate")]
        rate: u32,
        #[serde(default = "default_channels")]
        channels: u16,
    },
}

fn default_rate() -> u32 {
    16_000
}

fn default_channels() -> u16 {
    1
}

fn listen_error(e: ListenError) -> ApiError {
    let code = match &e {
        ListenError::Audio(AudioError::BadPcm(_) | AudioError::Input(_)) => ErrorCode::BadAudio,
        ListenError::Audio(
            AudioError::UnknownSource { .. } | AudioError::NoInputFile | AudioError::NotStreaming,
        )
        | ListenError::UnknownWakeWord { .. }
        | ListenError::NoWakeWords
        | ListenError::Settings(_) => ErrorCode::InvalidParams,
        ListenError::NoModel { .. } => ErrorCode::NoModel,
        ListenError::Audio(AudioError::NoInputDevice { .. } | AudioError::Device(_)) => {
            ErrorCode::EngineFailed
        }
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, e.to_string())
}

impl Listen {
    pub async fn apply(self, ctx: &Context) -> Result<Value, ApiError> {
        let listener = &ctx.assistant.listener;
        match self {
            Listen::Start {
                input,
                device,
                file,
            } => {
                let status = listener
                    .start(StartOptions {
                        input,
                        device,
                        file,
                    })
                    .await
                    .map_err(listen_error)?;
                Ok(json!(status))
            }
            Listen::Stop {} => Ok(json!({ "stopped": listener.stop().await })),
            Listen::Status {} => Ok(json!(listener.status())),
            Listen::Mute {} => {
                listener.set_muted(true);
                Ok(json!({ "muted": true }))
            }
            Listen::Unmute {} => {
                listener.set_muted(false);
                Ok(json!({ "muted": false }))
            }
            Listen::Followup { ms } => {
                let ms = ms.unwrap_or(8000);
                listener.open_followup(Duration::from_millis(ms));
                Ok(json!({ "followup_ms": ms }))
            }
            Listen::Audio {
                pcm,
                rate,
                channels,
            } => {
                let chunk = PcmChunk::decode(&pcm, rate, channels)
                    .map_err(|e| listen_error(ListenError::Audio(e)))?;
                let queued = listener.feed(chunk).map_err(listen_error)?;
                Ok(json!({ "queued_samples": queued }))
            }
        }
    }
}
