//! The typed configuration. Field docs live in `config/voxd.toml`, which is
//! also where every default value comes from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The effective configuration after all layers are merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub profile: Profile,
    pub daemon: DaemonConfig,
    pub models: ModelsConfig,
    pub engines: EnginesConfig,
    pub onnx: OnnxConfig,
    pub tts: TtsConfig,
    pub audio: AudioConfig,
    pub stt: SttConfig,
    pub listen: ListenConfig,
    pub dbus: DbusConfig,
    pub http: HttpConfig,
    pub metrics: MetricsConfig,
    pub wyoming: WyomingConfig,
    pub rag: RagConfig,
    pub conversation: ConversationConfig,
    pub assistant: AssistantConfig,
    pub vision: VisionConfig,
}

/// The hardware profiles shipped in `config/profiles/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Profile {
    #[serde(rename = "tiny")]
    Tiny,
    #[serde(rename = "2gb")]
    TwoGb,
    #[serde(rename = "8gb")]
    EightGb,
    #[serde(rename = "workstation")]
    Workstation,
}

impl Profile {
    pub const ALL: [Profile; 4] = [
        Profile::Tiny,
        Profile::TwoGb,
        Profile::EightGb,
        Profile::Workstation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Tiny => "tiny",
            Profile::TwoGb => "2gb",
            Profile::EightGb => "8gb",
            Profile::Workstation => "workstation",
        }
    }

    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Empty: the per-user default (see `control::paths::socket_path`).
    pub socket: PathBuf,
    pub log_level: String,
    pub shutdown_grace_secs: u64,
    /// Control-socket clients connected at once; more are refused.
    pub max_connections: usize,
    /// Requests of one connection running at once; its next lines wait.
    pub max_requests_per_connection: usize,
    /// A client that takes longer than this to take a reply is dropped.
    pub write_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// Empty: `$XDG_DATA_HOME/voxd/models`.
    pub dir: PathBuf,
    /// Empty: the manifest compiled into voxd.
    pub manifest: PathBuf,
    pub sources: Vec<SourceKind>,
    pub stt: Vec<String>,
    pub llm: Vec<String>,
    pub tts: Vec<String>,
    pub vad: Vec<String>,
    pub wake: Vec<String>,
    pub embed: Vec<String>,
}

/// Speech to text (`[stt]`); the worker's threads are `engines.stt.threads`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SttConfig {
    /// Empty: the installed model of `models.stt`. Else a store id or a path
    /// to a whisper.cpp ggml file.
    pub model: String,
    pub language: String,
    pub initial_prompt: String,
    /// Size whisper's encoder window to the utterance, not 30 s.
    pub fit_audio_ctx: bool,
    pub audio_ctx_margin_ms: u32,
    /// The smallest fitted window (whisper repeats itself on tiny ones).
    pub audio_ctx_min_ms: u32,
    pub partial_interval_ms: u32,
}

/// The microphone loop (`[listen]`): audio input, VAD, wake words and
/// utterance endpointing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// A source name from `audio::SOURCES`.
    pub input: String,
    pub device: String,
    pub file: PathBuf,
    pub start: bool,
    /// Wake word names in the `models.wake` model, or paths to classifiers.
    pub wake_words: Vec<String>,
    pub wake_threshold: f32,
    pub wake_refractory_ms: u64,
    /// Wake phrases as text, checked in a Whisper pass on speech heard
    /// while asleep.
    pub wake_phrases: Vec<String>,
    pub wake_phrase_similarity: f32,
    pub vad_threshold: f32,
    pub vad_neg_threshold: f32,
    pub min_speech_ms: u64,
    pub hangover_ms: u64,
    /// Silence after speech after which the utterance is transcribed ahead
    /// of its end (0: off).
    pub early_transcribe_ms: u64,
    pub preroll_ms: u64,
    pub wake_timeout_ms: u64,
    pub max_utterance_secs: u64,
    pub gate_while_speaking: bool,
    pub threads: u32,
}

/// Where model files can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The Hugging Face hub.
    Hf,
    /// A package on PyPI that ships the weights.
    Pypi,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnginesConfig {
    pub memory_budget_mb: u64,
    pub idle_unload_secs: u64,
    pub health_interval_secs: u64,
    pub health_timeout_secs: u64,
    pub restart_backoff_initial_ms: u64,
    pub restart_backoff_max_ms: u64,
    pub stt: SttEngineConfig,
    pub llm: LlmEngineConfig,
}

/// How to start an engine worker and what it costs, as the engine host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Empty: the default worker binary beside `voxd`, then on `$PATH`.
    pub command: PathBuf,
    pub args: Vec<String>,
    pub memory_mb: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SttEngineConfig {
    pub command: PathBuf,
    pub args: Vec<String>,
    pub memory_mb: u64,
    pub threads: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmEngineConfig {
    pub command: PathBuf,
    pub args: Vec<String>,
    pub memory_mb: u64,
    pub threads: u32,
    pub context: u32,
    pub batch: u32,
    pub gpu_layers: u32,
    pub max_tokens: u32,
    /// Empty: the model store's `llm` role.
    pub model: PathBuf,
    /// Empty: the GGUF's own chat template, if any.
    pub chat_template: String,
    /// Keep the KV cache on disk across worker restarts.
    pub persist_cache: bool,
    /// Where the model runs.
    pub backend: LlmBackend,
    /// A remote backend's base URL.
    pub url: String,
    /// The remote server's model; empty: the first it lists.
    pub remote_model: String,
    /// A file holding the remote server's API key; empty: `$OPENAI_API_KEY`
    /// for `openai`, else none.
    pub api_key_file: PathBuf,
    /// Backends tried in order while `backend` is down.
    pub fallback: Vec<LlmBackend>,
    /// How long a remote server may take to send its first token.
    pub first_token_timeout_secs: u64,
    /// How long a failed backend is left alone before it is tried again
    /// (doubling with each failure, up to ten minutes).
    pub retry_secs: u64,
    /// How prompts are sent to a remote server.
    pub prompt_format: RemotePromptFormat,
}

/// Where the language model runs (`engines.llm.backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmBackend {
    /// The `voxd-llm` worker on this machine.
    Local,
    /// An OpenAI-compatible server: llama-server, vLLM.
    OpenAi,
    /// An Ollama server.
    Ollama,
}

impl LlmBackend {
    pub fn name(self) -> &'static str {
        match self {
            LlmBackend::Local => "local",
            LlmBackend::OpenAi => "openai",
            LlmBackend::Ollama => "ollama",
        }
    }
}

/// How voxd sends prompts to a remote server (`engines.llm.prompt_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemotePromptFormat {
    /// Ask the server whether its model has a chat template (llama-server's
    /// `/props`, Ollama's `/api/show`); chat where it cannot say.
    Auto,
    /// Chat messages, rendered by the server's template.
    Chat,
    /// voxd's completion-style prompt (`/v1/completions`, `raw` on Ollama).
    Completion,
}

impl EnginesConfig {
    /// The worker settings of each engine, by engine name.
    pub fn workers(&self) -> [(&'static str, WorkerConfig); 2] {
        [
            (
                "stt",
                WorkerConfig {
                    command: self.stt.command.clone(),
                    args: self.stt.args.clone(),
                    memory_mb: self.stt.memory_mb,
                },
            ),
            (
                "llm",
                WorkerConfig {
                    command: self.llm.command.clone(),
                    args: self.llm.args.clone(),
                    memory_mb: self.llm.memory_mb,
                },
            ),
        ]
    }
}

/// ONNX Runtime, shared by every ONNX model voxd runs (TTS, VAD, wake word).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxConfig {
    /// Empty: `ORT_DYLIB_PATH`, beside the voxd binary, then the bootstrap cache.
    pub library: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtsConfig {
    /// Empty: the first installed model of `models.tts`.
    pub voice: String,
    pub speaker: i64,
    pub speed: f32,
    pub volume: f32,
    /// Scales the voice's noise_scale and noise_w (0: deterministic speech).
    pub variation: f32,
    pub sentence_silence_ms: u32,
    pub threads: u32,
    /// Empty: see `speak::espeak::data_dir`.
    pub espeak_data: PathBuf,
    pub max_text_bytes: usize,
    /// How far synthesis may run ahead of playback, in milliseconds of audio.
    pub lookahead_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioConfig {
    /// A sink name from `audio::SINKS`.
    pub output: String,
    pub device: String,
    pub file: PathBuf,
}

/// The D-Bus interface (`[dbus]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbusConfig {
    pub bus: DbusBus,
}

/// Which D-Bus bus voxd offers its interface on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbusBus {
    /// The user's session bus (`$DBUS_SESSION_BUS_ADDRESS`).
    Session,
    /// The system bus (needs a bus policy that lets voxd own its name).
    System,
    /// No D-Bus interface.
    Off,
}

/// The HTTP API (`[http]`, `src/doors/http`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `host:port`; empty: no HTTP API.
    pub listen: String,
    /// Empty: `$XDG_CONFIG_HOME/voxd/http.token`.
    pub token_file: PathBuf,
    pub max_body_bytes: u64,
    pub max_audio_secs: u64,
    pub max_connections: usize,
    pub header_timeout_secs: u64,
    pub body_timeout_secs: u64,
    /// Browser origins allowed to call the API (CORS); empty: none.
    pub cors_origins: Vec<String>,
}

/// The old home of the HTTP endpoint (`[metrics]`), read for `listen` only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Deprecated spelling of `http.listen`.
    pub listen: String,
    /// Ignored: a non-loopback address needs an HTTP token.
    pub allow_remote: bool,
}

/// The Wyoming server (`[wyoming]`, see `docs/wyoming.md`): voxd's speech
/// to text, text to speech, wake words and answers for Home Assistant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WyomingConfig {
    /// `tcp://host:port` or `unix://PATH`; empty: no Wyoming server.
    pub listen: String,
    /// Allow `listen` on a non-loopback address (Wyoming has no
    /// authentication).
    pub allow_remote: bool,
    /// Connections served at once; more are refused with an error.
    pub max_connections: usize,
    /// Longest event header line, in bytes.
    pub max_header_bytes: usize,
    /// Largest data or payload of one event, in bytes.
    pub max_payload_bytes: usize,
    /// Longest audio of one transcription, in seconds (wake-word streams
    /// keep no audio and are not limited).
    pub max_audio_secs: u64,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout_secs: u64,
}

/// Retrieval over the notes folders and grounded answers (`src/rag`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RagConfig {
    pub enabled: bool,
    pub notes: Vec<PathBuf>,
    /// Empty: `$XDG_DATA_HOME/voxd/index.sqlite`.
    pub index: PathBuf,
    pub answer_mode: AnswerMode,
    pub top_k: usize,
    pub min_score: f32,
    /// Sources scoring below this fraction of the best are left out of the
    /// model's prompt.
    pub prompt_relative_score: f32,
    pub max_file_kb: u64,
    pub debounce_ms: u64,
    pub embed_batch: usize,
    pub embed_workers: usize,
    /// Drop the embedding model after this long unused; 0 keeps it.
    pub idle_unload_secs: u64,
    pub max_answer_tokens: u32,
}

/// How `ask` answers from the notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerMode {
    /// The language model writes the answer from numbered sources; an answer
    /// the sources do not support is replaced by the extractive one.
    Generative,
    /// The best source sentences, quoted with their citation; no model.
    Extractive,
    /// Generative when a model is available and its answer is supported,
    /// extractive otherwise.
    Auto,
}

impl AnswerMode {
    pub fn name(self) -> &'static str {
        match self {
            AnswerMode::Generative => "generative",
            AnswerMode::Extractive => "extractive",
            AnswerMode::Auto => "auto",
        }
    }
}

/// Conversation sessions (`ask --session`, `history`, `forget`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationConfig {
    /// Empty: `$XDG_DATA_HOME/voxd/history.sqlite`.
    pub history: PathBuf,
    pub max_turns: usize,
    /// Days a turn is kept; 0 keeps every turn.
    pub retention_days: u64,
}

/// The assistant's turns (`src/pipeline`): the voice loop and `respond`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssistantConfig {
    pub voice_loop: bool,
    /// Empty: spoken turns keep no history.
    pub session: String,
    pub followup_secs: f64,
    /// Start answering at the early transcript, holding the reply's audio
    /// until the end of the utterance is confirmed.
    pub speculative: bool,
    /// User commands (`docs/commands.md`); empty:
    /// `$XDG_CONFIG_HOME/voxd/commands.toml`.
    pub commands: PathBuf,
}

/// `[vision]`: image captions for watched folders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionConfig {
    pub folders: Vec<PathBuf>,
    /// A manifest id installed in the model store, or a directory (contains `/`).
    pub model: String,
    /// Empty: unconditional captions.
    pub prompt: String,
    pub max_length: u32,
    pub settle_ms: u64,
    pub queue: u32,
    pub max_side: u32,
    pub max_decode_mb: u64,
    pub sidecar: bool,
    pub idle_unload_secs: u64,
    /// Empty: `$XDG_DATA_HOME/voxd/images.db`.
    pub db: PathBuf,
}
