//! The control socket: a Unix socket (0600, in a 0700 directory) that
//! speaks the JSON-lines protocol of [`crate::doors::commands`]. It owns
//! the listener ([`Server`]), each connection's framing, limits and
//! ordering, and where the socket lives ([`paths`]).

mod connection;
pub mod paths;
mod server;

pub use server::Server;
