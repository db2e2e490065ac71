//! The Ollama dialect: health from `/api/version`, the model from
//! `/api/tags`, whether it has a chat template from `/api/show`, and
//! generation as NDJSON from `/api/chat` (chat prompts) or `/api/generate`
//! with `raw` (voxd's completion prompt, sent as is), with `keep_alive` and
//! `options.num_ctx` from the profile's `engines.llm`.

use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::openai::excerpt;
use super::{Found, Piece, Remote};
use crate::llm::{Finish, GenerateRequest, GenerateStats, LlmError, Prompt, PromptFormat};

/// How long Ollama keeps the model loaded after a request.
const KEEP_ALIVE: &str = "30m";

pub(super) async fn discover(remote: &Remote) -> Result<Found, LlmError> {
    remote
        .send(remote.request(reqwest::Method::GET, "/api/version"))
        .await?;
    let model = match &remote.model {
        Some(model) => model.clone(),
        None => {
            let tags = json_of(remote, remote.request(reqwest::Method::GET, "/api/tags")).await?;
            tags["models"]
                .as_array()
                .and_then(|m| m.first())
                .and_then(|m| m["name"].as_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    LlmError::Remote(format!(
                        "{} has no model (`ollama pull` one, or set engines.llm.remote_model)",
                        remote.url
                    ))
                })?
        }
    };
    let show = json_of(
        remote,
        remote
            .request(reqwest::Method::POST, "/api/show")
            .json(&json!({ "model": model })),
    )
    .await?;
    let template = show["template"].as_str().unwrap_or("").trim();
    let format = match template.is_empty() || template == "{{ .Prompt }}" {
        true => PromptFormat::Completion,
        false => PromptFormat::ChatTemplate,
    };
    let context = show["model_info"]
        .as_object()
        .and_then(|info| {
            info.iter()
                .find(|(k, _)| k.ends_with(".context_length"))
                .and_then(|(_, v)| v.as_u64())
        })
        .unwrap_or(0);
    Ok(Found {
        model,
        format,
        context: u32::try_from(context).unwrap_or(u32::MAX),
    })
}

async fn json_of(remote: &Remote, request: reqwest::RequestBuilder) -> Result<Value, LlmError> {
    remote
        .send(request)
        .await?
        .json()
        .await
        .map_err(|e| LlmError::Remote(format!("{} sent invalid JSON: {e}", remote.url)))
}

pub(super) async fn generate(
    remote: &Remote,
    model: &str,
    request: GenerateRequest,
    tokens: &mpsc::Sender<String>,
    started: Instant,
) -> Result<GenerateStats, LlmError> {
    let options = json!({
        "num_predict": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "seed": request.seed,
        "stop": request.stop,
        "num_ctx": remote.context,
    });
    let (path, body) = match &request.prompt {
        Prompt::Chat(messages) => (
            "/api/chat",
            json!({ "model": model, "messages": messages, "stream": true,
                    "keep_alive": KEEP_ALIVE, "options": options }),
        ),
        Prompt::Completion(text) => (
            "/api/generate",
            json!({ "model": model, "prompt": text, "raw": true, "stream": true,
                    "keep_alive": KEEP_ALIVE, "options": options }),
        ),
    };
    let request = remote.request(reqwest::Method::POST, path).json(&body);
    let response = remote.send_generation(request, started).await?;
    remote.read_lines(response, read, tokens, started).await
}

/// One line of Ollama's NDJSON stream.
fn read(line: &str) -> Result<Option<Piece>, LlmError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let chunk: Value = serde_json::from_str(line).map_err(|e| {
        LlmError::Remote(format!(
            "the server sent a line that is not JSON ({e}): {}",
            excerpt(line)
        ))
    })?;
    if let Some(error) = chunk["error"].as_str() {
        return Err(LlmError::Remote(format!(
            "the server failed mid-answer: {error}"
        )));
    }
    if chunk["done"] == json!(true) {
        let count = |v: &Value| {
            v.as_u64()
                .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        let generated = count(&chunk["eval_count"]);
        let eval_ns = chunk["eval_duration"].as_f64().unwrap_or(0.0);
        return Ok(Some(Piece::Done(GenerateStats {
            prompt_tokens: count(&chunk["prompt_eval_count"]),
            cached_tokens: 0,
            generated_tokens: generated,
            first_token_ms: 0.0,
            tokens_per_sec: match eval_ns > 0.0 {
                true => f64::from(generated) / (eval_ns / 1e9),
                false => 0.0,
            },
            finish: match chunk["done_reason"].as_str() {
                Some("length") => Finish::Length,
                _ => Finish::Stop,
            },
        })));
    }
    let text = chunk["message"]["content"]
        .as_str()
        .or_else(|| chunk["response"].as_str());
    Ok(text.map(|t| Piece::Text(t.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_and_generate_lines_give_text_then_the_end() {
        let Some(Piece::Text(t)) =
            read(r#"{"message":{"role":"assistant","content":"Hi"},"done":false}"#).unwrap()
        else {
            panic!("a chat piece");
        };
        assert_eq!(t, "Hi");
        let Some(Piece::Text(t)) = read(r#"{"response":" there","done":false}"#).unwrap() else {
            panic!("a generate piece");
        };
        assert_eq!(t, " there");
        let done = r#"{"done":true,"done_reason":"length","prompt_eval_count":9,"eval_count":4,"eval_duration":200000000}"#;
        let Some(Piece::Done(stats)) = read(done).unwrap() else {
            panic!("the end");
        };
        assert_eq!((stats.prompt_tokens, stats.generated_tokens), (9, 4));
        assert_eq!(stats.finish, Finish::Length);
        assert_eq!(stats.tokens_per_sec, 20.0);
        let e = read(r#"{"error":"model not found"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("model not found"), "{e}");
        assert!(read("<html>").is_err());
    }
}
