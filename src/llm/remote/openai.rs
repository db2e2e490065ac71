//! The OpenAI dialect (llama-server, vLLM): the model from `/v1/models`,
//! whether it has a chat template from llama-server's `/props` (a server
//! without `/props`, such as vLLM, is taken to have one), and generation as
//! server-sent events from `/v1/chat/completions` (chat prompts) or
//! `/v1/completions` (voxd's completion prompt), with `cache_prompt` so that
//! llama-server reuses the prompt prefix a follow-up shares.

use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{Found, Piece, Remote};
use crate::llm::{Finish, GenerateRequest, GenerateStats, LlmError, Prompt, PromptFormat};

/// The chat template llama.cpp falls back to for a model that has none
/// (`CHATML_TEMPLATE_SRC` in its `common/chat.cpp`): `/props` shows this
/// one for a base model, which voxd then prompts as a completion.
const LLAMA_CPP_FALLBACK_TEMPLATE: &str = "{%- for message in messages -%}\n  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n  {{- '<|im_start|>assistant\n' -}}\n{%- endif -%}";

pub(super) async fn discover(remote: &Remote) -> Result<Found, LlmError> {
    let models: Value = json_of(remote, remote.request(reqwest::Method::GET, "/models")).await?;
    let listed = models["data"]
        .as_array()
        .and_then(|data| data.first())
        .and_then(|m| m["id"].as_str())
        .map(str::to_string);
    let model = remote.model.clone().or(listed).ok_or_else(|| {
        LlmError::Remote(format!(
            "{}/models lists no model; set engines.llm.remote_model",
            remote.url
        ))
    })?;
    // llama-server's `/props` sits beside `/v1`, not under it.
    let root = remote.url.strip_suffix("/v1").unwrap_or(&remote.url);
    let props = remote
        .client
        .get(format!("{root}/props"))
        .send()
        .await
        .ok()
        .filter(|r| r.status().is_success());
    let props: Option<Value> = match props {
        Some(response) => response.json().await.ok(),
        None => None,
    };
    let (format, context) = match props {
        Some(props) => {
            let template = props["chat_template"].as_str().unwrap_or("");
            let format = match template.is_empty() || template == LLAMA_CPP_FALLBACK_TEMPLATE {
                true => PromptFormat::Completion,
                false => PromptFormat::ChatTemplate,
            };
            let context = props["default_generation_settings"]["n_ctx"]
                .as_u64()
                .unwrap_or(0);
            (format, u32::try_from(context).unwrap_or(u32::MAX))
        }
        None => (PromptFormat::ChatTemplate, 0),
    };
    Ok(Found {
        model,
        format,
        context,
    })
}

/// The JSON body of a successful `request`.
async fn json_of(remote: &Remote, request: reqwest::RequestBuilder) -> Result<Value, LlmError> {
    let response = remote.send(request).await?;
    response
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
    let (path, mut body) = match &request.prompt {
        Prompt::Chat(messages) => ("/chat/completions", json!({ "messages": messages })),
        Prompt::Completion(text) => ("/completions", json!({ "prompt": text })),
    };
    let chat = matches!(request.prompt, Prompt::Chat(_));
    let fields = json!({
        "model": model,
        "stream": true,
        "stream_options": { "include_usage": true },
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "seed": request.seed,
        "stop": request.stop,
        "cache_prompt": true,
    });
    if let (Some(body), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
        body.extend(fields.clone());
    }
    let request = remote.request(reqwest::Method::POST, path).json(&body);
    let response = remote.send_generation(request, started).await?;
    let mut end = End::default();
    remote
        .read_lines(response, |line| end.read(line, chat), tokens, started)
        .await
}

/// What the events said so far of the end of the answer.
#[derive(Default)]
struct End {
    finish: Option<Finish>,
    stats: Option<GenerateStats>,
}

impl End {
    /// One line of the event stream.
    fn read(&mut self, line: &str, chat: bool) -> Result<Option<Piece>, LlmError> {
        let Some(data) = line.strip_prefix("data:") else {
            // Blank lines, comments, `event:`/`id:` fields.
            return Ok(None);
        };
        let data = data.trim();
        if data == "[DONE]" {
            let mut stats = self
                .stats
                .take()
                .unwrap_or_else(|| empty_stats(Finish::Stop));
            stats.finish = self.finish.unwrap_or(Finish::Stop);
            return Ok(Some(Piece::Done(stats)));
        }
        let event: Value = serde_json::from_str(data).map_err(|e| {
            LlmError::Remote(format!(
                "the server sent an event that is not JSON ({e}): {}",
                excerpt(data)
            ))
        })?;
        if let Some(error) = event.get("error") {
            let message = error["message"]
                .as_str()
                .map_or_else(|| error.to_string(), str::to_string);
            return Err(LlmError::Remote(format!(
                "the server failed mid-answer: {message}"
            )));
        }
        if let Some(usage) = event.get("usage").filter(|u| u.is_object()) {
            self.stats = Some(stats_of(usage, event.get("timings")));
        }
        let Some(choice) = event["choices"].as_array().and_then(|c| c.first()) else {
            return Ok(None);
        };
        match choice["finish_reason"].as_str() {
            Some("length") => self.finish = Some(Finish::Length),
            Some(_) => self.finish = Some(Finish::Stop),
            None => {}
        }
        let text = match chat {
            true => &choice["delta"]["content"],
            false => &choice["text"],
        };
        Ok(text.as_str().map(|t| Piece::Text(t.to_string())))
    }
}

/// The figures of `usage`, with llama-server's `timings` where it sends them.
fn stats_of(usage: &Value, timings: Option<&Value>) -> GenerateStats {
    let count = |v: &Value| {
        v.as_u64()
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let mut stats = empty_stats(Finish::Stop);
    stats.prompt_tokens = count(&usage["prompt_tokens"]);
    stats.generated_tokens = count(&usage["completion_tokens"]);
    stats.cached_tokens = count(&usage["prompt_tokens_details"]["cached_tokens"]);
    if let Some(t) = timings {
        stats.cached_tokens = stats.cached_tokens.max(count(&t["cache_n"]));
        stats.tokens_per_sec = t["predicted_per_second"].as_f64().unwrap_or(0.0);
    }
    stats
}

fn empty_stats(finish: Finish) -> GenerateStats {
    GenerateStats {
        prompt_tokens: 0,
        cached_tokens: 0,
        generated_tokens: 0,
        first_token_ms: 0.0,
        tokens_per_sec: 0.0,
        finish,
    }
}

/// The start of a bad line, for an error message.
pub(super) fn excerpt(line: &str) -> String {
    let mut s: String = line.chars().take(120).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(piece: Option<Piece>) -> Option<String> {
        match piece {
            Some(Piece::Text(t)) => Some(t),
            _ => None,
        }
    }

    #[test]
    fn chat_and_completion_events_give_text_then_the_end() {
        let mut end = End::default();
        let chunk = r#"data: {"choices":[{"delta":{"content":"Hel"},"finish_reason":null}]}"#;
        assert_eq!(text(end.read(chunk, true).unwrap()).as_deref(), Some("Hel"));
        assert!(end.read("", true).unwrap().is_none());
        assert!(end.read(": keep-alive", true).unwrap().is_none());
        let last = r#"data: {"choices":[{"text":"lo","finish_reason":"length"}]}"#;
        assert_eq!(text(end.read(last, false).unwrap()).as_deref(), Some("lo"));
        let usage = r#"data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2},"timings":{"cache_n":8,"predicted_per_second":40.5}}"#;
        assert!(end.read(usage, true).unwrap().is_none());
        let Some(Piece::Done(stats)) = end.read("data: [DONE]", true).unwrap() else {
            panic!("[DONE] ends the answer");
        };
        assert_eq!(
            (
                stats.prompt_tokens,
                stats.cached_tokens,
                stats.generated_tokens
            ),
            (12, 8, 2)
        );
        assert_eq!(stats.finish, Finish::Length);
        assert_eq!(stats.tokens_per_sec, 40.5);
    }

    #[test]
    fn malformed_events_and_errors_are_clear() {
        let mut end = End::default();
        let e = end.read("data: {not json", true).err().unwrap().to_string();
        assert!(e.contains("not JSON") && e.contains("{not json"), "{e}");
        let e = end
            .read(r#"data: {"error":{"message":"slot unavailable"}}"#, true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("slot unavailable"), "{e}");
    }
}
