//! The language model worker's (`voxd-llm`) requests and replies: the JSON
//! data of its frames, shared by the daemon (`voxd::llm`, which sends them)
//! and the worker (which serves them). Each request and reply type names
//! its frame type as `KIND`; the worker's crate docs describe the protocol.
//!
//! A request names the model it runs on ([`ModelParams`]); the worker keeps
//! that model loaded while requests name the same one.
//!
//! | request | reply frames |
//! |---|---|
//! | [`LoadJob`] | `done` with [`ModelInfo`] |
//! | [`GenerateJob`] | [`Token`] frames, then `done` with [`GenerateStats`] |
//! | [`BenchJob`] | `done` with [`BenchStats`] |

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The model a request runs on, and how to run it (from `engines.llm`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    /// The GGUF file.
    pub path: PathBuf,
    pub threads: u32,
    /// Context size in tokens.
    pub context: u32,
    pub batch: u32,
    #[serde(default)]
    pub gpu_layers: u32,
    /// A llama.cpp template name (`chatml`, `gemma`, ...) or template text
    /// for models whose file has none; `None` uses the file's own.
    #[serde(default)]
    pub chat_template: Option<String>,
    /// A folder where the KV cache outlives the worker; `None` keeps
    /// nothing on disk.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
}

/// What the model is asked to continue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Prompt {
    /// Raw text the model continues as is: base models, and voxd's own
    /// completion-style grounded prompt.
    Completion(String),
    /// Chat messages, rendered with the model's own chat template. A model
    /// without a template refuses this (never a silent fallback).
    Chat(Vec<ChatMessage>),
}

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

/// Who speaks a chat turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

impl ChatRole {
    /// The role's name, as chat templates and the JSON spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatRole::System => "system",
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
        }
    }
}

/// Loads the model (if not yet); replied to with [`ModelInfo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadJob {
    pub model: ModelParams,
}

impl LoadJob {
    /// The request's frame type.
    pub const KIND: &'static str = "load";
}

/// Generates text: [`Token`] frames, then [`GenerateStats`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateJob {
    pub model: ModelParams,
    pub prompt: Prompt,
    /// Upper bound on generated tokens (the context's room caps it too).
    pub max_tokens: u32,
    /// 0 means greedy decoding.
    #[serde(default)]
    pub temperature: f32,
    #[serde(default = "one")]
    pub top_p: f32,
    /// Generation stops before any of these strings; they are not sent.
    #[serde(default)]
    pub stop: Vec<String>,
    #[serde(default)]
    pub seed: u32,
    /// Conversation id, named in the worker's log.
    #[serde(default)]
    pub session: Option<String>,
}

impl GenerateJob {
    /// The request's frame type.
    pub const KIND: &'static str = "generate";
}

fn one() -> f32 {
    1.0
}

/// llama-bench's pp and tg tests on the worker's context; replied to with
/// [`BenchStats`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchJob {
    pub model: ModelParams,
    /// Prompt tokens decoded in batches (pp); 0 skips the test.
    pub n_prompt: u32,
    /// Tokens decoded one by one (tg); 0 skips the test.
    pub n_gen: u32,
    /// Timed runs of each test, after one warm-up run.
    #[serde(default = "three")]
    pub repetitions: u32,
}

impl BenchJob {
    /// The request's frame type.
    pub const KIND: &'static str = "bench";
}

fn three() -> u32 {
    3
}

/// A piece of generated text, streamed while a [`GenerateJob`] runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub text: String,
}

impl Token {
    /// The reply frame's type.
    pub const KIND: &'static str = "token";
}

/// How prompts are rendered for the loaded model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptFormat {
    /// The chat template stored in the model file (or named in config).
    ChatTemplate,
    /// No template: voxd's completion-style prompts only.
    Completion,
}

/// The loaded model: the `done` of a [`LoadJob`], and what `status` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// `general.name` from the GGUF, else the file name.
    pub name: String,
    pub path: String,
    /// e.g. `Q4_K_M`, when the file says.
    pub quantization: Option<String>,
    pub parameters: Option<u64>,
    /// Context size in tokens.
    pub context: u32,
    pub prompt_format: PromptFormat,
    /// Where the chat template comes from: `model` (the GGUF) or `config`
    /// (`engines.llm.chat_template`); `None` without one.
    #[serde(default)]
    pub chat_template: Option<String>,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// End of sequence or a stop string.
    Stop,
    /// `max_tokens` reached (or the context is full).
    Length,
    /// The caller cancelled.
    Cancelled,
}

/// Figures of one finished generation: the `done` of a [`GenerateJob`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateStats {
    pub prompt_tokens: u32,
    /// Prompt tokens served from the KV cache instead of being processed.
    pub cached_tokens: u32,
    pub generated_tokens: u32,
    pub first_token_ms: f64,
    pub tokens_per_sec: f64,
    pub finish: Finish,
}

/// Mean speeds of a [`BenchJob`], with the settings they were measured at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchStats {
    pub n_prompt: u32,
    pub n_gen: u32,
    pub threads: u32,
    pub batch: u32,
    /// Prompt processing; `None` when `n_prompt` was 0.
    pub pp_tokens_per_sec: Option<f64>,
    /// Token generation; `None` when `n_gen` was 0.
    pub tg_tokens_per_sec: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params() -> ModelParams {
        ModelParams {
            path: "/models/gemma.gguf".into(),
            threads: 4,
            context: 2048,
            batch: 512,
            gpu_layers: 0,
            chat_template: None,
            cache_dir: None,
        }
    }

    #[test]
    fn a_generate_job_is_written_as_the_worker_reads_it() {
        let job = GenerateJob {
            model: params(),
            prompt: Prompt::Chat(vec![ChatMessage {
                role: ChatRole::User,
                content: "Hi".into(),
            }]),
            max_tokens: 8,
            temperature: 0.0,
            top_p: 1.0,
            stop: vec!["\n".into()],
            seed: 7,
            session: None,
        };
        let data = serde_json::to_value(&job).unwrap();
        assert_eq!(
            data,
            json!({
                "model": {
                    "path": "/models/gemma.gguf", "threads": 4, "context": 2048,
                    "batch": 512, "gpu_layers": 0, "chat_template": null, "cache_dir": null,
                },
                "prompt": {"kind": "chat", "value": [{"role": "user", "content": "Hi"}]},
                "max_tokens": 8, "temperature": 0.0, "top_p": 1.0,
                "stop": ["\n"], "seed": 7, "session": null,
            })
        );
        assert_eq!(serde_json::from_value::<GenerateJob>(data).unwrap(), job);
    }

    #[test]
    fn requests_default_their_optional_fields_and_refuse_unknown_ones() {
        let model = json!({"path": "/m.gguf", "threads": 1, "context": 64, "batch": 8});
        let job: GenerateJob = serde_json::from_value(json!({
            "model": model,
            "prompt": {"kind": "completion", "value": "Once"},
            "max_tokens": 2,
        }))
        .unwrap();
        assert_eq!((job.temperature, job.top_p, job.seed), (0.0, 1.0, 0));
        assert!(job.stop.is_empty() && job.session.is_none());
        assert_eq!(job.model.gpu_layers, 0);
        let bench: BenchJob =
            serde_json::from_value(json!({"model": model, "n_prompt": 1, "n_gen": 1})).unwrap();
        assert_eq!(bench.repetitions, 3);
        assert!(serde_json::from_value::<LoadJob>(json!({"model": model, "x": 1})).is_err());
    }

    #[test]
    fn role_names_match_their_json() {
        for role in [ChatRole::System, ChatRole::User, ChatRole::Assistant] {
            assert_eq!(serde_json::to_value(role).unwrap(), json!(role.as_str()));
        }
    }
}
