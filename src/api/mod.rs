//! The types every door shares: the wire error ([`ApiError`] with its
//! [`ErrorCode`]), the one mapping from domain errors to it, and the
//! request and reply types of the assistant's commands ([`ask`]). Doors
//! (socket, D-Bus, HTTP, ...) and the CLI use these instead of writing
//! JSON by hand: only this layer and the doors know JSON.
//!
//! Invariant: `api` imports the core (`assistant`) and the services' error
//! types, never a door. See `docs/architecture.md`.

pub mod ask;
mod error;

pub use error::{ApiError, ErrorCode};
