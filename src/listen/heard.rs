//! What the listener hears, for the voice loop: a typed channel beside the
//! observers' events. It never drops anything (unbounded, and only the
//! transcripts and wake words of speech go on it), so an utterance cannot
//! be lost however busy the event bus is.

use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::error::ErrorKind;

/// Something the listener heard.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// A wake word or wake phrase (`wake.detected`).
    Wake,
    /// The speaker paused: what the utterance says so far
    /// (`transcript.early`); the final transcript confirms or replaces it.
    Early { utterance: u64, text: String },
    /// The utterance ended (`transcript.final`). `early`: the text is the
    /// early transcript's, confirmed.
    Final {
        utterance: u64,
        text: String,
        early: bool,
        /// How long its transcription took.
        decode_ms: u64,
    },
    /// The early transcript of `utterance` is void (`transcript.withdrawn`).
    Withdrawn { utterance: u64 },
    /// `utterance` could not be transcribed (`listen.error`).
    Failed {
        utterance: u64,
        kind: ErrorKind,
        message: String,
    },
}

/// The sending side, held by the listening thread and the transcriber;
/// it sends only while someone takes what is heard ([`Ear::open`]).
#[derive(Debug, Default)]
pub struct Ear {
    tx: Mutex<Option<mpsc::UnboundedSender<Heard>>>,
}

impl Ear {
    /// A new channel of what is heard from now on; a receiver opened
    /// before stops receiving.
    pub fn open(&self) -> mpsc::UnboundedReceiver<Heard> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.tx.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        rx
    }

    /// Hands `heard` to the receiver, if there is one.
    pub fn send(&self, heard: Heard) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(heard);
        }
    }
}
