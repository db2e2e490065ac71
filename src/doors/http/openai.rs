//! OpenAI's dialect under `/v1`: `GET /v1/models`, `POST
//! /v1/chat/completions` (streamed as server-sent events ending with
//! `data: [DONE]`), `POST /v1/completions` and `POST /v1/embeddings`.
//! Fields voxd does not use (`presence_penalty`, `logprobs`, ...) are
//! accepted and ignored, as OpenAI-compatible servers do; `n` above 1 is
//! refused. The grounded answer's citations ride in a `voxd` field.

use std::convert::Infallible;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::chat::{self, Chat, Finished, Message, Model, Piece, Sampling};
use super::error::{Dialect, Failure};
use super::stream::{channel, shutting_down};
use super::Api;
use crate::assistant::ResetReason;
use crate::config::AnswerMode;
use crate::llm::{Finish, GenerateStats, Prompt};
use crate::rag::answer::Used;

const D: Dialect = Dialect::OpenAi;

/// `stop`: one string or several.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// voxd's own request fields (`extra_body={"voxd": {...}}` in the SDK).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Extension {
    /// The conversation session the turn is stored in (else `user`).
    #[serde(default)]
    session: Option<String>,
    /// `rag.answer_mode` for this request: auto, extractive or generative.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "extractive")]
    mode: Option<AnswerMode>,
    /// `false`: answer from the language model alone, without the notes.
    #[serde(default)]
    rag: Option<bool>,
}

/// The sampling fields both generation endpoints take.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Options {
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

impl Options {
    fn sampling(self) -> Result<(Sampling, bool, bool), Failure> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(Failure::bad_request(
                D,
                "`n` must be 1: voxd writes one answer",
            ));
        }
        if self.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            return Err(Failure::bad_request(D, "`temperature` must be within 0..2"));
        }
        if self.top_p.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
            return Err(Failure::bad_request(D, "`top_p` must be within 0..1"));
        }
        let sampling = Sampling {
            max_tokens: self.max_completion_tokens.or(self.max_tokens),
            temperature: self.temperature,
            top_p: self.top_p,
            stop: self.stop.map(Stop::into_vec).unwrap_or_default(),
            seed: self.seed.map(|s| s as u32),
        };
        let usage = self.stream_options.is_some_and(|o| o.include_usage);
        Ok((sampling, self.stream, usage))
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChatCompletion {
    model: String,
    messages: Vec<Message>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    voxd: Option<Extension>,
    #[serde(flatten)]
    options: Options,
}

/// `GET /v1/models`.
#[utoipa::path(get, path = "/v1/models", tag = "OpenAI",
    responses((status = 200, description = "`voxd`, then the raw language model")))]
pub async fn models(State(api): State<Api>) -> Json<Value> {
    let data: Vec<Value> = api
        .models()
        .into_iter()
        .map(
            |id| json!({ "id": id, "object": "model", "created": api.started, "owned_by": "voxd" }),
        )
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

/// `POST /v1/chat/completions`.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "OpenAI", request_body = ChatCompletion,
    responses((status = 200, description = "A chat.completion, or with `stream` server-sent chat.completion.chunk events ending with `data: [DONE]`; model `voxd` adds the `voxd` field (citations, mode)"), (status = 400, description = "Bad input (the error body says what to change)"), (status = 404, description = "Unknown model"), (status = 503, description = "An engine is down or past the memory budget")))]
pub async fn chat_completions(
    State(api): State<Api>,
    body: Result<Json<ChatCompletion>, JsonRejection>,
) -> Result<Response, Failure> {
    let Json(req) = body.map_err(|r| Failure::from_json(D, r))?;
    let model = api.model(D, &req.model)?;
    let messages = chat::messages(req.messages).map_err(|m| Failure::bad_request(D, m))?;
    let (sampling, stream, usage) = req.options.sampling()?;
    let ext = req.voxd.unwrap_or_default();
    let chat = Chat {
        model,
        messages,
        sampling,
        session: ext.session.or(req.user),
        mode: ext.mode,
        rag: ext.rag.unwrap_or(true),
    };
    let id = api.id("chatcmpl");
    let head = Head {
        id,
        created: unix_now(),
        model: req.model,
        object: "chat.completion.chunk",
    };
    if !stream {
        let finished = chat::start(api.assistant.clone(), chat)
            .finish()
            .await
            .map_err(|e| Failure::from_api(D, e))?;
        let mut body = json!({
            "id": head.id,
            "object": "chat.completion",
            "created": head.created,
            "model": head.model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": finished.text },
                "finish_reason": finish_reason(finished.stats.as_ref()),
            }],
            "usage": usage_of(finished.stats.as_ref()),
        });
        if let Some(ext) = grounding(&finished) {
            body["voxd"] = ext;
        }
        return Ok(Json(body).into_response());
    }
    let running = chat::start(api.assistant.clone(), chat);
    let last_words = vec![
        Ok(Event::default().data(shutting_down(D).body().to_string())),
        Ok(Event::default().data("[DONE]")),
    ];
    let events = channel(&api.assistant, last_words, move |tx| async move {
        let send = |value: Value| Ok::<_, Infallible>(Event::default().data(value.to_string()));
        let first = head.chunk(json!({ "role": "assistant", "content": "" }), None);
        if tx.send(send(first)).await.is_err() {
            return;
        }
        let delta = |piece| {
            let text = match piece {
                Piece::Text(text) => text,
                Piece::Reset(reason) => withdrawn(reason).to_string(),
            };
            send(head.chunk(json!({ "content": text }), None))
        };
        let Some(end) = running.relay(&tx, delta).await else {
            return;
        };
        match end {
            Ok(finished) => {
                let mut last = head.chunk(json!({}), Some(finish_reason(finished.stats.as_ref())));
                if let Some(ext) = grounding(&finished) {
                    last["voxd"] = ext;
                }
                let _ = tx.send(send(last)).await;
                if usage {
                    let mut tail = head.chunk(json!({}), None);
                    tail["choices"] = json!([]);
                    tail["usage"] = usage_of(finished.stats.as_ref());
                    let _ = tx.send(send(tail)).await;
                }
            }
            Err(e) => {
                let _ = tx.send(send(Failure::from_api(D, e).body())).await;
            }
        }
        let _ = tx.send(Ok(Event::default().data("[DONE]"))).await;
    });
    Ok(Sse::new(events).into_response())
}

/// What the stream says where the text so far was withdrawn: the
/// replacement follows it (the final `voxd.text` is the settled answer).
fn withdrawn(reason: ResetReason) -> &'static str {
    match reason {
        ResetReason::UnsupportedReplaced => {
            "\n\n(That was not what the notes say. From the notes:) "
        }
        ResetReason::LlmUnavailable => "\n\n(The model failed. From the notes:) ",
    }
}

/// The fields every chunk repeats.
struct Head {
    id: String,
    created: u64,
    model: String,
    object: &'static str,
}

impl Head {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        })
    }
}

fn finish_reason(stats: Option<&GenerateStats>) -> &'static str {
    match stats.map(|s| s.finish) {
        Some(Finish::Length) => "length",
        _ => "stop",
    }
}

fn usage_of(stats: Option<&GenerateStats>) -> Value {
    let (prompt, completion) = stats.map_or((0, 0), |s| (s.prompt_tokens, s.generated_tokens));
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

/// The `voxd` extension of a grounded answer: its citations (`path`,
/// `start_line`, `end_line`, `snippet`, and `n`, the `[n]` the text refers
/// to), how it was made, and the settled text.
pub fn grounding(finished: &Finished) -> Option<Value> {
    let reply = finished.reply.as_ref()?;
    let answer = &reply.answer;
    let citations: Vec<Value> = answer
        .citations
        .iter()
        .map(|c| {
            json!({
                "n": c.n,
                "kind": c.kind,
                "path": c.path,
                "start_line": c.line_start,
                "end_line": c.line_end,
                "snippet": c.snippet,
            })
        })
        .collect();
    Some(json!({
        "text": answer.text,
        "citations": citations,
        "mode": answer.mode,
        "abstained": answer.mode == Used::Abstained,
        "supported": answer.unsupported.is_empty(),
        "flags": answer.flags,
        "session": reply.session,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Completion {
    model: String,
    prompt: PromptText,
    #[serde(default)]
    echo: bool,
    #[serde(flatten)]
    options: Options,
}

/// `prompt`: one string (a list of one is taken too).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum PromptText {
    One(String),
    Many(Vec<String>),
}

/// `POST /v1/completions`: the raw model continues `prompt`.
#[utoipa::path(post, path = "/v1/completions", tag = "OpenAI", request_body = Completion,
    responses((status = 200, description = "A text_completion (streamed as server-sent events with `stream`)"), (status = 400, description = "Bad input (the error body says what to change)"), (status = 404, description = "Unknown model"), (status = 503, description = "An engine is down or past the memory budget")))]
pub async fn completions(
    State(api): State<Api>,
    body: Result<Json<Completion>, JsonRejection>,
) -> Result<Response, Failure> {
    let Json(req) = body.map_err(|r| Failure::from_json(D, r))?;
    if api.model(D, &req.model)? != Model::Raw {
        return Err(Failure::bad_request(
            D,
            "completions run on the raw language model: use /v1/chat/completions for model \"voxd\"",
        ));
    }
    let prompt = match req.prompt {
        PromptText::One(p) => p,
        PromptText::Many(mut v) if v.len() == 1 => v.remove(0),
        PromptText::Many(_) => return Err(Failure::bad_request(D, "`prompt` must be one string")),
    };
    if req.echo {
        return Err(Failure::bad_request(D, "`echo` is not supported"));
    }
    let (sampling, stream, usage) = req.options.sampling()?;
    let request = chat::generate_request(&api.assistant, Prompt::Completion(prompt), &sampling);
    let head = Head {
        id: api.id("cmpl"),
        created: unix_now(),
        model: req.model,
        object: "text_completion",
    };
    let text_choice = |text: &str, finish: Option<&str>| json!([{ "index": 0, "text": text, "logprobs": null, "finish_reason": finish }]);
    let running = chat::generate(api.assistant.clone(), request);
    if !stream {
        let finished = running
            .finish()
            .await
            .map_err(|e| Failure::from_api(D, e))?;
        let stats = finished.stats.as_ref();
        return Ok(Json(json!({
            "id": head.id,
            "object": head.object,
            "created": head.created,
            "model": head.model,
            "choices": text_choice(&finished.text, Some(finish_reason(stats))),
            "usage": usage_of(stats),
        }))
        .into_response());
    }
    let last_words = vec![
        Ok(Event::default().data(shutting_down(D).body().to_string())),
        Ok(Event::default().data("[DONE]")),
    ];
    let events = channel(&api.assistant, last_words, move |tx| async move {
        let send = |value: Value| Ok::<_, Infallible>(Event::default().data(value.to_string()));
        let chunk = |text: &str, finish: Option<&str>| {
            json!({
                "id": head.id, "object": head.object, "created": head.created,
                "model": head.model, "choices": text_choice(text, finish),
            })
        };
        let text = |piece| match piece {
            Piece::Text(text) => send(chunk(&text, None)),
            Piece::Reset(_) => send(chunk("", None)),
        };
        let Some(end) = running.relay(&tx, text).await else {
            return;
        };
        match end {
            Ok(finished) => {
                let stats = finished.stats.as_ref();
                let _ = tx.send(send(chunk("", Some(finish_reason(stats))))).await;
                if usage {
                    let mut tail = chunk("", None);
                    tail["choices"] = json!([]);
                    tail["usage"] = usage_of(stats);
                    let _ = tx.send(send(tail)).await;
                }
            }
            Err(e) => {
                let _ = tx.send(send(Failure::from_api(D, e).body())).await;
            }
        }
        let _ = tx.send(Ok(Event::default().data("[DONE]"))).await;
    });
    Ok(Sse::new(events).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Embeddings {
    model: String,
    input: EmbedInput,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
}

/// `input`: one text or several (token arrays are refused).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EmbedInput {
    One(String),
    Many(Vec<String>),
}

impl EmbedInput {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            EmbedInput::One(s) => vec![s],
            EmbedInput::Many(v) => v,
        }
    }
}

/// `POST /v1/embeddings`: the notes' sentence embedder.
#[utoipa::path(post, path = "/v1/embeddings", tag = "OpenAI", request_body = Embeddings,
    responses((status = 200, description = "384-dimensional unit vectors, as floats or base64"), (status = 400, description = "Bad input (the error body says what to change)"), (status = 404, description = "Unknown model"), (status = 503, description = "An engine is down or past the memory budget")))]
pub async fn embeddings(
    State(api): State<Api>,
    body: Result<Json<Embeddings>, JsonRejection>,
) -> Result<Response, Failure> {
    let Json(req) = body.map_err(|r| Failure::from_json(D, r))?;
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(Failure::bad_request(
                D,
                format!("`encoding_format` {other:?}: use float or base64"),
            ))
        }
    };
    let texts = req.input.into_vec();
    let vectors = api.embed(D, &req.model, texts).await?;
    if let Some(dim) = req.dimensions {
        if vectors.first().is_some_and(|v| v.len() != dim) {
            return Err(Failure::bad_request(
                D,
                format!(
                    "`dimensions` {dim}: this model's vectors have {}",
                    vectors[0].len()
                ),
            ));
        }
    }
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": { "prompt_tokens": 0, "total_tokens": 0 },
    }))
    .into_response())
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
