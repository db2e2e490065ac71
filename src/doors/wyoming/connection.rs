//! One Wyoming connection: events are read (within the [`Limits`] and the
//! idle timeout) and dispatched by type; replies go out through one writer
//! task, so that a streaming request's audio flows while its text is still
//! arriving. The first error is sent as `error{text, code}` and ends the
//! connection.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voxd_proto::{kind as proto_kind, read_frame_within, write_frame, Frame};

use super::asr::Transcription;
use super::handle::Question;
use super::tts::{Stream, Synthesize};
use super::wake::Detection;
use super::{error_event, info, kind, Limits, WyomingError};
use crate::api::ApiError;
use crate::assistant::Assistant;
use crate::doors::commands::counted;

/// Outgoing events waiting for the writer.
const OUTGOING: usize = 64;

/// Audio being received, and what it is for.
enum Audio {
    Transcribe(Transcription),
    Detect(Box<Detection>),
}

/// What the next `audio-start` begins.
#[derive(Default)]
enum Next {
    /// Speech to text (also without a `transcribe` first, as
    /// wyoming-faster-whisper does).
    #[default]
    Transcribe,
    /// `detect{names}`: wake words (all installed ones when empty).
    Detect(Vec<String>),
}

/// The peer the events go to, and the connection's state.
pub(super) struct Connection {
    pub(super) assistant: Arc<Assistant>,
    pub(super) limits: Arc<Limits>,
    out: mpsc::Sender<Frame>,
    /// Cancelled when the connection ends: its requests stop.
    pub(super) closed: CancellationToken,
    next: Next,
    language: Option<String>,
    audio: Option<Audio>,
    stream: Option<Stream>,
}

/// Serves one connection until the client leaves, an error, or shutdown.
pub(super) async fn run<S>(stream: S, assistant: Arc<Assistant>, limits: Arc<Limits>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(stream);
    let (out, rx) = mpsc::channel(OUTGOING);
    let writer = tokio::spawn(write_events(write, rx));
    assistant.metrics.wyoming.opened();
    assistant.metrics.traffic.opened();
    let mut conn = Connection {
        assistant: assistant.clone(),
        limits,
        out,
        closed: CancellationToken::new(),
        next: Next::default(),
        language: None,
        audio: None,
        stream: None,
    };
    let _stop = conn.closed.clone().drop_guard();
    let mut reader = BufReader::new(read);
    if let Err(e) = conn.serve(&mut reader).await {
        tracing::debug!(error = %e, code = e.code(), "wyoming: connection ends with an error");
        conn.send(error_event(&e)).await;
    }
    drop(conn);
    let _ = writer.await;
    assistant.metrics.traffic.closed();
    assistant.metrics.wyoming.closed();
}

/// Writes the events of `rx` until it closes or the client is gone.
async fn write_events<W: AsyncWrite + Unpin>(mut writer: W, mut rx: mpsc::Receiver<Frame>) {
    while let Some(frame) = rx.recv().await {
        if let Err(e) = write_frame(&mut writer, &frame).await {
            tracing::debug!(error = %e, "wyoming: the client went away");
            return;
        }
    }
    let _ = writer.shutdown().await;
}

impl Connection {
    /// Queues `frame` for the client (dropped if it has gone).
    pub(super) async fn send(&self, frame: Frame) {
        let _ = self.out.send(frame).await;
    }

    /// A sender of events to the client, for a task that streams them.
    pub(super) fn sender(&self) -> mpsc::Sender<Frame> {
        self.out.clone()
    }

    /// Reads and answers events until the client leaves.
    async fn serve<R>(&mut self, reader: &mut R) -> Result<(), WyomingError>
    where
        R: tokio::io::AsyncBufRead + Unpin,
    {
        let shutdown = self.assistant.shutdown.clone();
        loop {
            let busy = self.audio.is_some() || self.stream.is_some();
            let read = tokio::select! {
                _ = shutdown.cancelled(), if !busy => return Ok(()),
                read = tokio::time::timeout(
                    self.limits.idle,
                    read_frame_within(reader, &self.limits.frame),
                ) => read,
            };
            let frame = match read {
                Err(_) => return Err(WyomingError::Idle(self.limits.idle.as_secs())),
                Ok(read) => match read? {
                    Some(frame) => frame,
                    None => return Ok(()),
                },
            };
            tracing::trace!(kind = %frame.kind, "wyoming: event");
            self.dispatch(frame).await?;
        }
    }

    async fn dispatch(&mut self, frame: Frame) -> Result<(), WyomingError> {
        match frame.kind.as_str() {
            proto_kind::PING => {
                let pong = Frame::new(proto_kind::PONG)
                    .with_data(json!({ "text": frame.str_field("text") }));
                self.send(pong).await;
            }
            proto_kind::DESCRIBE => {
                self.count(&frame);
                let config = self.assistant.config.config.clone();
                let info = tokio::task::spawn_blocking(move || info::info(&config))
                    .await
                    .map_err(ApiError::internal)?;
                self.send(info).await;
            }
            kind::SELECT_PROGRAM => {
                // voxd has one program per service: any of its names
                // selects what is served anyway.
                let name: String = data(&frame, "name")?;
                if !info::PROGRAMS.contains(&name.as_str()) {
                    return Err(WyomingError::BadData {
                        kind: frame.kind,
                        message: format!(
                            "no program {name:?}; voxd serves {}",
                            info::PROGRAMS.join(", ")
                        ),
                    });
                }
            }
            kind::TRANSCRIBE => {
                self.count(&frame);
                self.language = frame.str_field("language").map(str::to_owned);
                self.next = Next::Transcribe;
            }
            kind::DETECT => {
                self.count(&frame);
                let names: Option<Vec<String>> = data(&frame, "names")?;
                self.next = Next::Detect(names.unwrap_or_default());
            }
            kind::AUDIO_START => {
                let max = self.limits.max_audio_secs;
                self.audio = Some(match std::mem::take(&mut self.next) {
                    Next::Transcribe => {
                        Audio::Transcribe(Transcription::start(&frame, self.language.take(), max)?)
                    }
                    Next::Detect(names) => Audio::Detect(Box::new(
                        Detection::start(&frame, &names, &self.assistant).await?,
                    )),
                });
            }
            kind::AUDIO_CHUNK => match &mut self.audio {
                None => return Err(WyomingError::AudioNotStarted(frame.kind)),
                Some(Audio::Transcribe(t)) => t.chunk(&frame)?,
                Some(Audio::Detect(d)) => {
                    for detection in d.chunk(&frame).await? {
                        self.send(detection).await;
                    }
                }
            },
            kind::AUDIO_STOP => match self.audio.take() {
                None => return Err(WyomingError::AudioNotStarted(frame.kind)),
                Some(Audio::Transcribe(t)) => {
                    let audio = t.audio()?;
                    let assistant = self.assistant.clone();
                    let transcript = counted(
                        &assistant,
                        "wyoming.transcribe",
                        t.finish(audio, &assistant),
                    )
                    .await?;
                    self.send(transcript).await;
                }
                Some(Audio::Detect(d)) => {
                    for event in d.finish().await? {
                        self.send(event).await;
                    }
                }
            },
            kind::SYNTHESIZE if self.stream.is_some() => {
                // Home Assistant repeats the whole text for servers
                // without streaming: speaking it would say it all twice.
                tracing::debug!("wyoming: ignoring synthesize inside a synthesize stream");
            }
            kind::SYNTHESIZE => {
                self.count(&frame);
                let synthesize = Synthesize::parse(self, &frame).await?;
                let assistant = self.assistant.clone();
                counted(&assistant, "wyoming.synthesize", synthesize.speak(self)).await?;
            }
            kind::SYNTHESIZE_START => {
                self.count(&frame);
                if self.stream.is_some() {
                    return Err(WyomingError::BadData {
                        kind: frame.kind,
                        message: "a synthesize stream is already open".into(),
                    });
                }
                self.stream = Some(Stream::start(self, &frame).await?);
            }
            kind::SYNTHESIZE_CHUNK => {
                let stream = self
                    .stream
                    .as_mut()
                    .ok_or_else(|| WyomingError::NotStreaming(frame.kind.clone()))?;
                let text: String = data(&frame, "text")?;
                stream.push(&text)?;
            }
            kind::SYNTHESIZE_STOP => {
                let stream = self
                    .stream
                    .take()
                    .ok_or_else(|| WyomingError::NotStreaming(frame.kind.clone()))?;
                let assistant = self.assistant.clone();
                counted(&assistant, "wyoming.synthesize_stream", stream.finish()).await?;
                self.send(Frame::new(kind::SYNTHESIZE_STOPPED)).await;
            }
            kind::TRANSCRIPT => {
                self.count(&frame);
                let question = Question::parse(&frame)?;
                let assistant = self.assistant.clone();
                counted(&assistant, "wyoming.handle", question.answer(self)).await?;
            }
            _ => return Err(WyomingError::UnknownEvent(frame.kind)),
        }
        Ok(())
    }

    /// Counts a request of `frame`'s type for `status`.
    fn count(&self, frame: &Frame) {
        self.assistant.metrics.wyoming.request(&frame.kind);
    }
}

/// Field `key` of `frame`'s data as a `T` (`null` when absent).
pub(super) fn data<T: DeserializeOwned>(frame: &Frame, key: &str) -> Result<T, WyomingError> {
    let value = frame.data.get(key).cloned().unwrap_or_default();
    serde_json::from_value(value).map_err(|e| WyomingError::BadData {
        kind: frame.kind.clone(),
        message: format!("`{key}`: {e}"),
    })
}
