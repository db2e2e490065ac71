//! Text to speech. `synthesize{text, voice{name, speaker}}` is answered
//! with `audio-start`, `audio-chunk`s of at most
//! [`super::audio::CHUNK_SAMPLES`] samples and `audio-stop`. A stream
//! (`synthesize-start`, `synthesize-chunk`s, `synthesize-stop`) is spoken
//! sentence by sentence as each is complete: every sentence's audio goes
//! out as its own `audio-start` … `audio-stop`, all in the voice's one
//! format, then `synthesize-stopped`. The speech comes from the daemon's
//! [`crate::speak::Speaker`] into this connection's own channel
//! ([`Target::Channel`]); the daemon's speaker output is not used.

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use voxd_proto::Frame;

use super::audio;
use super::connection::{data, Connection};
use super::WyomingError;
use crate::api::ApiError;
use crate::speak::{self, Pcm, SayOptions, Target, Utterance};

/// `voice` of `synthesize` and `synthesize-start`.
#[derive(Debug, Default, Deserialize)]
struct Voice {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    speaker: Option<String>,
}

/// The speech options for the voice `frame` names (none: the configured one).
async fn options(
    conn: &Connection,
    frame: &Frame,
    target: Target,
) -> Result<SayOptions, WyomingError> {
    let voice: Option<Voice> = data(frame, "voice")?;
    let voice = voice.unwrap_or_default();
    if let Some(speaker) = &voice.speaker {
        tracing::debug!(%speaker, "wyoming: voxd speaks with the voice's default speaker");
    }
    let voice = match voice.name.filter(|n| !n.is_empty()) {
        None => String::new(),
        Some(name) => {
            // The name `info` gave the configured voice is that voice,
            // whether `tts.voice` is a store id or a path.
            let models = conn.assistant.config.config.models.clone();
            let default = tokio::task::spawn_blocking(move || speak::describe_voice("", &models))
                .await
                .map_err(ApiError::internal)?;
            if default.is_ok_and(|v| v.name == name) {
                String::new()
            } else {
                name
            }
        }
    };
    Ok(SayOptions {
        voice,
        target,
        hold: None,
    })
}

/// Sends `frames` to the client; `false` once it has gone.
async fn send(out: &mpsc::Sender<Frame>, frames: impl IntoIterator<Item = Frame>) -> bool {
    for frame in frames {
        if out.send(frame).await.is_err() {
            return false;
        }
    }
    true
}

/// A whole `synthesize`.
pub struct Synthesize {
    text: String,
    options: SayOptions,
    audio: mpsc::UnboundedReceiver<Pcm>,
}

impl Synthesize {
    /// Reads `synthesize`.
    pub async fn parse(conn: &Connection, frame: &Frame) -> Result<Synthesize, WyomingError> {
        let text: String = data(frame, "text")?;
        let (tx, audio) = mpsc::unbounded_channel();
        let options = options(conn, frame, Target::Channel(tx)).await?;
        Ok(Synthesize {
            text,
            options,
            audio,
        })
    }

    /// Speaks the text to the client as one `audio-start` … `audio-stop`.
    pub async fn speak(self, conn: &Connection) -> Result<(), ApiError> {
        let out = conn.sender();
        let mut audio = self.audio;
        let forward = async move {
            let mut at = 0;
            let mut started = false;
            while let Some(pcm) = audio.recv().await {
                let start = (!started).then(|| audio::start(pcm.rate));
                started = true;
                if !send(&out, start.into_iter().chain(audio::chunks(&pcm, &mut at))).await {
                    return; // the client left: dropping `audio` stops the speech
                }
            }
            if started {
                let _ = out.send(audio::stop()).await;
            }
        };
        let said = conn.assistant.speaker.say(&self.text, self.options);
        let (said, ()) = tokio::join!(said, forward);
        said?;
        Ok(())
    }
}

/// An open `synthesize-start` … `synthesize-stop` stream.
pub struct Stream {
    utterance: Utterance,
    forward: JoinHandle<()>,
}

impl Stream {
    /// Opens the stream on `synthesize-start`.
    pub async fn start(conn: &Connection, frame: &Frame) -> Result<Stream, WyomingError> {
        let (tx, mut audio) = mpsc::unbounded_channel::<Pcm>();
        let options = options(conn, frame, Target::Channel(tx)).await?;
        let utterance = conn
            .assistant
            .speaker
            .open(options)
            .map_err(ApiError::from)?;
        let out = conn.sender();
        let forward = tokio::spawn(async move {
            let mut at = 0;
            while let Some(pcm) = audio.recv().await {
                let sentence = std::iter::once(audio::start(pcm.rate))
                    .chain(audio::chunks(&pcm, &mut at))
                    .chain([audio::stop()]);
                if !send(&out, sentence).await {
                    return; // the client left: dropping `audio` stops the speech
                }
            }
        });
        Ok(Stream { utterance, forward })
    }

    /// Adds a `synthesize-chunk`'s text; complete sentences are spoken now.
    pub fn push(&mut self, text: &str) -> Result<(), WyomingError> {
        self.utterance.push(text).map_err(ApiError::from)?;
        Ok(())
    }

    /// On `synthesize-stop`: speaks the rest and waits until every
    /// sentence's audio is out.
    pub async fn finish(self) -> Result<(), ApiError> {
        let said = self.utterance.finish().await;
        let _ = self.forward.await;
        match said {
            // A stream with no words says nothing, and that is no error.
            Ok(_) | Err(speak::SpeakError::NothingToSay) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
