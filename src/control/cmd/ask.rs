//! `ask`: answer a question from the notes (or, with RAG off, from the
//! language model alone). Streams `ask.token` events carrying the request's
//! id as text is produced (and `ask.reset` when streamed text is replaced),
//! then replies with the final text, the mode used, the citations (from
//! retrieval only) and flags. See `docs/protocol.md`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{llm_error, Session};
use crate::config::AnswerMode;
use crate::control::protocol::{ControlError, ErrorCode, Message};
use crate::control::Context;
use crate::conversation::{estimate_tokens, trim_to_budget};
use crate::llm::{GenerateRequest, GenerateStats, Llm, LlmError, Prompt, PromptFormat};
use crate::rag::answer::{self, Answer, Flag, Turn, Used};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    pub question: String,
    /// Conversation id: earlier turns are offered to the model, and this
    /// turn is stored.
    #[serde(default)]
    pub session: Option<String>,
    /// Answer without the notes for this request.
    #[serde(default)]
    pub no_rag: bool,
    /// Overrides `rag.answer_mode` for this request.
    #[serde(default)]
    pub mode: Option<AnswerMode>,
    /// Store this turn in the session (default). The voice loop stores a
    /// question it answered speculatively itself, once it is confirmed.
    #[serde(default = "yes")]
    pub remember: bool,
}

fn yes() -> bool {
    true
}

/// The language model the daemon uses, if any.
fn llm(ctx: &Context) -> Option<Arc<dyn Llm>> {
    ctx.llm.clone()
}

fn internal(e: impl std::fmt::Display) -> ControlError {
    ControlError::new(ErrorCode::Internal, e.to_string())
}

/// Streams events of one request on its connection.
struct Stream<'a> {
    session: &'a Session,
    id: &'a Value,
    sent: bool,
}

impl Stream<'_> {
    async fn event(&mut self, event: &str, data: Value) {
        let _ = self
            .session
            .out
            .send(Message::Event {
                id: self.id.clone(),
                event: event.to_string(),
                data,
            })
            .await;
    }

    /// Streams a piece of the answer. Whitespace before the first visible
    /// text is not sent: the reply's `text` is trimmed, and the streamed
    /// text must read the same.
    async fn token(&mut self, text: &str) {
        let text = if self.sent { text } else { text.trim_start() };
        if text.is_empty() {
            return;
        }
        self.sent = true;
        self.event("ask.token", json!({ "text": text })).await;
    }

    /// Sends the whole of a non-streamed answer, first withdrawing any
    /// streamed text it replaces.
    async fn replace_with(&mut self, text: &str, reason: &str) {
        if self.sent {
            self.event("ask.reset", json!({ "reason": reason })).await;
        }
        self.token(text).await;
    }
}

impl Ask {
    pub async fn apply(
        self,
        ctx: &Context,
        session: &Session,
        id: &Value,
    ) -> Result<Value, ControlError> {
        let question = self.question.trim().to_string();
        if question.is_empty() {
            return Err(ControlError::new(
                ErrorCode::InvalidParams,
                "ask: `question` is empty",
            ));
        }
        let cfg = &ctx.config.config;
        let mode = self.mode.unwrap_or(cfg.rag.answer_mode);
        let use_rag = !self.no_rag && ctx.rag.enabled();
        let history = self.history(ctx).await;
        let mut stream = Stream {
            session,
            id,
            sent: false,
        };
        let mut stats = None;
        let mut best_score = None;
        let answer = if !use_rag {
            let llm = llm(ctx).ok_or_else(|| llm_error(LlmError::NoModel))?;
            let info = llm.info().await.map_err(llm_error)?;
            let bare = prompt_for(info.prompt_format, &question, None, &[]);
            let turns = trim_to_budget(&history, budget(ctx, &bare));
            let prompt = prompt_for(info.prompt_format, &question, None, &turns);
            let (text, s) = generate(
                &*llm,
                ctx,
                prompt,
                info.prompt_format,
                &self.session,
                &mut stream,
                session,
            )
            .await
            .map_err(llm_error)?;
            stats = Some(s);
            Answer {
                text: text.trim().to_string(),
                mode: Used::NoRag,
                citations: Vec::new(),
                flags: Vec::new(),
                unsupported: Vec::new(),
            }
        } else {
            // The model loads while the notes are searched: after an idle
            // unload, or on a profile that runs one engine at a time, its
            // start is most of the time to the first token. A task of its
            // own, so that an answer without the model (an abstention)
            // does not wait for the load.
            let mut loading = llm(ctx)
                .filter(|_| mode != AnswerMode::Extractive)
                .map(|llm| tokio::spawn(async move { llm.info().await }));
            let prepared = ctx.rag.prepare(&question).await.map_err(internal)?;
            best_score = Some(prepared.best_score);
            if prepared.sources.is_empty() || prepared.best_score < cfg.rag.min_score {
                let a = Answer::abstain();
                stream.token(&a.text).await;
                a
            } else {
                let extractive = answer::extractive(
                    &question,
                    &prepared.query,
                    &prepared.sources,
                    &prepared.sentence_vectors,
                    &prepared.dropped,
                );
                match (mode, llm(ctx)) {
                    (AnswerMode::Extractive, _) => {
                        stream.token(&extractive.text).await;
                        extractive
                    }
                    (AnswerMode::Auto, None) => {
                        let mut a = extractive;
                        a.flags.push(Flag::LlmUnavailable);
                        stream.token(&a.text).await;
                        a
                    }
                    (AnswerMode::Generative, None) => return Err(llm_error(LlmError::NoModel)),
                    (mode, Some(llm)) => {
                        let sources = answer::prompt_sources(
                            &prepared.sources,
                            &prepared.dropped,
                            cfg.rag.prompt_relative_score,
                        );
                        let outcome = async {
                            let info = match loading.take() {
                                Some(task) => task.await.map_err(|e| {
                                    LlmError::Model(format!("loading the model failed: {e}"))
                                })??,
                                None => llm.info().await?,
                            };
                            let bare =
                                prompt_for(info.prompt_format, &question, Some(&sources), &[]);
                            let turns = trim_to_budget(&history, budget(ctx, &bare));
                            let prompt =
                                prompt_for(info.prompt_format, &question, Some(&sources), &turns);
                            generate(
                                &*llm,
                                ctx,
                                prompt,
                                info.prompt_format,
                                &self.session,
                                &mut stream,
                                session,
                            )
                            .await
                        }
                        .await;
                        match outcome {
                            Ok((text, s)) => {
                                stats = Some(s);
                                let a = answer::finish_generative(
                                    &text,
                                    &question,
                                    &prepared.sources,
                                    &sources,
                                    extractive,
                                );
                                if a.flags.contains(&Flag::UnsupportedReplaced) {
                                    stream.replace_with(&a.text, "unsupported_replaced").await;
                                }
                                a
                            }
                            Err(e) if mode == AnswerMode::Auto => {
                                tracing::warn!(error = %e, "language model unavailable; answering extractively");
                                let mut a = extractive;
                                a.flags.push(Flag::LlmUnavailable);
                                stream.replace_with(&a.text, "llm_unavailable").await;
                                a
                            }
                            Err(e) => return Err(llm_error(e)),
                        }
                    }
                }
            }
        };
        if let (Some(s), true) = (&self.session, self.remember) {
            remember(ctx, s, &question, &answer.text).await;
        }
        let mut reply = serde_json::to_value(&answer).map_err(internal)?;
        if let Value::Object(map) = &mut reply {
            map.insert("session".into(), json!(self.session));
            map.insert("rag".into(), json!(use_rag));
            if let Some(score) = best_score {
                map.insert("best_score".into(), json!(score));
            }
            if let Some(s) = stats {
                map.insert("llm".into(), serde_json::to_value(s).map_err(internal)?);
            }
        }
        Ok(reply)
    }

    /// The session's recent turns (none without a session).
    async fn history(&self, ctx: &Context) -> Vec<crate::conversation::StoredTurn> {
        let (Some(session), Ok(h)) = (&self.session, &ctx.history) else {
            return Vec::new();
        };
        let (h, s, n) = (
            h.clone(),
            session.clone(),
            ctx.config.config.conversation.max_turns,
        );
        match tokio::task::spawn_blocking(move || h.turns(&s, n)).await {
            Ok(Ok(turns)) => turns,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the session history");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }
}

/// Stores a question and its answer as a turn of conversation `session`
/// (a failure is logged: the answer stands).
pub async fn remember(ctx: &Context, session: &str, question: &str, answer: &str) {
    let Ok(h) = &ctx.history else { return };
    let (h, s, q, a) = (
        h.clone(),
        session.to_string(),
        question.to_string(),
        answer.to_string(),
    );
    let stored = tokio::task::spawn_blocking(move || h.append(&s, &q, &a)).await;
    if let Ok(Err(e)) = stored {
        tracing::warn!(error = %e, "cannot store the turn");
    }
}

/// The prompt for the model's format: chat messages when it has a template,
/// voxd's completion prompt otherwise.
fn prompt_for(
    format: PromptFormat,
    question: &str,
    sources: Option<&[answer::PromptSource]>,
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

/// Tokens left for history once the prompt without it and the answer fit.
fn budget(ctx: &Context, bare: &Prompt) -> usize {
    let cfg = &ctx.config.config;
    let prompt_tokens = match bare {
        Prompt::Completion(text) => estimate_tokens(text),
        Prompt::Chat(messages) => messages
            .iter()
            .map(|m| estimate_tokens(&m.content) + 4)
            .sum(),
    };
    (cfg.engines.llm.context as usize)
        .saturating_sub(cfg.rag.max_answer_tokens as usize)
        .saturating_sub(prompt_tokens)
}

/// Runs the model, streaming its text as `ask.token` events; stops when the
/// client disconnects.
async fn generate(
    llm: &dyn Llm,
    ctx: &Context,
    prompt: Prompt,
    format: PromptFormat,
    conversation: &Option<String>,
    stream: &mut Stream<'_>,
    session: &Session,
) -> Result<(String, GenerateStats), LlmError> {
    let stop = match format {
        PromptFormat::Completion => answer::COMPLETION_STOP
            .iter()
            .map(|s| s.to_string())
            .collect(),
        PromptFormat::ChatTemplate => Vec::new(),
    };
    let request = GenerateRequest {
        prompt,
        max_tokens: ctx.config.config.rag.max_answer_tokens,
        temperature: 0.0,
        top_p: 1.0,
        stop,
        seed: 0,
        session: conversation.clone(),
    };
    let (tx, mut rx) = mpsc::channel::<String>(64);
    let generation = llm.generate(request, tx);
    tokio::pin!(generation);
    let mut text = String::new();
    let stats = loop {
        tokio::select! {
            piece = rx.recv() => match piece {
                Some(piece) => {
                    text.push_str(&piece);
                    stream.token(&piece).await;
                }
                None => break (&mut generation).await?,
            },
            result = &mut generation => {
                // Drain what was produced before the end.
                while let Ok(piece) = rx.try_recv() {
                    text.push_str(&piece);
                    stream.token(&piece).await;
                }
                break result?;
            }
            _ = session.closed.cancelled() => {
                return Err(LlmError::Model("the client disconnected".into()));
            }
        }
    };
    Ok((text, stats))
}
