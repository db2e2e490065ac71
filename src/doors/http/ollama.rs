//! Ollama's dialect under `/api`: `GET /api/version`, `GET /api/tags`,
//! `POST /api/show`, `POST /api/chat` and `POST /api/generate` (streamed
//! by default, one JSON object per line, the last with `done: true` and
//! timings), `POST /api/embed`, and `POST /api/pull`, which points to
//! `voxd models pull`. `keep_alive` and `options.num_ctx` are accepted
//! (voxd's engines manage their own lifetime and context); `tools` are
//! accepted and answered without tool calls.

use std::convert::Infallible;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::chat::{self, Chat, Finished, Message, Model, Piece, Sampling};
use super::error::{Dialect, Failure};
use super::openai::{grounding, EmbedInput};
use super::stream::{channel, shutting_down};
use super::Api;
use crate::llm::{Finish, GenerateStats, Prompt};

const D: Dialect = Dialect::Ollama;
const NDJSON: &str = "application/x-ndjson";

/// The Ollama version voxd answers like (its API as of this version).
const VERSION: &str = "0.12.0";

/// `options` voxd reads; the rest (`num_ctx`, `repeat_penalty`, ...) are
/// accepted and ignored.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = OllamaOptions)]
pub struct Options {
    #[serde(default)]
    num_predict: Option<i64>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    stop: Option<Vec<String>>,
    #[serde(default)]
    seed: Option<i64>,
}

impl Options {
    fn sampling(self) -> Sampling {
        Sampling {
            // Ollama's -1 (and -2) mean "as long as it takes": the cap.
            max_tokens: self.num_predict.filter(|&n| n > 0).map(|n| n as u32),
            temperature: self.temperature,
            top_p: self.top_p,
            stop: self.stop.unwrap_or_default(),
            seed: self.seed.map(|s| s as u32),
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChatRequest {
    model: String,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default = "yes")]
    stream: bool,
    #[serde(default)]
    options: Option<Options>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    format: Option<Value>,
}

/// `GET /api/version`.
#[utoipa::path(get, path = "/api/version", tag = "Ollama", responses((status = 200, description = "The Ollama API version voxd answers like")))]
pub async fn version() -> Json<Value> {
    Json(json!({ "version": VERSION }))
}

/// `GET /api/tags`: the models, as Ollama lists them (`name:tag`).
#[utoipa::path(get, path = "/api/tags", tag = "Ollama", responses((status = 200, description = "`voxd:latest`, then the raw language model")))]
pub async fn tags(State(api): State<Api>) -> Json<Value> {
    let models: Vec<Value> = api
        .models()
        .into_iter()
        .map(|id| {
            let name = format!("{id}:latest");
            json!({
                "name": name,
                "model": name,
                "modified_at": "1970-01-01T00:00:00Z",
                "size": 0,
                "digest": "",
                "details": details(&id),
            })
        })
        .collect();
    Json(json!({ "models": models }))
}

fn details(id: &str) -> Value {
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": if id == chat::VOXD { "voxd" } else { "llama" },
        "families": null,
        "parameter_size": "",
        "quantization_level": "",
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ShowRequest {
    #[serde(alias = "name")]
    model: String,
}

/// `POST /api/show`.
#[utoipa::path(post, path = "/api/show", tag = "Ollama", request_body = ShowRequest,
    responses((status = 200, description = "What the model is"), (status = 404, description = "Unknown model")))]
pub async fn show(
    State(api): State<Api>,
    body: Result<Json<ShowRequest>, JsonRejection>,
) -> Result<Json<Value>, Failure> {
    let Json(req) = body.map_err(|r| Failure::from_json(D, r))?;
    let model = api.model(D, &req.model)?;
    let id = req.model.trim_end_matches(":latest");
    let about = match model {
        Model::Voxd => "voxd's assistant: answers from your notes, with citations",
        Model::Raw => "the language model voxd runs, without the notes",
    };
    Ok(Json(json!({
        "modelfile": format!("# {about}\nFROM {id}\n"),
        "parameters": "",
        "template": "",
        "details": details(id),
        "model_info": {},
        "capabilities": ["completion"],
    })))
}

/// `POST /api/pull`: voxd installs models itself.
#[utoipa::path(post, path = "/api/pull", tag = "Ollama", responses((status = 400, description = "Always: run `voxd models pull` on the daemon's machine")))]
pub async fn pull() -> Failure {
    Failure::new(
        D,
        StatusCode::BAD_REQUEST,
        "pull_unsupported",
        "voxd does not pull models over the API: run `voxd models pull` on its machine",
    )
}

/// `POST /api/chat`.
#[utoipa::path(post, path = "/api/chat", tag = "Ollama", request_body = ChatRequest,
    responses((status = 200, description = "One JSON object per line (`application/x-ndjson`), the last with `done: true`; or one object without `stream`"), (status = 400, description = "Bad input (the error body says what to change)"), (status = 404, description = "Unknown model"), (status = 503, description = "An engine is down or past the memory budget")))]
pub async fn chat(
    State(api): State<Api>,
    body: Result<Json<ChatRequest>, JsonRejection>,
) -> Result<Response, Failure> {
    let Json(req) = body.map_err(|r| Failure::from_json(D, r))?;
    let model = api.model(D, &req.model)?;
    refuse_format(req.format.as_ref())?;
    let messages = chat::messages(req.messages).map_err(|m| Failure::bad_request(D, m))?;
    let chat = Chat {
        model,
        messages,
        sampling: req.options.unwrap_or_default().sampling(),
        session: None,
        mode: None,
        rag: true,
    };
    let name = req.model;
    let started = Instant::now();
    if !req.stream {
        let finished = chat::start(api.assistant.clone(), chat)
            .finish()
            .await
            .map_err(|e| Failure::from_api(D, e))?;
        let mut last = done(&name, finished.stats.as_ref(), started);
        last["message"] = json!({ "role": "assistant", "content": finished.text });
        add_grounding(&mut last, &finished);
        return Ok(Json(last).into_response());
    }
    let running = chat::start(api.assistant.clone(), chat);
    let last_words = vec![ndjson(&shutting_down(D).body())];
    let lines = channel(&api.assistant, last_words, move |tx| async move {
        let line = |piece| {
            let text = match piece {
                Piece::Text(text) => text,
                Piece::Reset(_) => "\n\n(From the notes:) ".to_string(),
            };
            ndjson(&json!({
                "model": name, "created_at": created_at(),
                "message": { "role": "assistant", "content": text }, "done": false,
            }))
        };
        let Some(end) = running.relay(&tx, line).await else {
            return;
        };
        let last = match end {
            Ok(finished) => {
                let mut last = done(&name, finished.stats.as_ref(), started);
                last["message"] = json!({ "role": "assistant", "content": "" });
                add_grounding(&mut last, &finished);
                last
            }
            Err(e) => Failure::from_api(D, e).body(),
        };
        let _ = tx.send(ndjson(&last)).await;
    });
    Ok(ndjson_response(lines))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct GenerateRequest {
    model: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    system: Option<String>,
    #[serde(default = "yes")]
    stream: bool,
    #[serde(default)]
    options: Option<Options>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    format: Option<Value>,
}

/// `POST /api/generate`: the raw model continues `prompt` (an empty
/// prompt only loads the model, as in Ollama).
#[utoipa::path(post, path = "/api/generate", tag = "Ollama", request_body = GenerateRequest,
    responses((status = 200, description = "Streamed as JSON lines (`response` pieces), the last with `done: true`"), (status = 400, description = "Bad input (the error body says what to change)"), (status = 404, description = "Unknown model"), (status = 503, description = "An engine is down or past the memory budget")))]
pub async fn generate(
    State(api): State<Api>,
    body: Result<Json<GenerateRequest>, JsonRejection>,
) -> Result<Response, Failure> {
    let Json(req) = body.map_err(|r| Failure::from_json(D, r))?;
    if api.model(D, &req.model)? != Model::Raw {
        return Err(Failure::bad_request(
            D,
            "generate runs on the raw language model: use /api/chat for model \"voxd\"",
        ));
    }
    refuse_format(req.format.as_ref())?;
    let name = req.model;
    let started = Instant::now();
    if req.prompt.is_empty() {
        api.assistant
            .llm
            .info()
            .await
            .map_err(|e| Failure::from_api(D, e.into()))?;
        let mut last = done(&name, None, started);
        last["response"] = json!("");
        last["done_reason"] = json!("load");
        return Ok(Json(last).into_response());
    }
    let prompt = match req.system {
        Some(system) => format!("{system}\n\n{}", req.prompt),
        None => req.prompt,
    };
    let sampling = req.options.unwrap_or_default().sampling();
    let request = chat::generate_request(&api.assistant, Prompt::Completion(prompt), &sampling);
    let running = chat::generate(api.assistant.clone(), request);
    if !req.stream {
        let finished = running
            .finish()
            .await
            .map_err(|e| Failure::from_api(D, e))?;
        let mut last = done(&name, finished.stats.as_ref(), started);
        last["response"] = json!(finished.text);
        return Ok(Json(last).into_response());
    }
    let last_words = vec![ndjson(&shutting_down(D).body())];
    let lines = channel(&api.assistant, last_words, move |tx| async move {
        let line = |piece| {
            let text = match piece {
                Piece::Text(text) => text,
                Piece::Reset(_) => String::new(),
            };
            ndjson(
                &json!({ "model": name, "created_at": created_at(), "response": text, "done": false }),
            )
        };
        let Some(end) = running.relay(&tx, line).await else {
            return;
        };
        let last = match end {
            Ok(finished) => {
                let mut last = done(&name, finished.stats.as_ref(), started);
                last["response"] = json!("");
                last
            }
            Err(e) => Failure::from_api(D, e).body(),
        };
        let _ = tx.send(ndjson(&last)).await;
    });
    Ok(ndjson_response(lines))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EmbedRequest {
    model: String,
    input: EmbedInput,
}

/// `POST /api/embed`: the notes' sentence embedder.
#[utoipa::path(post, path = "/api/embed", tag = "Ollama", request_body = EmbedRequest,
    responses((status = 200, description = "`embeddings`: 384-dimensional unit vectors"), (status = 400, description = "Bad input (the error body says what to change)"), (status = 404, description = "Unknown model"), (status = 503, description = "An engine is down or past the memory budget")))]
pub async fn embed(
    State(api): State<Api>,
    body: Result<Json<EmbedRequest>, JsonRejection>,
) -> Result<Json<Value>, Failure> {
    let Json(req) = body.map_err(|r| Failure::from_json(D, r))?;
    let started = Instant::now();
    let texts = req.input.into_vec();
    let count = texts.len();
    let vectors = api.embed(D, &req.model, texts).await?;
    Ok(Json(json!({
        "model": req.model,
        "embeddings": vectors,
        "total_duration": started.elapsed().as_nanos() as u64,
        "load_duration": 0,
        "prompt_eval_count": count,
    })))
}

/// Structured output (`format`) is not something voxd can promise.
fn refuse_format(format: Option<&Value>) -> Result<(), Failure> {
    match format {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.is_empty() => Ok(()),
        Some(_) => Err(Failure::bad_request(
            D,
            "`format` (structured output) is not supported by voxd",
        )),
    }
}

/// The closing object: `done: true`, why, and Ollama's timings (ns).
fn done(model: &str, stats: Option<&GenerateStats>, started: Instant) -> Value {
    let reason = match stats.map(|s| s.finish) {
        Some(Finish::Length) => "length",
        _ => "stop",
    };
    let (prompt, generated, first_ms, rate) = stats.map_or((0, 0, 0.0, 0.0), |s| {
        (
            s.prompt_tokens,
            s.generated_tokens,
            s.first_token_ms,
            s.tokens_per_sec,
        )
    });
    let eval_ns = if rate > 0.0 {
        (generated as f64 / rate * 1e9) as u64
    } else {
        0
    };
    json!({
        "model": model,
        "created_at": created_at(),
        "done": true,
        "done_reason": reason,
        "total_duration": started.elapsed().as_nanos() as u64,
        "load_duration": 0,
        "prompt_eval_count": prompt,
        "prompt_eval_duration": (first_ms * 1e6) as u64,
        "eval_count": generated,
        "eval_duration": eval_ns,
    })
}

fn add_grounding(last: &mut Value, finished: &Finished) {
    if let Some(ext) = grounding(finished) {
        last["voxd"] = ext;
    }
}

fn created_at() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

fn ndjson(value: &Value) -> Result<Bytes, Infallible> {
    let mut line = value.to_string();
    line.push('\n');
    Ok(Bytes::from(line))
}

fn ndjson_response(
    lines: impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    ([(CONTENT_TYPE, NDJSON)], Body::from_stream(lines)).into_response()
}
