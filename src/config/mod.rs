//! Configuration: the built-in defaults (`config/voxd.toml`), hardware
//! profiles (`config/profiles/`), the user's file, `VOXD_*` environment
//! variables and command-line flags, merged into one [`Config`] with the
//! origin of every value. Owns parsing and validation only; it touches no
//! other module.

mod schema;

pub use schema::*;

/// The built-in defaults, compiled in.
pub const DEFAULTS_TOML: &str = include_str!("../../config/voxd.toml");

impl Config {
    /// The built-in defaults with no profile, user file or environment applied.
    pub fn builtin() -> Config {
        toml::from_str(DEFAULTS_TOML).expect("config/voxd.toml is valid (checked by tests)")
    }
}
