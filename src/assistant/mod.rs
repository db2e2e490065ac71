//! The assistant: voxd's typed core, which every door calls.
//!
//! [`Assistant`] is the handle over the domain services (engines, speech,
//! listening, notes, history, images) and the three things voxd *does*
//! with them:
//! - [`Assistant::ask`] (`ask.rs`): answer a question from the notes,
//!   streaming its text as [`AskEvent`]s;
//! - [`Assistant::respond`] (`turn.rs`): one turn on something the user said
//!   or typed: a built-in [`intent`], a user's [`commands`] or `ask`, the reply spoken sentence by
//!   sentence while it is written, timed stage by stage;
//! - [`voice_loop::run`]: the voice loop, which answers what the listener
//!   hears.
//!
//! Invariants (see `docs/architecture.md`): this module imports no door
//! (`crate::doors`) and no wire type (`crate::api`); its requests, replies
//! and errors are plain Rust types, and [`AssistantError`] has a domain
//! [`crate::error::ErrorKind`], never a wire code.

mod ask;
pub mod commands;
mod error;
mod events;
pub mod intent;
mod transcribe;
mod turn;
pub mod voice_loop;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use ask::{Answerer, AskEvent, AskReply, AskRequest, AskSettings, Notes, ResetReason};
pub use commands::UserCommands;
pub use error::AssistantError;
pub use events::AssistantEvent;
pub use transcribe::Transcribed;
pub use turn::{Reply, Request, Said, Timings};

use crate::config::Loaded;
use crate::conversation::History;
use crate::engine;
use crate::events::Events;
use crate::listen::Listener;
use crate::llm::Llm;
use crate::metrics::{LlmBackendSample, Metrics, Sample};
use crate::rag::Rag;
use crate::speak::Speaker;
use crate::stt::Stt;
use crate::vision::Vision;

/// The domain services the assistant works with; see [`Assistant::new`].
pub struct Services {
    /// The effective configuration and its origins.
    pub config: Loaded,
    pub events: Events,
    /// The engine worker supervisor.
    pub engines: engine::Host,
    /// Spoken replies: the speech queue and its cancel API.
    pub speaker: Speaker,
    /// The listening loop: microphone, wake words, VAD, utterances.
    pub listener: Listener,
    pub stt: Arc<dyn Stt>,
    /// The language model: the daemon's is [`crate::llm::LocalLlm`] (the
    /// `voxd-llm` worker through `engines`).
    pub llm: Arc<dyn Llm>,
    /// Retrieval over the notes folders.
    pub rag: Arc<Rag>,
    /// Conversation sessions, or why their database cannot be used.
    pub history: Result<Arc<History>, String>,
    /// Image captions: the captioner, its store and the folder watcher's results.
    pub vision: Arc<Vision>,
    /// The metric registry; see [`crate::metrics`] to add metrics.
    pub metrics: Metrics,
    /// Cancelled when the daemon begins to shut down.
    pub shutdown: CancellationToken,
}

/// The assistant: the domain services and what voxd does with them.
/// Shared as `Arc<Assistant>` by every door; its services are reached
/// through it (`assistant.rag`, `assistant.speaker`, ...).
pub struct Assistant {
    services: Services,
    /// When the daemon started, for `uptime`.
    started: Instant,
    answerer: Answerer,
    /// The user's commands (`commands.toml`).
    commands: Arc<UserCommands>,
}

/// The assistant *is* its services plus what it does with them: doors and
/// the voice loop read a service as `assistant.rag`.
impl std::ops::Deref for Assistant {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

impl Assistant {
    pub fn new(services: Services) -> Assistant {
        let answerer = Answerer::new(
            services.llm.clone(),
            services.rag.clone(),
            services.history.as_ref().ok().cloned(),
            AskSettings::from_config(&services.config.config),
        );
        // No path (neither HOME nor XDG_CONFIG_HOME): an empty path, which
        // holds no commands and is not watched.
        let commands =
            UserCommands::path_from_config(&services.config.config.assistant).unwrap_or_default();
        let commands = Arc::new(UserCommands::open(commands, services.events.clone()));
        Assistant {
            services,
            started: Instant::now(),
            answerer,
            commands,
        }
    }

    /// The user's commands, to list, test or reload (and watch).
    pub fn commands(&self) -> &Arc<UserCommands> {
        &self.commands
    }

    /// How long the daemon has run.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Answers a question (see [`Answerer::ask`]), sending its text to `events` as it
    /// is made; cancelling `cancel` stops it.
    pub async fn ask(
        &self,
        request: AskRequest,
        events: &mpsc::UnboundedSender<AskEvent>,
        cancel: &CancellationToken,
    ) -> Result<AskReply, AssistantError> {
        self.answerer.ask(request, events, cancel).await
    }

    /// Stores a question and its answer as a turn of conversation `session`.
    pub async fn remember(&self, session: &str, question: &str, answer: &str) {
        self.answerer.remember(session, question, answer).await
    }

    /// The conversation session that turns use when the caller names none
    /// (`assistant.session`; `None` when that is empty).
    pub fn default_session(&self) -> Option<String> {
        Some(self.config.config.assistant.session.clone()).filter(|s| !s.is_empty())
    }

    /// Starts a graceful shutdown: tells subscribers why, then cancels
    /// [`Services::shutdown`] so that every door stops taking work.
    pub fn begin_shutdown(&self, reason: &str) {
        if self.shutdown.is_cancelled() {
            return;
        }
        tracing::info!(reason, "shutting down");
        self.events.publish(AssistantEvent::Shutdown {
            reason: reason.to_string(),
        });
        self.shutdown.cancel();
    }

    /// The daemon's state for a metrics scrape.
    pub fn metrics_sample(&self) -> Sample {
        Sample {
            uptime: self.uptime(),
            daemon_rss_bytes: self.engines.daemon_rss_bytes(),
            budget: self.engines.budget(),
            engines: self.engines.status(),
            connections_open: self.metrics.traffic.connections(),
            requests_in_flight: self.metrics.traffic.in_flight(),
            llm_backends: self
                .llm
                .status()
                .backends
                .into_iter()
                .map(|b| LlmBackendSample {
                    up: b.state != "down",
                    name: b.name,
                    requests: b.requests,
                    failures: b.failures,
                    fallbacks: b.fallbacks,
                })
                .collect(),
        }
    }
}
