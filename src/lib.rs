//! voxd: a private, offline voice assistant daemon.
//!
//! # Layout
//!
//! - [`config`]: built-in defaults, hardware profiles, user file, `VOXD_*`
//!   environment and flags merged into one typed [`config::Config`], with the
//!   origin of every value.
//! - [`control`]: the control plane: the Unix socket server, the one JSON-lines
//!   protocol type, and one handler per command.
//! - [`engine`]: the engine host that supervises worker processes (`voxd-stt`,
//!   `voxd-llm`): spawn on demand, framed stdio, health checks, restart with
//!   backoff, idle stop, memory budget.
//! - [`models`]: the model manifest and the on-disk model store; `pull`
//!   downloads, verifies and installs model files atomically.
//! - [`llm`]: the language-model contract: prompts, generation requests and
//!   streamed results behind the [`llm::Llm`] trait; [`llm::LocalLlm`] runs
//!   it in the `voxd-llm` worker (llama.cpp).
//! - [`events`]: the in-process event bus that the socket streams to subscribers.
//! - [`daemon`]: `voxd serve`: start-up, single-instance lock, signals and
//!   graceful shutdown.
//! - [`cli`]: the client side of the `voxd` binary, one file per command.
//!
//! Engine workers are separate binaries in `workers/` that speak the framed
//! protocol of the `voxd-proto` crate; `voxd` itself links no ggml engine.

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod engine;
pub mod events;
pub mod llm;
pub mod models;
