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
