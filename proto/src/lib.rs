//! Framed messages between the voxd daemon and its engine workers.
//!
//! # Framing
//!
//! The wire format is exactly the [Wyoming protocol]'s event framing, so voxd
//! can later speak to (or serve) Wyoming peers. A frame is:
//!
//! 1. one UTF-8 JSON header line ending in `\n`:
//!    `{"type": "...", "version": "...", "data_length": N, "payload_length": M}`
//!    (`data_length` and `payload_length` are left out when zero);
//! 2. exactly `N` bytes of JSON data, an object;
//! 3. exactly `M` bytes of binary payload (audio crosses as 16-bit PCM).
//!
//! There is no other length prefix. For compatibility with older Wyoming
//! peers a `data` object inside the header line is accepted too (and merged
//! under the data that follows it); [`write_frame`] never writes one.
//!
//! Limits protect the daemon from a confused worker: a header line may be at
//! most [`MAX_HEADER_LEN`] bytes, data [`MAX_DATA_LEN`], payload
//! [`MAX_PAYLOAD_LEN`]. Any [`ProtoError`] leaves the stream at an unknown
//! position: the reader must drop the connection (the daemon kills the worker).
//!
//! # Vocabulary between voxd and its workers
//!
//! Messages the daemon sends:
//!
//! | type | meaning |
//! |---|---|
//! | `describe` | asks for an `info` frame |
//! | `ping` | health check; the worker answers `pong` promptly, **at any time**, even while busy with a request (read stdin on its own thread) |
//! | `cancel` | abandon the request in flight; the worker still ends that reply (with `error{code:"cancelled"}` or `done`) |
//! | `stop` | finish up and exit 0 (closing stdin means the same) |
//! | anything else | a request, e.g. `transcribe`, `generate`, `echo` |
//!
//! Messages a worker sends:
//!
//! | type | meaning |
//! |---|---|
//! | `info` | `{name, pid, version?}`; sent unasked once the worker is ready (models loaded), and in answer to `describe` |
//! | `pong` | answer to `ping` |
//! | `done` | ends a reply successfully; its data (often `{}`) carries totals if any |
//! | `error` | `{text, code}`; ends a reply with a failure, or before `info`: the worker could not start |
//! | anything else | a reply frame of the request in flight, e.g. `transcript`, `token`, `audio-chunk` |
//!
//! # How a reply ends
//!
//! The daemon sends one request at a time per worker. Every request gets a
//! reply stream of zero or more reply frames followed by exactly one terminal
//! frame, `done` or `error` (see [`Frame::is_terminal`]). `pong` frames may
//! be interleaved anywhere and belong to no reply.
//!
//! The data of one worker's requests and replies lives in a module named
//! after it: [`llm`] for the language model worker.
//!
//! [Wyoming protocol]: https://github.com/rhasspy/wyoming

pub mod llm;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The `version` written into every header.
pub const PROTOCOL_VERSION: &str = "1.0.0";
/// Longest accepted header line, newline included.
pub const MAX_HEADER_LEN: usize = 64 * 1024;
/// Largest accepted JSON data section.
pub const MAX_DATA_LEN: usize = 16 * 1024 * 1024;
/// Largest accepted binary payload.
pub const MAX_PAYLOAD_LEN: usize = 64 * 1024 * 1024;

/// Frame types of the voxd worker vocabulary (see the crate docs).
pub mod kind {
    /// Daemon → worker: send an `info` frame.
    pub const DESCRIBE: &str = "describe";
    /// Worker → daemon: who the worker is; also "ready" at start.
    pub const INFO: &str = "info";
    /// Daemon → worker: health check.
    pub const PING: &str = "ping";
    /// Worker → daemon: answer to `ping`.
    pub const PONG: &str = "pong";
    /// Daemon → worker: abandon the request in flight.
    pub const CANCEL: &str = "cancel";
    /// Daemon → worker: exit cleanly.
    pub const STOP: &str = "stop";
    /// Worker → daemon: the reply ended successfully.
    pub const DONE: &str = "done";
    /// Worker → daemon: `{text, code}`; the reply ended with a failure.
    pub const ERROR: &str = "error";
}

/// One framed message: a Wyoming event.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The Wyoming `type`, e.g. `ping` or `audio-chunk`.
    pub kind: String,
    /// JSON data: an object, or `Null` for none (an empty object is written
    /// as no data and reads back as `Null`).
    pub data: Value,
    /// Binary payload; empty for none.
    pub payload: Vec<u8>,
}

impl Frame {
    /// A frame with no data and no payload.
    pub fn new(kind: impl Into<String>) -> Frame {
        Frame {
            kind: kind.into(),
            data: Value::Null,
            payload: Vec::new(),
        }
    }

    /// Sets the JSON data (an object, or `Null`).
    pub fn with_data(mut self, data: Value) -> Frame {
        self.data = data;
        self
    }

    /// Sets the binary payload.
    pub fn with_payload(mut self, payload: Vec<u8>) -> Frame {
        self.payload = payload;
        self
    }

    /// An `error{text, code}` frame.
    pub fn error(code: &str, text: impl Into<String>) -> Frame {
        Frame::new(kind::ERROR).with_data(serde_json::json!({ "text": text.into(), "code": code }))
    }

    /// Whether this frame ends a reply (`done` or `error`).
    pub fn is_terminal(&self) -> bool {
        self.kind == kind::DONE || self.kind == kind::ERROR
    }

    /// A string field of the data object, if present.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("i/o error on the frame stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("header line longer than {limit} bytes")]
    HeaderTooLong { limit: usize },
    #[error("header line is not valid UTF-8")]
    HeaderNotUtf8,
    #[error("invalid header line {line:?}: {source}")]
    BadHeader {
        line: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("data_length {len} exceeds the limit of {limit} bytes")]
    DataTooLong { len: u64, limit: usize },
    #[error("payload_length {len} exceeds the limit of {limit} bytes")]
    PayloadTooLong { len: u64, limit: usize },
    #[error("stream ended inside a frame's {part}: expected {expected} bytes, got {got}")]
    Truncated {
        part: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("invalid JSON data in `{kind}` frame: {source}")]
    BadData {
        kind: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("data of `{kind}` frame is not a JSON object")]
    DataNotObject { kind: String },
}

#[derive(Serialize, Deserialize)]
struct Header {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_length: Option<u64>,
}

/// The largest header line, data and payload a reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest header line, newline included.
    pub header: usize,
    /// Largest JSON data section.
    pub data: usize,
    /// Largest binary payload.
    pub payload: usize,
}

impl Default for Limits {
    /// [`MAX_HEADER_LEN`], [`MAX_DATA_LEN`] and [`MAX_PAYLOAD_LEN`].
    fn default() -> Limits {
        Limits {
            header: MAX_HEADER_LEN,
            data: MAX_DATA_LEN,
            payload: MAX_PAYLOAD_LEN,
        }
    }
}

/// Reads one frame within the default [`Limits`]. `Ok(None)` means the
/// stream ended cleanly at a frame boundary; an end anywhere else is
/// [`ProtoError::Truncated`].
pub async fn read_frame<R>(reader: &mut R) -> Result<Option<Frame>, ProtoError>
where
    R: AsyncBufRead + Unpin,
{
    read_frame_within(reader, &Limits::default()).await
}

/// [`read_frame`] within `limits` (a server facing untrusted peers sets
/// its own).
pub async fn read_frame_within<R>(
    reader: &mut R,
    limits: &Limits,
) -> Result<Option<Frame>, ProtoError>
where
    R: AsyncBufRead + Unpin,
{
    let mut line = Vec::new();
    let limit = limits.header as u64;
    let n = (&mut *reader)
        .take(limit)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if n as u64 >= limit {
            return Err(ProtoError::HeaderTooLong {
                limit: limits.header,
            });
        }
        return Err(ProtoError::Truncated {
            part: "header line",
            expected: n + 1,
            got: n,
        });
    }
    let line = String::from_utf8(line).map_err(|_| ProtoError::HeaderNotUtf8)?;
    let header: Header =
        serde_json::from_str(line.trim_end()).map_err(|source| ProtoError::BadHeader {
            line: line.trim_end().to_owned(),
            source,
        })?;

    let data_len = header.data_length.unwrap_or(0);
    if data_len > limits.data as u64 {
        return Err(ProtoError::DataTooLong {
            len: data_len,
            limit: limits.data,
        });
    }
    let payload_len = header.payload_length.unwrap_or(0);
    if payload_len > limits.payload as u64 {
        return Err(ProtoError::PayloadTooLong {
            len: payload_len,
            limit: limits.payload,
        });
    }

    let mut data = header.data.map(Value::Object).unwrap_or(Value::Null);
    if data_len > 0 {
        let bytes = read_exact_or_truncated(reader, data_len as usize, "data").await?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|source| ProtoError::BadData {
                kind: header.kind.clone(),
                source,
            })?;
        let Value::Object(more) = value else {
            return Err(ProtoError::DataNotObject { kind: header.kind });
        };
        match &mut data {
            Value::Object(inline) => inline.extend(more),
            _ => data = Value::Object(more),
        }
    }
    let payload = if payload_len > 0 {
        read_exact_or_truncated(reader, payload_len as usize, "payload").await?
    } else {
        Vec::new()
    };
    Ok(Some(Frame {
        kind: header.kind,
        data,
        payload,
    }))
}

async fn read_exact_or_truncated<R>(
    reader: &mut R,
    len: usize,
    part: &'static str,
) -> Result<Vec<u8>, ProtoError>
where
    R: AsyncBufRead + Unpin,
{
    let mut buf = Vec::with_capacity(len.min(1 << 20));
    let got = (&mut *reader)
        .take(len as u64)
        .read_to_end(&mut buf)
        .await?;
    if got < len {
        return Err(ProtoError::Truncated {
            part,
            expected: len,
            got,
        });
    }
    Ok(buf)
}

/// Writes one frame and flushes. `data` must be a JSON object or `Null`.
pub async fn write_frame<W>(writer: &mut W, frame: &Frame) -> Result<(), ProtoError>
where
    W: AsyncWrite + Unpin,
{
    let data = match &frame.data {
        Value::Null => Vec::new(),
        Value::Object(map) if map.is_empty() => Vec::new(),
        Value::Object(_) => {
            serde_json::to_vec(&frame.data).map_err(|source| ProtoError::BadData {
                kind: frame.kind.clone(),
                source,
            })?
        }
        _ => {
            return Err(ProtoError::DataNotObject {
                kind: frame.kind.clone(),
            })
        }
    };
    if data.len() > MAX_DATA_LEN {
        return Err(ProtoError::DataTooLong {
            len: data.len() as u64,
            limit: MAX_DATA_LEN,
        });
    }
    if frame.payload.len() > MAX_PAYLOAD_LEN {
        return Err(ProtoError::PayloadTooLong {
            len: frame.payload.len() as u64,
            limit: MAX_PAYLOAD_LEN,
        });
    }
    let header = Header {
        kind: frame.kind.clone(),
        version: Some(PROTOCOL_VERSION.to_owned()),
        data: None,
        data_length: (!data.is_empty()).then_some(data.len() as u64),
        payload_length: (!frame.payload.is_empty()).then_some(frame.payload.len() as u64),
    };
    let mut line = serde_json::to_vec(&header).map_err(|source| ProtoError::BadHeader {
        line: frame.kind.clone(),
        source,
    })?;
    line.push(b'\n');
    if line.len() > MAX_HEADER_LEN {
        return Err(ProtoError::HeaderTooLong {
            limit: MAX_HEADER_LEN,
        });
    }
    writer.write_all(&line).await?;
    writer.write_all(&data).await?;
    writer.write_all(&frame.payload).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::io::BufReader;

    async fn encode(frames: &[Frame]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            write_frame(&mut out, f).await.expect("write");
        }
        out
    }

    async fn decode_all(bytes: &[u8]) -> Result<Vec<Frame>, ProtoError> {
        let mut r = BufReader::new(bytes);
        let mut frames = Vec::new();
        while let Some(f) = read_frame(&mut r).await? {
            frames.push(f);
        }
        Ok(frames)
    }

    #[tokio::test]
    async fn round_trip_with_and_without_data_and_payload() {
        let frames = vec![
            Frame::new("ping"),
            Frame::new("transcript").with_data(json!({"text": "héllo\nworld"})),
            Frame::new("audio-chunk")
                .with_data(json!({"rate": 16000, "width": 2, "channels": 1}))
                .with_payload((0..=255u8).cycle().take(70_000).collect()),
            Frame::new("raw").with_payload(vec![b'\n'; 3]),
        ];
        let bytes = encode(&frames).await;
        assert_eq!(decode_all(&bytes).await.expect("decode"), frames);
    }

    #[tokio::test]
    async fn header_is_wyoming() {
        let f = Frame::new("audio-chunk")
            .with_data(json!({"rate": 16000}))
            .with_payload(vec![1, 2, 3, 4]);
        let bytes = encode(&[f]).await;
        let nl = bytes.iter().position(|&b| b == b'\n').expect("newline");
        let header: Value = serde_json::from_slice(&bytes[..nl]).expect("json header");
        assert_eq!(header["type"], "audio-chunk");
        assert_eq!(header["version"], PROTOCOL_VERSION);
        assert_eq!(header["data_length"], 14);
        assert_eq!(header["payload_length"], 4);
        assert_eq!(&bytes[nl + 1..nl + 15], br#"{"rate":16000}"#.as_slice());
        assert_eq!(bytes.len(), nl + 1 + 14 + 4);
    }

    #[tokio::test]
    async fn reads_wyoming_peer_without_version_and_with_inline_data() {
        let bytes = b"{\"type\":\"detect\",\"data\":{\"names\":[\"x\"]}}\n";
        let frames = decode_all(bytes).await.expect("decode");
        assert_eq!(frames[0].kind, "detect");
        assert_eq!(frames[0].data, json!({"names": ["x"]}));
    }

    #[tokio::test]
    async fn clean_eof_is_none() {
        let mut r = BufReader::new(&b""[..]);
        assert!(read_frame(&mut r).await.expect("eof").is_none());
    }

    #[tokio::test]
    async fn truncated_frames() {
        let full = encode(&[Frame::new("x")
            .with_data(json!({"a": 1}))
            .with_payload(vec![9; 10])])
        .await;
        let nl = full.iter().position(|&b| b == b'\n').expect("newline");
        // Inside the header line.
        let err = decode_all(&full[..nl]).await.expect_err("truncated");
        assert!(
            matches!(
                err,
                ProtoError::Truncated {
                    part: "header line",
                    ..
                }
            ),
            "{err}"
        );
        // Inside the data.
        let err = decode_all(&full[..nl + 3]).await.expect_err("truncated");
        assert!(
            matches!(
                err,
                ProtoError::Truncated {
                    part: "data",
                    expected: 7,
                    got: 2
                }
            ),
            "{err}"
        );
        // Inside the payload.
        let err = decode_all(&full[..full.len() - 1])
            .await
            .expect_err("truncated");
        assert!(
            matches!(
                err,
                ProtoError::Truncated {
                    part: "payload",
                    expected: 10,
                    got: 9
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn limits() {
        let long = vec![b' '; MAX_HEADER_LEN + 10];
        let err = decode_all(&long).await.expect_err("too long");
        assert!(matches!(err, ProtoError::HeaderTooLong { .. }), "{err}");

        let big_data = format!("{{\"type\":\"x\",\"data_length\":{}}}\n", MAX_DATA_LEN + 1);
        let err = decode_all(big_data.as_bytes())
            .await
            .expect_err("data limit");
        assert!(matches!(err, ProtoError::DataTooLong { .. }), "{err}");

        let big_payload = format!(
            "{{\"type\":\"x\",\"payload_length\":{}}}\n",
            MAX_PAYLOAD_LEN + 1
        );
        let err = decode_all(big_payload.as_bytes())
            .await
            .expect_err("payload limit");
        assert!(matches!(err, ProtoError::PayloadTooLong { .. }), "{err}");

        let mut out = Vec::new();
        let frame = Frame::new("x").with_payload(vec![0; MAX_PAYLOAD_LEN + 1]);
        let err = write_frame(&mut out, &frame)
            .await
            .expect_err("write limit");
        assert!(matches!(err, ProtoError::PayloadTooLong { .. }), "{err}");
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn limits_of_the_callers_choice() {
        let small = Limits {
            header: 32,
            data: 8,
            payload: 4,
        };
        let read = |bytes: &'static [u8]| async move {
            read_frame_within(&mut BufReader::new(bytes), &small).await
        };
        let err = read(b"{\"type\":\"a-rather-long-type-name-here\"}\n")
            .await
            .expect_err("header");
        assert!(
            matches!(err, ProtoError::HeaderTooLong { limit: 32 }),
            "{err}"
        );
        let err = read(b"{\"type\":\"x\",\"data_length\":9}\n")
            .await
            .expect_err("data");
        assert!(
            matches!(err, ProtoError::DataTooLong { len: 9, limit: 8 }),
            "{err}"
        );
        let err = read(b"{\"type\":\"x\",\"payload_length\":5}\n")
            .await
            .expect_err("payload");
        assert!(
            matches!(err, ProtoError::PayloadTooLong { len: 5, limit: 4 }),
            "{err}"
        );
        let ok = read(b"{\"type\":\"x\",\"payload_length\":4}\nabcd").await;
        assert_eq!(ok.expect("within").expect("a frame").payload, b"abcd");
    }

    #[tokio::test]
    async fn garbage() {
        let err = decode_all(b"hello there\n").await.expect_err("garbage");
        assert!(matches!(err, ProtoError::BadHeader { .. }), "{err}");
        let err = decode_all(b"{\"version\":\"1\"}\n")
            .await
            .expect_err("no type");
        assert!(matches!(err, ProtoError::BadHeader { .. }), "{err}");
        let err = decode_all(b"\xff\xfe\n").await.expect_err("not utf8");
        assert!(matches!(err, ProtoError::HeaderNotUtf8), "{err}");
        let err = decode_all(b"{\"type\":\"x\",\"data_length\":3}\nabc")
            .await
            .expect_err("bad data");
        assert!(matches!(err, ProtoError::BadData { .. }), "{err}");
        let err = decode_all(b"{\"type\":\"x\",\"data_length\":3}\n[1]")
            .await
            .expect_err("not object");
        assert!(matches!(err, ProtoError::DataNotObject { .. }), "{err}");
        let mut out = Vec::new();
        let err = write_frame(&mut out, &Frame::new("x").with_data(json!([1])))
            .await
            .expect_err("array data");
        assert!(matches!(err, ProtoError::DataNotObject { .. }), "{err}");
    }

    #[test]
    fn terminal_frames() {
        assert!(Frame::new(kind::DONE).is_terminal());
        assert!(Frame::error("bad", "oops").is_terminal());
        assert!(!Frame::new(kind::PONG).is_terminal());
        assert_eq!(Frame::error("bad", "oops").str_field("code"), Some("bad"));
    }
}
