//! `ask`: answer a question from the notes, or with the notes off from the
//! language model alone. In order: retrieve → abstain below
//! `rag.min_score` → the extractive answer → (generative) the prompt with
//! as much history as fits → streamed generation → the support check that
//! replaces an unsupported answer → the turn stored → the reply with its
//! citations (from retrieval only, never from what a model claims).
//!
//! [`Answerer`] holds what that needs and nothing else: the model
//! ([`Llm`]), the notes ([`Notes`]), the history and the settings. Both
//! are traits so that tests script them; the daemon passes its `voxd-llm`
//! worker and its [`Rag`] index. Text streams out as [`AskEvent`]s.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::AssistantError;
use crate::config::{AnswerMode, Config};
use crate::conversation::{estimate_tokens, trim_to_budget, History, Turn};
use crate::llm::{self, GenerateRequest, GenerateStats, Llm, LlmError, Prompt, PromptFormat};
use crate::rag::answer::{self, Answer, Flag, PromptSource, Used};
use crate::rag::{Prepared, Rag, RagError};

/// A question to answer.
#[derive(Debug, Clone)]
pub struct AskRequest {
    pub question: String,
    /// Conversation id: its earlier turns are offered to the model, and
    /// this turn is stored in it (see `store`).
    pub session: Option<String>,
    /// Earlier turns the caller gives itself (a chat client's messages):
    /// used instead of the session's stored turns.
    pub history: Option<Vec<Turn>>,
    /// Overrides `rag.answer_mode`.
    pub mode: Option<AnswerMode>,
    /// Answer from the notes (when retrieval is on); `false` asks the
    /// model alone.
    pub rag: bool,
    /// Store the turn in `session`. The voice loop stores a speculative
    /// answer itself, once its question is confirmed.
    pub store: bool,
}

impl AskRequest {
    /// `question`, answered from the notes in the configured mode, with no
    /// session.
    pub fn new(question: impl Into<String>) -> AskRequest {
        AskRequest {
            question: question.into(),
            session: None,
            history: None,
            mode: None,
            rag: true,
            store: true,
        }
    }
}

/// What an answer streams while it is made.
#[derive(Debug, Clone, PartialEq)]
pub enum AskEvent {
    /// A piece of the answer's text.
    Token(String),
    /// The text streamed so far is withdrawn; the replacement follows as
    /// tokens.
    Reset(ResetReason),
}

/// Why streamed text was withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// The model's answer named things the sources do not contain.
    UnsupportedReplaced,
    /// The model failed mid-answer; the extractive answer replaces it.
    LlmUnavailable,
}

impl ResetReason {
    /// The reason as events spell it (`unsupported_replaced`).
    pub fn name(self) -> &'static str {
        match self {
            ResetReason::UnsupportedReplaced => "unsupported_replaced",
            ResetReason::LlmUnavailable => "llm_unavailable",
        }
    }
}

/// A finished answer and how it came about.
#[derive(Debug, Clone, PartialEq)]
pub struct AskReply {
    pub answer: Answer,
    pub session: Option<String>,
    /// Whether the notes were used.
    pub rag: bool,
    /// The best source's similarity, when the notes were searched.
    pub best_score: Option<f32>,
    /// The model's figures, when it wrote the answer.
    pub llm: Option<GenerateStats>,
}

/// The notes, as `ask` searches them.
#[async_trait]
pub trait Notes: Send + Sync {
    /// Whether answers use the notes at all (`rag on|off`).
    fn enabled(&self) -> bool;
    /// The numbered sources for `question`, with the vectors the
    /// extractive answer needs.
    async fn prepare(&self, question: &str) -> Result<Prepared, RagError>;
}

#[async_trait]
impl Notes for Rag {
    fn enabled(&self) -> bool {
        Rag::enabled(self)
    }

    async fn prepare(&self, question: &str) -> Result<Prepared, RagError> {
        Rag::prepare(self, question).await
    }
}

/// The settings `ask` reads, from `[rag]`, `[conversation]` and the model's
/// context size.
#[derive(Debug, Clone)]
pub struct AskSettings {
    pub answer_mode: AnswerMode,
    pub min_score: f32,
    pub prompt_relative_score: f32,
    pub max_answer_tokens: u32,
    /// The model's context, in tokens: prompt, history and answer share it.
    pub context: u32,
    /// Stored turns read for a session.
    pub max_turns: usize,
}

impl AskSettings {
    pub fn from_config(config: &Config) -> AskSettings {
        AskSettings {
            answer_mode: config.rag.answer_mode,
            min_score: config.rag.min_score,
            prompt_relative_score: config.rag.prompt_relative_score,
            max_answer_tokens: config.rag.max_answer_tokens,
            context: config.engines.llm.context,
            max_turns: config.conversation.max_turns,
        }
    }
}

/// Answers questions: the core of `ask`, shared by every door.
pub struct Answerer {
    llm: Arc<dyn Llm>,
    notes: Arc<dyn Notes>,
    history: Option<Arc<History>>,
    settings: AskSettings,
}

impl Answerer {
    pub fn new(
        llm: Arc<dyn Llm>,
        notes: Arc<dyn Notes>,
        history: Option<Arc<History>>,
        settings: AskSettings,
    ) -> Answerer {
        Answerer {
            llm,
            notes,
            history,
            settings,
        }
    }

    /// Answers `request`, sending its text to `events` as it is made.
    /// Cancelling `cancel` stops generation and returns
    /// [`AssistantError::Cancelled`].
    pub async fn ask(
        &self,
        request: AskRequest,
        events: &mpsc::UnboundedSender<AskEvent>,
        cancel: &CancellationToken,
    ) -> Result<AskReply, AssistantError> {
        let question = request.question.trim().to_string();
        if question.is_empty() {
            return Err(AssistantError::Invalid("ask: `question` is empty".into()));
        }
        let mode = request.mode.unwrap_or(self.settings.answer_mode);
        let rag = request.rag && self.notes.enabled();
        let history = match request.history {
            Some(turns) => turns,
            None => self.turns(request.session.as_deref()).await,
        };
        let mut out = Stream {
            events,
            sent: false,
        };
        let turn = Asked {
            question: &question,
            history: &history,
            session: &request.session,
            cancel,
        };
        let (answer, best_score, stats) = if rag {
            self.answer_from_notes(&turn, mode, &mut out).await?
        } else {
            let (text, stats) = self.generate(&turn, &mut out).await?;
            let answer = Answer {
                text: text.trim().to_string(),
                mode: Used::NoRag,
                citations: Vec::new(),
                flags: Vec::new(),
                unsupported: Vec::new(),
            };
            (answer, None, Some(stats))
        };
        if let (Some(session), true) = (&request.session, request.store) {
            self.remember(session, &question, &answer.text).await;
        }
        Ok(AskReply {
            answer,
            session: request.session,
            rag,
            best_score,
            llm: stats,
        })
    }

    /// Stores a question and its answer as a turn of conversation `session`
    /// (a failure is logged: the answer stands).
    pub async fn remember(&self, session: &str, question: &str, answer: &str) {
        let Some(h) = self.history.clone() else {
            return;
        };
        let (s, q, a) = (
            session.to_string(),
            question.to_string(),
            answer.to_string(),
        );
        let stored = tokio::task::spawn_blocking(move || h.append(&s, &q, &a)).await;
        if let Ok(Err(e)) = stored {
            tracing::warn!(error = %e, "cannot store the turn");
        }
    }

    /// The answer from the notes: abstain, extractive, or generative with
    /// the extractive answer as its check and fallback.
    async fn answer_from_notes(
        &self,
        turn: &Asked<'_>,
        mode: AnswerMode,
        out: &mut Stream<'_>,
    ) -> Result<(Answer, Option<f32>, Option<GenerateStats>), AssistantError> {
        // The model loads while the notes are searched: after an idle
        // unload, or on a profile that runs one engine at a time, its
        // start is most of the time to the first token. A task of its own,
        // so that an answer without the model (an abstention) does not
        // wait for the load.
        let loading = (mode != AnswerMode::Extractive).then(|| {
            let llm = self.llm.clone();
            tokio::spawn(async move { llm.info().await })
        });
        let prepared = self.notes.prepare(turn.question).await?;
        let best = Some(prepared.best_score);
        if prepared.sources.is_empty() || prepared.best_score < self.settings.min_score {
            let a = Answer::abstain();
            out.token(&a.text);
            return Ok((a, best, None));
        }
        let extractive = answer::extractive(
            turn.question,
            &prepared.query,
            &prepared.sources,
            &prepared.sentence_vectors,
            &prepared.dropped,
        );
        if mode == AnswerMode::Extractive {
            out.token(&extractive.text);
            return Ok((extractive, best, None));
        }
        let sources = answer::prompt_sources(
            &prepared.sources,
            &prepared.dropped,
            self.settings.prompt_relative_score,
        );
        let loaded = match loading {
            Some(task) => task
                .await
                .map_err(|e| LlmError::Model(format!("loading the model failed: {e}")))
                .and_then(|info| info),
            None => self.llm.info().await,
        };
        let generated = match loaded {
            Ok(info) => {
                self.generate_with(turn, Some(sources.as_slice()), info.prompt_format, out)
                    .await
            }
            Err(e) => Err(e),
        };
        match generated {
            Ok((text, stats)) => {
                let a = answer::finish_generative(
                    &text,
                    turn.question,
                    &prepared.sources,
                    &sources,
                    extractive,
                );
                if a.flags.contains(&Flag::UnsupportedReplaced) {
                    out.replace_with(&a.text, ResetReason::UnsupportedReplaced);
                }
                Ok((a, best, Some(stats)))
            }
            // Nobody waits for a fallback.
            Err(e @ LlmError::Cancelled) => Err(e.into()),
            Err(e) if mode == AnswerMode::Auto => {
                tracing::warn!(error = %e, "language model unavailable; answering extractively");
                let mut a = extractive;
                a.flags.push(Flag::LlmUnavailable);
                out.replace_with(&a.text, ResetReason::LlmUnavailable);
                Ok((a, best, None))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The model's answer to `turn` without the notes.
    async fn generate(
        &self,
        turn: &Asked<'_>,
        out: &mut Stream<'_>,
    ) -> Result<(String, GenerateStats), AssistantError> {
        let info = self.llm.info().await?;
        Ok(self
            .generate_with(turn, None, info.prompt_format, out)
            .await?)
    }

    /// Runs the model on the prompt for `format`, with the newest history
    /// that fits, streaming its text.
    async fn generate_with(
        &self,
        turn: &Asked<'_>,
        sources: Option<&[PromptSource]>,
        format: PromptFormat,
        out: &mut Stream<'_>,
    ) -> Result<(String, GenerateStats), LlmError> {
        let bare = prompt_for(format, turn.question, sources, &[]);
        let turns = trim_to_budget(turn.history, self.budget(&bare));
        let stop = match format {
            PromptFormat::Completion => answer::COMPLETION_STOP
                .iter()
                .map(|s| s.to_string())
                .collect(),
            PromptFormat::ChatTemplate => Vec::new(),
        };
        let request = GenerateRequest {
            prompt: prompt_for(format, turn.question, sources, &turns),
            max_tokens: self.settings.max_answer_tokens,
            temperature: 0.0,
            top_p: 1.0,
            stop,
            seed: 0,
            session: turn.session.clone(),
        };
        llm::stream(&*self.llm, request, turn.cancel, |piece| out.token(piece)).await
    }

    /// Tokens left for history once the prompt without it and the answer fit.
    fn budget(&self, bare: &Prompt) -> usize {
        let prompt_tokens = match bare {
            Prompt::Completion(text) => estimate_tokens(text),
            Prompt::Chat(messages) => messages
                .iter()
                .map(|m| estimate_tokens(&m.content) + 4)
                .sum(),
        };
        (self.settings.context as usize)
            .saturating_sub(self.settings.max_answer_tokens as usize)
            .saturating_sub(prompt_tokens)
    }

    /// The session's recent turns (none without a session).
    async fn turns(&self, session: Option<&str>) -> Vec<Turn> {
        let (Some(session), Some(h)) = (session, self.history.clone()) else {
            return Vec::new();
        };
        let (s, n) = (session.to_string(), self.settings.max_turns);
        match tokio::task::spawn_blocking(move || h.turns(&s, n)).await {
            Ok(Ok(turns)) => turns.into_iter().map(Turn::from).collect(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the session history");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }
}

/// The parts of a request every step reads.
struct Asked<'a> {
    question: &'a str,
    history: &'a [Turn],
    session: &'a Option<String>,
    cancel: &'a CancellationToken,
}

/// The answer's text as it streams out.
struct Stream<'a> {
    events: &'a mpsc::UnboundedSender<AskEvent>,
    sent: bool,
}

impl Stream<'_> {
    /// Streams a piece of the answer. Whitespace before the first visible
    /// text is not sent: the reply's text is trimmed, and the streamed text
    /// must read the same.
    fn token(&mut self, text: &str) {
        let text = if self.sent { text } else { text.trim_start() };
        if text.is_empty() {
            return;
        }
        self.sent = true;
        let _ = self.events.send(AskEvent::Token(text.to_string()));
    }

    /// Sends the whole of a non-streamed answer, first withdrawing any
    /// streamed text it replaces.
    fn replace_with(&mut self, text: &str, reason: ResetReason) {
        if self.sent {
            let _ = self.events.send(AskEvent::Reset(reason));
        }
        self.token(text);
    }
}

/// The prompt for the model's format: chat messages when it has a template,
/// voxd's completion prompt otherwise.
fn prompt_for(
    format: PromptFormat,
    question: &str,
    sources: Option<&[PromptSource]>,
    turns: &[Turn],
) -> Prompt {
    match (format, sources) {
        (PromptFormat::ChatTemplate, sources) => {
            Prompt::Chat(answer::chat_prompt(question, sources, turns))
        }
        (PromptFormat::Completion, Some(sources)) => {
            Prompt::Completion(answer::completion_prompt(question, sources, turns))
        }
        (PromptFormat::Completion, None) => {
            Prompt::Completion(answer::plain_completion_prompt(question, turns))
        }
    }
}
