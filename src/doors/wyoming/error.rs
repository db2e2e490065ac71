//! Why a Wyoming request or connection fails: [`WyomingError`], sent to
//! the client as `error{text, code}` before the connection ends.

use std::net::SocketAddr;
use std::path::PathBuf;

use voxd_proto::ProtoError;

use crate::api::ApiError;
use crate::audio::AudioError;

/// Why the Wyoming server cannot listen.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("wyoming.listen {0:?} is not a Wyoming address: use \"tcp://HOST:PORT\" (an IP address, e.g. \"tcp://127.0.0.1:10300\") or \"unix://PATH\"")]
    BadAddress(String),
    #[error("wyoming.listen {0} is not a loopback address, and Wyoming has no authentication: set wyoming.allow_remote = true to serve a trusted network")]
    Remote(SocketAddr),
    #[error("cannot listen on {addr} for Wyoming: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {} for Wyoming: {source}", path.display())]
    BindUnix {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What went wrong on a connection; each says its Wyoming error `code`.
#[derive(Debug, thiserror::Error)]
pub enum WyomingError {
    #[error("unknown event type {0:?}; voxd serves describe, ping, select-program, transcribe, detect, audio-start, audio-chunk, audio-stop, synthesize, synthesize-start, synthesize-chunk, synthesize-stop and transcript")]
    UnknownEvent(String),
    #[error(transparent)]
    Frame(#[from] ProtoError),
    #[error("`{kind}` has bad data: {message}")]
    BadData { kind: String, message: String },
    #[error("`{0}` before `audio-start`: send audio-start{{rate, width, channels}} first")]
    AudioNotStarted(String),
    #[error("bad audio format: {0}")]
    BadAudioFormat(String),
    #[error("the audio is longer than {max_secs} s (wyoming.max_audio_secs)")]
    AudioTooLong { max_secs: u64 },
    #[error("`{0}` outside a synthesize-start … synthesize-stop stream")]
    NotStreaming(String),
    #[error("{0} connections are open (wyoming.max_connections); try again later")]
    Busy(usize),
    #[error("nothing received for {0} s (wyoming.idle_timeout_secs)")]
    Idle(u64),
    #[error("{0}")]
    Api(#[from] ApiError),
}

impl WyomingError {
    /// The `code` of the `error` event.
    pub fn code(&self) -> &'static str {
        match self {
            WyomingError::UnknownEvent(_) => "unknown_event",
            WyomingError::Frame(ProtoError::HeaderTooLong { .. }) => "header_too_long",
            WyomingError::Frame(
                ProtoError::DataTooLong { .. } | ProtoError::PayloadTooLong { .. },
            ) => "payload_too_long",
            WyomingError::Frame(_) => "bad_event",
            WyomingError::BadData { .. } => "invalid_params",
            WyomingError::AudioNotStarted(_) => "audio_not_started",
            WyomingError::BadAudioFormat(_) => "bad_audio_format",
            WyomingError::AudioTooLong { .. } => "audio_too_long",
            WyomingError::NotStreaming(_) => "not_streaming",
            WyomingError::Busy(_) => "too_many_connections",
            WyomingError::Idle(_) => "idle_timeout",
            WyomingError::Api(e) => e.code.as_str(),
        }
    }
}

impl From<AudioError> for WyomingError {
    fn from(e: AudioError) -> WyomingError {
        WyomingError::BadAudioFormat(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorCode;

    #[test]
    fn every_failure_has_a_precise_code() {
        assert_eq!(
            WyomingError::UnknownEvent("x".into()).code(),
            "unknown_event"
        );
        assert_eq!(
            WyomingError::Frame(ProtoError::HeaderTooLong { limit: 1 }).code(),
            "header_too_long"
        );
        assert_eq!(
            WyomingError::Frame(ProtoError::PayloadTooLong { len: 2, limit: 1 }).code(),
            "payload_too_long"
        );
        assert_eq!(
            WyomingError::Frame(ProtoError::HeaderNotUtf8).code(),
            "bad_event"
        );
        let missing = ApiError::new(ErrorCode::NoModel, "no model");
        assert_eq!(WyomingError::from(missing).code(), "no_model");
    }
}
