//! voxd: a private, offline voice assistant daemon.
//!
//! The layers, their invariants (what each may not import) and a code map
//! are in `docs/architecture.md`; `tests/architecture.rs` checks them.
//!
//! # Layout
//!
//! - [`assistant`]: the typed core every door calls: [`assistant::Assistant`]
//!   over the domain services, `ask` (retrieve → prompt → generate → support
//!   check → citations), a turn (`respond`: intents, the reply spoken while
//!   it is written, timings) and the voice loop. No door, no wire type.
//! - [`api`]: what the doors share: the wire error and its one mapping from
//!   domain errors, and the request and reply types of the commands.
//! - [`doors`]: every way in: the command set, the control socket, D-Bus
//!   and the HTTP endpoint. Each parses, calls the assistant, and encodes.
//! - [`error`]: the domain's error kinds, which every service error names.
//!
//! - [`config`]: built-in defaults, hardware profiles, user file, `VOXD_*`
//!   environment and flags merged into one typed [`config::Config`], with the
//!   origin of every value.
//! - [`engine`]: the engine host that supervises worker processes (`voxd-stt`,
//!   `voxd-llm`): spawn on demand, framed stdio, health checks, restart with
//!   backoff, idle stop, memory budget.
//! - [`models`]: the model manifest and the on-disk model store; `pull`
//!   downloads, verifies and installs model files atomically.
//! - [`stt`]: speech to text: the [`stt::Stt`] contract, WAV reading and
//!   resampling to 16 kHz mono, and the local backend that runs whisper.cpp
//!   in the `voxd-stt` worker.
//! - [`llm`]: the language-model contract: prompts, generation requests and
//!   streamed results behind the [`llm::Llm`] trait; [`llm::LocalLlm`] runs
//!   it in the `voxd-llm` worker (llama.cpp).
//! - [`speak`]: spoken replies: the sentence splitter, Piper voices on ONNX
//!   Runtime with espeak-ng phonemes, and the playback queue with its
//!   cancel API (`stop`).
//! - [`audio`]: audio in (the `Source` trait: capture device, WAV file,
//!   socket PCM, streaming conversion to 16 kHz mono) and audio out (the
//!   `Sink` trait and its sinks: sound device via cpal, WAV file, socket
//!   events), resampling.
//! - [`listen`]: voxd's ear: audio sources → wake words (openWakeWord) +
//!   VAD (Silero) → utterance endpointing → transcription, with the
//!   [`listen::Listener`] handle (follow-ups, echo gate).
//! - [`onnx`]: ONNX Runtime, found and loaded once for every ONNX model.
//! - [`rag`]: retrieval over the notes folders: chunking, in-process
//!   sentence embeddings, the SQLite index (FTS5 + vectors), hybrid ranking,
//!   the folder watcher and grounded answers with citations.
//! - [`conversation`]: session history in SQLite, trimmed to the context
//!   budget.
//! - [`vision`]: image captions: BLIP on candle, image decoding, the folder
//!   watcher and the caption store; captions feed the notes index.
//! - [`events`]: the in-process event bus that observers (socket
//!   subscribers, D-Bus signals) follow.
//! - [`metrics`]: the metric registry and the Prometheus text output.
//! - [`service`]: systemd/launchd user-service install, and the daemon's
//!   side of systemd's notify protocol (READY, WATCHDOG, STOPPING).
//! - [`daemon`]: `voxd serve`, the composition root: builds the services
//!   and the assistant, opens the doors; single-instance lock, signals and
//!   graceful shutdown.
//! - [`cli`]: the client side of the `voxd` binary, one file per command.
//!
//! Engine workers are separate binaries in `workers/` that speak the framed
//! protocol of the `voxd-proto` crate; `voxd` itself links no ggml engine.

pub mod api;
pub mod assistant;
pub mod audio;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod daemon;
pub mod doors;
pub mod engine;
pub mod error;
pub mod events;
pub mod folders;
pub mod listen;
pub mod llm;
pub mod metrics;
pub mod models;
pub mod onnx;
pub mod private;
pub mod rag;
pub mod service;
pub mod speak;
pub mod stt;
pub mod vision;
