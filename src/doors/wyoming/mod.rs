//! The Wyoming door (`[wyoming] listen`, off by default): voxd's speech to
//! text, text to speech, wake words and answers from the notes for Home
//! Assistant and any other [Wyoming] client, over TCP or a Unix socket.
//!
//! Each connection is a stream of Wyoming events (framed by
//! [`voxd_proto`], within the configured [`Limits`]); `connection` reads
//! them and hands each request to the file of its service: `info`
//! (`describe`), `asr` (`transcribe` + audio), `tts` (`synthesize`,
//! and its streaming form), `wake` (`detect` + audio) and `handle`
//! (`transcript` → `handled`). Each parses, calls the assistant or one of
//! its services, and encodes; only this door knows Wyoming's JSON. Bad
//! input ends the connection with `error{text, code}` ([`WyomingError`]);
//! the server goes on.
//!
//! Wyoming has no authentication: the server listens on loopback unless
//! `wyoming.allow_remote` is set, and says so in the log when it is.
//! Zeroconf registration and the use of remote Wyoming engines are not
//! implemented (see `docs/wyoming.md`).
//!
//! [Wyoming]: https://github.com/OHF-Voice/wyoming

mod asr;
mod audio;
mod connection;
mod error;
mod handle;
mod info;
mod tts;
mod wake;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use voxd_proto::Frame;

pub use error::{BindError, WyomingError};

use crate::assistant::Assistant;
use crate::config::WyomingConfig;

/// The Wyoming event types this door reads or writes that the worker
/// protocol ([`voxd_proto::kind`]) does not name.
mod kind {
    pub const SELECT_PROGRAM: &str = "select-program";
    pub const TRANSCRIBE: &str = "transcribe";
    pub const TRANSCRIPT: &str = "transcript";
    pub const AUDIO_START: &str = "audio-start";
    pub const AUDIO_CHUNK: &str = "audio-chunk";
    pub const AUDIO_STOP: &str = "audio-stop";
    pub const SYNTHESIZE: &str = "synthesize";
    pub const SYNTHESIZE_START: &str = "synthesize-start";
    pub const SYNTHESIZE_CHUNK: &str = "synthesize-chunk";
    pub const SYNTHESIZE_STOP: &str = "synthesize-stop";
    pub const SYNTHESIZE_STOPPED: &str = "synthesize-stopped";
    pub const DETECT: &str = "detect";
    pub const DETECTION: &str = "detection";
    pub const NOT_DETECTED: &str = "not-detected";
    pub const HANDLED: &str = "handled";
    pub const NOT_HANDLED: &str = "not-handled";
    pub const HANDLED_START: &str = "handled-start";
    pub const HANDLED_CHUNK: &str = "handled-chunk";
    pub const HANDLED_STOP: &str = "handled-stop";
}

/// What one connection may send (`[wyoming]`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Header line, data and payload of one event.
    pub frame: voxd_proto::Limits,
    /// Audio of one transcription, in seconds.
    pub max_audio_secs: u64,
    /// Silence after which a connection is closed.
    pub idle: Duration,
}

impl Limits {
    pub fn from_config(cfg: &WyomingConfig) -> Limits {
        Limits {
            frame: voxd_proto::Limits {
                header: cfg.max_header_bytes,
                data: cfg.max_payload_bytes,
                payload: cfg.max_payload_bytes,
            },
            max_audio_secs: cfg.max_audio_secs,
            idle: Duration::from_secs(cfg.idle_timeout_secs),
        }
    }
}

/// A bound Wyoming listener.
pub enum Listener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
}

impl Listener {
    /// Where it listens, as a Wyoming URI (`tcp://127.0.0.1:10300`).
    pub fn uri(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| format!("tcp://{a}"))
                .unwrap_or_else(|_| "tcp://?".into()),
            Listener::Unix { path, .. } => format!("unix://{}", path.display()),
        }
    }
}

/// Binds the server `cfg` asks for, or `None` when it is off. A
/// non-loopback TCP address needs `allow_remote`, and is logged.
pub async fn bind(cfg: &WyomingConfig) -> Result<Option<Listener>, BindError> {
    let listen = cfg.listen.trim();
    if listen.is_empty() {
        return Ok(None);
    }
    let bad = || BindError::BadAddress(listen.to_owned());
    if let Some(path) = listen.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(bad());
        }
        let path = PathBuf::from(path);
        // A socket file left by an earlier run (voxd holds its instance
        // lock, so no other voxd serves it).
        if std::fs::symlink_metadata(&path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        }) {
            let _ = std::fs::remove_file(&path);
        }
        let listener = UnixListener::bind(&path).map_err(|source| BindError::BindUnix {
            path: path.clone(),
            source,
        })?;
        return Ok(Some(Listener::Unix { listener, path }));
    }
    let addr: SocketAddr = listen
        .strip_prefix("tcp://")
        .ok_or_else(bad)?
        .parse()
        .map_err(|_| bad())?;
    if !addr.ip().is_loopback() {
        if !cfg.allow_remote {
            return Err(BindError::Remote(addr));
        }
        tracing::warn!(%addr, "Wyoming server on a non-loopback address: Wyoming has no authentication, so anyone who reaches this port can use voxd's engines and ask about your notes");
    }
    TcpListener::bind(addr)
        .await
        .map(|l| Some(Listener::Tcp(l)))
        .map_err(|source| BindError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Serves Wyoming on `listener` until the daemon shuts down; then lets the
/// requests in flight finish (the daemon bounds the wait by
/// `daemon.shutdown_grace_secs`).
pub async fn serve(listener: Listener, assistant: Arc<Assistant>, cfg: WyomingConfig) {
    let limits = Arc::new(Limits::from_config(&cfg));
    let connections = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    tracing::info!(uri = %listener.uri(), "Wyoming server listening");
    loop {
        let accepted = tokio::select! {
            _ = assistant.shutdown.cancelled() => break,
            accepted = accept(&listener) => accepted,
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "wyoming: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = slots.clone().try_acquire_owned().ok();
        let assistant = assistant.clone();
        let limits = limits.clone();
        let max = cfg.max_connections;
        connections.spawn(async move {
            match (slot, stream) {
                (Some(_slot), Stream::Tcp(s)) => connection::run(s, assistant, limits).await,
                (Some(_slot), Stream::Unix(s)) => connection::run(s, assistant, limits).await,
                (None, Stream::Tcp(s)) => refuse(s, max).await,
                (None, Stream::Unix(s)) => refuse(s, max).await,
            }
        });
    }
    connections.close();
    connections.wait().await;
    if let Listener::Unix { path, .. } = &listener {
        let _ = std::fs::remove_file(path);
    }
}

/// An accepted connection.
enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Stream> {
    match listener {
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| Stream::Tcp(s)),
        Listener::Unix { listener, .. } => listener.accept().await.map(|(s, _)| Stream::Unix(s)),
    }
}

/// Tells a client over `wyoming.max_connections` why it is closed.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, max: usize) {
    tracing::debug!("wyoming: {max} connections open; refusing one");
    let e = WyomingError::Busy(max);
    let _ = voxd_proto::write_frame(&mut stream, &error_event(&e)).await;
}

/// The `error{text, code}` event for `e`.
fn error_event(e: &WyomingError) -> Frame {
    Frame::error(e.code(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(listen: &str, allow_remote: bool) -> WyomingConfig {
        WyomingConfig {
            listen: listen.into(),
            allow_remote,
            ..crate::config::Config::builtin().wyoming
        }
    }

    #[tokio::test]
    async fn loopback_unless_remote_is_allowed() {
        assert!(bind(&cfg("", false)).await.unwrap().is_none());
        assert!(matches!(
            bind(&cfg("tcp://0.0.0.0:0", false)).await,
            Err(BindError::Remote(_))
        ));
        for bad in [
            "127.0.0.1:10300",
            "tcp://localhost:10300",
            "unix://",
            "http://x",
        ] {
            assert!(
                matches!(bind(&cfg(bad, false)).await, Err(BindError::BadAddress(_))),
                "{bad}"
            );
        }
        let tcp = bind(&cfg("tcp://127.0.0.1:0", false))
            .await
            .unwrap()
            .unwrap();
        assert!(tcp.uri().starts_with("tcp://127.0.0.1:"), "{}", tcp.uri());
        assert!(bind(&cfg("tcp://0.0.0.0:0", true)).await.unwrap().is_some());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sock");
        let uri = format!("unix://{}", path.display());
        let unix = bind(&cfg(&uri, false)).await.unwrap().unwrap();
        assert_eq!(unix.uri(), uri);
        drop(unix);
        // The file left behind is replaced.
        assert!(bind(&cfg(&uri, false)).await.unwrap().is_some());
    }
}
