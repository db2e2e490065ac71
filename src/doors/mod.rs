//! The doors: every way into voxd. Each door parses what its transport
//! carries, calls the [`crate::assistant::Assistant`] (or a service it
//! holds), and encodes the result; none decides anything itself.
//!
//! - [`commands`]: the JSON command set, one file per command, shared by
//!   the socket and D-Bus;
//! - [`socket`]: the control socket (JSON lines over a Unix socket);
//! - [`dbus`]: the `io.github.voxd.Assistant1` D-Bus interface;
//! - [`http`]: the HTTP API: OpenAI and Ollama dialects, `/v1/voxd/`, `/health`, `/metrics`;
//! - [`wyoming`]: the Wyoming server for Home Assistant (speech to text,
//!   text to speech, wake words, answers).
//!
//! The voice loop is the fourth way in; it lives in the core
//! ([`crate::assistant::voice_loop`]) because it has no transport.
//!
//! Invariants (see `docs/architecture.md`): nothing outside `doors`, the
//! composition root (`crate::daemon`) and the CLI imports a door; a door
//! shares wire types through [`crate::api`]. Adding a door is one folder
//! here plus one spawn in `crate::daemon`.

pub mod commands;
pub mod dbus;
pub mod http;
pub mod socket;
pub mod wyoming;
