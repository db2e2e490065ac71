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
//! - [`pipeline`]: the assistant's turn: built-in intents, else `ask`; the
//!   reply spoken while it is written; barge-in; the voice loop that
//!   answers the listener's transcripts; per-stage timings.
//! - [`events`]: the in-process event bus that the socket streams to subscribers.
//! - [`dbus`]: the D-Bus interface `io.github.voxd.Assistant1`, mirroring the
//!   socket commands as methods and the events as signals.
//! - [`metrics`]: the metric registry, Prometheus text output and the
//!   optional loopback HTTP endpoint (`/metrics`, `/health`).
//! - [`service`]: systemd/launchd user-service install, and the daemon's
//!   side of systemd's notify protocol (READY, WATCHDOG, STOPPING).
//! - [`daemon`]: `voxd serve`: start-up, single-instance lock, signals and
//!   graceful shutdown.
//! - [`cli`]: the client side of the `voxd` binary, one file per command.
//!
//! Engine workers are separate binaries in `workers/` that speak the framed
//! protocol of the `voxd-proto` crate; `voxd` itself links no ggml engine.

pub mod audio;
pub mod cli;
pub mod config;
pub mod control;
pub mod conversation;
pub mod daemon;
pub mod dbus;
pub mod engine;
pub mod events;
pub mod listen;
pub mod llm;
pub mod metrics;
pub mod models;
pub mod onnx;
pub mod pipeline;
pub mod rag;
pub mod service;
pub mod speak;
pub mod stt;
pub mod vision;
