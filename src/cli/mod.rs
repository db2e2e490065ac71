//! The client side of the `voxd` binary, one file per command.

pub mod models;
