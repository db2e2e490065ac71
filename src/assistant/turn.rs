//! One turn ([`Assistant::respond`]): route the utterance, produce the
//! reply (intent or `ask`), speak it while it is written, and time each
//! stage.

use std::path::Path;
use std::time::Instant;

use futures::future::{BoxFuture, FutureExt};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::commands::{Matched, Ran};
use super::intent::{self, Intent};
use super::{AskEvent, AskReply, AskRequest, Assistant, AssistantError, AssistantEvent};
use crate::llm::GenerateStats;
use crate::rag::answer::{Citation, Flag, Used};
use crate::rag::DocKind;
use crate::speak::{FirstAudio, Hold, SayOptions, SayOutcome, SpeakError, Utterance, Verdict};

/// Longest part of a note read aloud by "read my last note", in bytes.
const NOTE_READ_BYTES: usize = 600;

/// Something the user said (or typed), to answer.
pub struct Request {
    pub text: String,
    /// Speak the reply (through the daemon's audio output).
    pub speak: bool,
    /// Conversation session for `ask`.
    pub session: Option<String>,
    /// How long speech to text took, when the text was transcribed.
    pub stt_ms: Option<u64>,
    /// Cancelled to stop the turn (barge-in).
    pub cancel: CancellationToken,
    /// A speculative turn: the text may still be withdrawn, so its speech
    /// is held until confirmed, and its `ask` is stored in the session
    /// only then.
    pub hold: Option<Hold>,
    /// Where the reply's text goes as it is written, when the caller
    /// streams it (an intent's reply comes as one token).
    pub stream: Option<mpsc::UnboundedSender<AskEvent>>,
}

/// The answer to a turn.
#[derive(Debug, Clone, Serialize)]
pub struct Reply {
    pub text: String,
    /// Which [`Intent`] answered, or `command` (a user command).
    pub intent: &'static str,
    /// With `command`: which command ran, with which slots, and how it went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Ran>,
    /// Where the answer comes from.
    pub citations: Vec<Citation>,
    /// With `question`: how `ask` made the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ask: Option<Said>,
    /// What was spoken, when the reply was spoken.
    pub spoken: Option<SayOutcome>,
    pub interrupted: bool,
    pub timings: Timings,
}

/// How `ask` made a turn's answer: its reply less the text and citations
/// (which the turn's [`Reply`] carries).
#[derive(Debug, Clone, Serialize)]
pub struct Said {
    pub mode: Used,
    pub flags: Vec<Flag>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unsupported: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<GenerateStats>,
}

impl Said {
    /// The reply's text, its citations, and how it was made.
    fn from_reply(reply: AskReply) -> (String, Vec<Citation>, Said) {
        let AskReply {
            answer,
            best_score,
            llm,
            ..
        } = reply;
        let said = Said {
            mode: answer.mode,
            flags: answer.flags,
            unsupported: answer.unsupported,
            best_score,
            llm,
        };
        (answer.text, answer.citations, said)
    }
}

/// Where a turn's time went, in milliseconds from the moment its text was
/// known (the transcript), except `stt_ms`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// End of speech to transcript (voice turns only).
    pub stt_ms: Option<u64>,
    /// The first piece of answer text.
    pub first_token_ms: Option<u64>,
    /// The first sentence's audio queued for playback.
    pub first_audio_ms: Option<u64>,
    /// Synthesis time of that first sentence (included in `first_audio_ms`).
    pub first_synth_ms: Option<u64>,
    /// A speculative turn: how long that first sentence waited for the end
    /// of the question to be confirmed (included in `first_audio_ms`).
    pub held_ms: Option<u64>,
    /// The whole turn, speech included.
    pub total_ms: u64,
}

impl Assistant {
    /// Runs one turn and publishes `assistant.reply`: a built-in intent,
    /// else a user command, else `ask`.
    pub async fn respond(&self, request: Request) -> Result<Reply, AssistantError> {
        let started = Instant::now();
        let intent = intent::classify(&request.text);
        let command = match intent {
            Intent::Question => self.commands.find(&request.text),
            _ => None,
        };
        // "stop" stops speech, its own included: it says nothing.
        let speak = request.speak && intent != Intent::Stop;
        let mut speech = Speech::open(self, speak, request.hold.clone())?;
        let mut timings = Timings {
            stt_ms: request.stt_ms,
            ..Timings::default()
        };
        let mut ran = None;
        let (text, citations, said) = match (intent, command) {
            (Intent::Stop, _) => {
                self.speaker.stop();
                (String::new(), Vec::new(), None)
            }
            (Intent::Time, _) => (now_sentence(), Vec::new(), None),
            (Intent::LatestNote, _) => self.latest_note().await?,
            (Intent::LatestPicture, _) => self.latest_picture().await?,
            (Intent::Question, Some(matched)) => {
                let (text, done) = self.run_command(&request, &matched).await?;
                ran = Some(done);
                (text, Vec::new(), None)
            }
            (Intent::Question, None) => {
                let reply = self
                    .ask_aloud(&request, &mut speech, &mut timings, started)
                    .instrument(tracing::debug_span!(
                        "ask",
                        speculative = request.hold.is_some()
                    ))
                    .await?;
                let (text, citations, said) = Said::from_reply(reply);
                (text, citations, Some(said))
            }
        };
        let name = match ran {
            Some(_) => "command",
            None => intent.name(),
        };
        if said.is_none() {
            timings.first_token_ms = Some(ms(started));
            if let Some(stream) = &request.stream {
                let _ = stream.send(AskEvent::Token(text.clone()));
            }
            speech.push(&text)?;
        }
        let (spoken, ()) = async {
            tokio::join!(
                speech.finish(started, &mut timings),
                self.remember_when_confirmed(&request, &text, said.is_some())
            )
        }
        .instrument(tracing::debug_span!("speak", intent = name))
        .await;
        let spoken = spoken?;
        timings.total_ms = ms(started);
        if let Some(hold) = &request.hold {
            if hold.verdict() != Verdict::Confirmed {
                tracing::debug!("a speculative turn was withdrawn");
                return Err(AssistantError::Withdrawn);
            }
        }
        let reply = Reply {
            interrupted: request.cancel.is_cancelled()
                || spoken.as_ref().is_some_and(|s| s.interrupted),
            text,
            intent: name,
            command: ran,
            citations,
            ask: said,
            spoken,
            timings,
        };
        tracing::info!(intent = reply.intent, timings = ?reply.timings, "turn answered");
        self.events
            .publish(AssistantEvent::Reply(Box::new(reply.clone())));
        Ok(reply)
    }

    /// `ask`, with its text spoken as it streams in.
    async fn ask_aloud(
        &self,
        request: &Request,
        speech: &mut Speech,
        timings: &mut Timings,
        started: Instant,
    ) -> Result<AskReply, AssistantError> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let ask = AskRequest {
            session: request.session.clone(),
            // See remember_when_confirmed.
            store: request.hold.is_none(),
            ..AskRequest::new(request.text.clone())
        };
        let call = self.ask(ask, &tx, &request.cancel);
        tokio::pin!(call);
        let mut on_event = |speech: &mut Speech, event: AskEvent| {
            if let Some(stream) = &request.stream {
                let _ = stream.send(event.clone());
            }
            match event {
                AskEvent::Token(text) => {
                    timings.first_token_ms.get_or_insert_with(|| ms(started));
                    speech.push(&text)
                }
                // Spoken text cannot be taken back: stop it and speak the replacement.
                AskEvent::Reset(_) => speech.restart(self),
            }
        };
        let reply = loop {
            tokio::select! {
                Some(event) = rx.recv() => on_event(speech, event)?,
                reply = &mut call => break reply,
            }
        };
        while let Ok(event) = rx.try_recv() {
            on_event(speech, event)?;
        }
        reply
    }

    /// Runs a user command's action (a speculative turn's only once its
    /// question is confirmed: an action cannot be taken back) and says how
    /// it went.
    async fn run_command(
        &self,
        request: &Request,
        matched: &Matched,
    ) -> Result<(String, Ran), AssistantError> {
        if let Some(hold) = &request.hold {
            if hold.decided().await != Verdict::Confirmed {
                return Err(AssistantError::Withdrawn);
            }
        }
        let ran = self
            .commands
            .run(matched)
            .instrument(tracing::debug_span!("command", name = %matched.command.name))
            .await;
        Ok((matched.reply(ran.outcome), ran))
    }

    /// Stores a speculative turn's question and answer in its session once
    /// the question is confirmed (its `ask` stored nothing: a withdrawn
    /// question must not become history).
    async fn remember_when_confirmed(&self, request: &Request, answer: &str, asked: bool) {
        let (Some(hold), Some(session), true) = (&request.hold, &request.session, asked) else {
            return;
        };
        if hold.decided().await == Verdict::Confirmed {
            self.remember(session, &request.text, answer).await;
        }
    }

    /// "read my last note": the beginning of the most recently changed note.
    async fn latest_note(&self) -> Result<Answered, AssistantError> {
        let Some(path) = self.rag.latest_note().await else {
            return Ok(("You have no notes yet.".into(), Vec::new(), None));
        };
        let read = path.clone();
        let content = tokio::task::spawn_blocking(move || std::fs::read_to_string(read))
            .await
            .map_err(|e| AssistantError::Read(e.to_string()))?
            .map_err(|e| {
                AssistantError::Read(format!("cannot read the note {}: {e}", path.display()))
            })?;
        let (excerpt, lines) = beginning(&content, NOTE_READ_BYTES);
        let name = file_name(&path);
        let text = format!("Your last note, {name}: {excerpt}");
        let citation = Citation {
            n: 1,
            kind: DocKind::Note,
            path: path.display().to_string(),
            name,
            line_start: 1,
            line_end: lines.max(1) as u32,
            snippet: excerpt,
        };
        Ok((text, vec![citation], None))
    }

    /// "what's in the latest picture": the newest caption of the watched folders.
    async fn latest_picture(&self) -> Result<Answered, AssistantError> {
        let vision = self.vision.clone();
        let newest = tokio::task::spawn_blocking(move || vision.list(None))
            .await
            .map_err(|e| AssistantError::Read(e.to_string()))?
            .map_err(|e| AssistantError::Read(e.to_string()))?
            .into_iter()
            .next();
        let Some(entry) = newest else {
            return Ok(("I haven't seen any pictures yet.".into(), Vec::new(), None));
        };
        let name = file_name(&entry.path);
        let caption = entry.caption.caption.trim().to_string();
        let text = format!("The latest picture, {name}, shows {caption}.");
        let citation = Citation {
            n: 1,
            kind: DocKind::Image,
            path: entry.path.display().to_string(),
            name,
            line_start: 1,
            line_end: 1,
            snippet: caption,
        };
        Ok((text, vec![citation], None))
    }
}

/// A reply's text, its citations, and (for a question) how it was made.
type Answered = (String, Vec<Citation>, Option<Said>);

/// The reply's speech, when it is spoken: one streaming utterance, and
/// when its first audio was queued.
struct Speech {
    utterance: Option<Utterance>,
    first_audio: Option<BoxFuture<'static, Option<FirstAudio>>>,
    hold: Option<Hold>,
}

impl Speech {
    fn open(assistant: &Assistant, speak: bool, hold: Option<Hold>) -> Result<Speech, SpeakError> {
        let mut speech = Speech {
            utterance: None,
            first_audio: None,
            hold,
        };
        if speak {
            speech.start(assistant)?;
        }
        Ok(speech)
    }

    fn start(&mut self, assistant: &Assistant) -> Result<(), SpeakError> {
        let options = SayOptions {
            hold: self.hold.clone(),
            ..SayOptions::default()
        };
        let mut utterance = assistant.speaker.open(options)?;
        self.first_audio = Some(utterance.first_audio().boxed());
        self.utterance = Some(utterance);
        Ok(())
    }

    fn push(&mut self, text: &str) -> Result<(), SpeakError> {
        match &mut self.utterance {
            Some(u) => u.push(text),
            None => Ok(()),
        }
    }

    /// Stops what was spoken so far and starts over (the answer was replaced).
    fn restart(&mut self, assistant: &Assistant) -> Result<(), SpeakError> {
        if self.utterance.take().is_some() {
            assistant.speaker.stop();
            self.start(assistant)?;
        }
        Ok(())
    }

    /// Ends the text and waits until it has been spoken (or stopped).
    async fn finish(
        self,
        started: Instant,
        timings: &mut Timings,
    ) -> Result<Option<SayOutcome>, SpeakError> {
        let Some(utterance) = self.utterance else {
            return Ok(None);
        };
        let outcome = match utterance.finish().await {
            Ok(outcome) => Some(outcome),
            // Nothing to say (an empty answer) is not a failure of the turn.
            Err(SpeakError::NothingToSay) => None,
            Err(e) => return Err(e),
        };
        // Settled: the utterance has finished.
        if let Some(first) = self.first_audio {
            if let Some(first) = first.await {
                timings.first_audio_ms = Some(first.at.duration_since(started).as_millis() as u64);
                timings.first_synth_ms = Some(first.synth_ms);
                timings.held_ms = first.held_ms;
            }
        }
        Ok(outcome)
    }
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// "It's 3:07 PM."
fn now_sentence() -> String {
    chrono::Local::now().format("It's %-I:%M %p.").to_string()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The whole lines of `text` that fit in `max` bytes (at least the first,
/// cut at a char boundary), and how many lines that is.
fn beginning(text: &str, max: usize) -> (String, usize) {
    let mut out = String::new();
    let mut lines = 0;
    for line in text.lines() {
        if !out.is_empty() && out.len() + line.len() + 1 > max {
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
        lines += 1;
    }
    if out.len() > max {
        let mut end = max;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    (out.trim().to_string(), lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_whole_lines_up_to_the_limit() {
        let (text, lines) = beginning("# Groceries\n\n- milk\n- eggs\n", 14);
        assert_eq!((text.as_str(), lines), ("# Groceries", 2));
        let (text, lines) = beginning("# Groceries\n- milk\n- eggs\n", 100);
        assert_eq!((text.as_str(), lines), ("# Groceries\n- milk\n- eggs", 3));
        let (text, lines) = beginning("ééééé", 3);
        assert_eq!((text.as_str(), lines), ("é", 1));
    }
}
