//! Configuration: the built-in defaults (`config/voxd.toml`), hardware
//! profiles (`config/profiles/`), the user's file, `VOXD_*` environment
//! variables and command-line flags, merged into one [`Config`] with the
//! origin of every value. Owns parsing and validation only; it touches no
//! other module.
//!
//! Validation is strict and happens before anything starts: a key that is
//! not in the built-in defaults is unknown wherever it appears, and every
//! error names its layer (file and line, or environment variable), the key,
//! and what is allowed.

mod error;
mod layer;
mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use error::ConfigError;
pub use layer::Origin;
pub use schema::*;

use layer::Layer;

/// The built-in defaults, compiled in.
pub const DEFAULTS_TOML: &str = include_str!("../../config/voxd.toml");

/// The shipped profiles, compiled in: (name, file contents).
const PROFILES: [(Profile, &str); 4] = [
    (
        Profile::Tiny,
        include_str!("../../config/profiles/tiny.toml"),
    ),
    (
        Profile::TwoGb,
        include_str!("../../config/profiles/2gb.toml"),
    ),
    (
        Profile::EightGb,
        include_str!("../../config/profiles/8gb.toml"),
    ),
    (
        Profile::Workstation,
        include_str!("../../config/profiles/workstation.toml"),
    ),
];

impl Config {
    /// The built-in defaults with no profile, user file or environment applied.
    pub fn builtin() -> Config {
        toml::from_str(DEFAULTS_TOML).expect("config/voxd.toml is valid (checked by tests)")
    }
}

/// Where to look for configuration besides the built-in defaults.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--config PATH`: replaces the user file, and must exist.
    pub config_file: Option<PathBuf>,
    /// `VOXD_*` variables (name, value); usually [`LoadOptions::env_from_process`].
    pub env: Vec<(String, String)>,
    /// Command-line flags as (dotted key, value), highest precedence.
    pub flags: Vec<(String, toml::Value)>,
}

impl LoadOptions {
    /// The `VOXD_*` variables of this process, except `VOXD_TEST_*`, which
    /// the test harness sets for itself (test model store, test Python).
    pub fn env_from_process() -> Vec<(String, String)> {
        std::env::vars()
            .filter(|(k, _)| k.starts_with("VOXD_") && !k.starts_with("VOXD_TEST_"))
            .collect()
    }
}

/// The merged configuration and where each value came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Dotted key → the layer that set its effective value.
    pub origins: BTreeMap<String, Origin>,
}

impl Loaded {
    /// Every leaf key with its effective value and origin, in key order.
    pub fn entries(&self) -> Vec<(String, toml::Value, &Origin)> {
        let table = toml::Table::try_from(&self.config).expect("config serialises to TOML");
        layer::leaves(&table)
            .into_iter()
            .map(|(key, value)| {
                let origin = &self.origins[&key];
                (key, value.clone(), origin)
            })
            .collect()
    }
}

/// The user's config file: `$XDG_CONFIG_HOME/voxd/voxd.toml` (or
/// `~/.config/voxd/voxd.toml`).
pub fn user_config_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("voxd").join("voxd.toml"))
}

/// Loads and validates the configuration. Nothing is returned unless every
/// layer is valid.
pub fn load(opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let defaults = Layer::parse(Origin::Default, DEFAULTS_TOML)?;

    let file = match &opts.config_file {
        Some(path) => Some(read_file_layer(path)?),
        None => match user_config_path() {
            Some(path) if path.exists() => Some(read_file_layer(&path)?),
            _ => None,
        },
    };
    let env = Layer::from_env(&opts.env, &defaults)?;
    let flags = Layer::from_flags(&opts.flags);

    // The profile is chosen by the layers above it.
    let chosen = [Some(&flags), Some(&env), file.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|l| l.get("profile").map(|v| (l, v)));
    let profile = match chosen {
        Some((layer, value)) => profile_from_value(layer, value)?,
        None => Config::builtin().profile,
    };
    let profile_text = PROFILES
        .iter()
        .find(|(p, _)| *p == profile)
        .map(|(_, text)| *text)
        .expect("every profile is shipped");
    let profile_layer = Layer::parse(Origin::Profile(profile.name().to_string()), profile_text)?;

    let mut merged = defaults.table.clone();
    let mut origins: BTreeMap<String, Origin> = layer::leaves(&defaults.table)
        .into_iter()
        .map(|(k, _)| (k, Origin::Default))
        .collect();
    for layer in [
        Some(&profile_layer),
        file.as_ref(),
        Some(&env),
        Some(&flags),
    ]
    .into_iter()
    .flatten()
    {
        layer.check_keys(&defaults)?;
        layer.check_types(&defaults.table)?;
        for (key, _) in layer::leaves(&layer.table) {
            let origin = layer.origin_of(&key);
            origins.insert(key, origin);
        }
        layer::merge(&mut merged, &layer.table);
    }
    let config = layer::deserialize(&merged).map_err(|(key, message)| ConfigError {
        origin: Origin::Default,
        line: None,
        key: Some(key),
        message,
    })?;
    Ok(Loaded { config, origins })
}

fn read_file_layer(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: Origin::File(path.to_path_buf()),
        line: None,
        key: None,
        message: format!("cannot read the config file: {e}"),
    })?;
    Layer::parse(Origin::File(path.to_path_buf()), &text)
}

fn profile_from_value(layer: &Layer, value: &toml::Value) -> Result<Profile, ConfigError> {
    value.as_str().and_then(Profile::from_name).ok_or_else(|| {
        let allowed: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
        layer.error_at(
            "profile",
            format!("unknown profile {value}; allowed: {}", allowed.join(", ")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts_env(vars: &[(&str, &str)]) -> LoadOptions {
        LoadOptions {
            config_file: Some(PathBuf::from("/dev/null")),
            env: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            flags: vec![],
        }
    }

    #[test]
    fn builtin_defaults_and_every_profile_load() {
        let builtin = Config::builtin();
        assert_eq!(builtin.profile, Profile::Tiny);
        for profile in Profile::ALL {
            let loaded = load(&opts_env(&[("VOXD_PROFILE", profile.name())])).unwrap();
            assert_eq!(loaded.config.profile, profile);
            assert_eq!(
                loaded.origins["profile"],
                Origin::Env("VOXD_PROFILE".into())
            );
        }
    }

    /// What the daemon itself holds once it has spoken (the Piper voice,
    /// MiniLM, openWakeWord and Silero loaded in-process): measured 254 MiB
    /// idle (tests/reliability.rs) and 325 MiB after a turn
    /// (bench/latency.py on the 2gb profile), with some margin.
    const DAEMON_MIB: u64 = 350;

    #[test]
    fn every_budget_holds_the_daemon_beside_each_engine() {
        // An engine that cannot fit beside the daemon alone is refused on
        // every request (the 2gb profile's language model once was).
        for profile in Profile::ALL {
            let c = load(&opts_env(&[("VOXD_PROFILE", profile.name())]))
                .unwrap()
                .config;
            let budget = c.engines.memory_budget_mb;
            if budget == 0 {
                continue;
            }
            for (engine, worker) in c.engines.workers() {
                assert!(
                    DAEMON_MIB + worker.memory_mb <= budget,
                    "{}: engines.{engine}.memory_mb = {} beside a {DAEMON_MIB} MiB daemon exceeds the {budget} MiB budget",
                    profile.name(),
                    worker.memory_mb
                );
            }
        }
    }

    #[test]
    fn profile_values_win_over_defaults_and_say_so() {
        let loaded = load(&opts_env(&[("VOXD_PROFILE", "2gb")])).unwrap();
        assert_eq!(loaded.config.engines.memory_budget_mb, 1700);
        assert_eq!(
            loaded.origins["engines.memory_budget_mb"],
            Origin::Profile("2gb".into())
        );
        assert_eq!(loaded.origins["daemon.log_level"], Origin::Default);
    }

    #[test]
    fn env_overrides_parse_by_the_default_type() {
        let loaded = load(&opts_env(&[
            ("VOXD_ENGINES_LLM_THREADS", "7"),
            ("VOXD_DAEMON_SOCKET", "/tmp/x.sock"),
            ("VOXD_MODELS_SOURCES", "pypi"),
            ("VOXD_ENGINES_STT_ARGS", "--a, --b"),
        ]))
        .unwrap();
        let c = loaded.config;
        assert_eq!(c.engines.llm.threads, 7);
        assert_eq!(c.daemon.socket, PathBuf::from("/tmp/x.sock"));
        assert_eq!(c.models.sources, vec![SourceKind::Pypi]);
        assert_eq!(c.engines.stt.args, vec!["--a", "--b"]);
    }

    #[test]
    fn bad_env_values_name_the_variable_and_what_is_allowed() {
        let err = load(&opts_env(&[("VOXD_ENGINES_LLM_THREADS", "many")])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("VOXD_ENGINES_LLM_THREADS"), "{msg}");
        assert!(msg.contains("engines.llm.threads"), "{msg}");

        let err = load(&opts_env(&[("VOXD_ENGINES_LLM_THREAD", "2")])).unwrap_err();
        assert!(
            err.to_string().contains("VOXD_ENGINES_LLM_THREADS"),
            "{err}"
        );

        let err = load(&opts_env(&[("VOXD_PROFILE", "huge")])).unwrap_err();
        assert!(
            err.to_string().contains("tiny, 2gb, 8gb, workstation"),
            "{err}"
        );
    }

    #[test]
    fn file_errors_name_file_line_key_and_allowed_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("voxd.toml");
        let check = |text: &str, needles: &[&str]| {
            std::fs::write(&path, text).unwrap();
            let err = load(&LoadOptions {
                config_file: Some(path.clone()),
                ..Default::default()
            })
            .unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(path.to_str().unwrap()), "{msg}");
            for needle in needles {
                assert!(msg.contains(needle), "{needle:?} not in {msg}");
            }
        };
        check(
            "# comment\n[engines.llm]\nthreads = \"four\"\n",
            &[":3:", "engines.llm.threads", "u32"],
        );
        check(
            "[engines]\n\nidle_unload_sec = 5\n",
            &[":3:", "engines.idle_unload_sec", "idle_unload_secs"],
        );
        check(
            "[models]\nsources = [\"ftp\"]\n",
            &[":2:", "models.sources", "hf", "pypi"],
        );
        check("profile = \"big\"\n", &[":1:", "profile", "workstation"]);
        check("[daemon\n", &[":1:"]);
        check("daemon = 3\n", &[":1:", "daemon", "table"]);
    }

    #[test]
    fn file_layer_sits_between_profile_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("voxd.toml");
        std::fs::write(
            &path,
            "profile = \"8gb\"\n[engines]\nidle_unload_secs = 9\nmemory_budget_mb = 5\n",
        )
        .unwrap();
        let loaded = load(&LoadOptions {
            config_file: Some(path.clone()),
            env: vec![("VOXD_ENGINES_MEMORY_BUDGET_MB".into(), "6".into())],
            flags: vec![("daemon.log_level".into(), toml::Value::from("debug"))],
        })
        .unwrap();
        let c = &loaded.config;
        assert_eq!(c.profile, Profile::EightGb);
        assert_eq!(c.engines.idle_unload_secs, 9);
        assert_eq!(c.engines.memory_budget_mb, 6);
        assert_eq!(c.engines.llm.context, 4096);
        assert_eq!(c.daemon.log_level, "debug");
        assert_eq!(
            loaded.origins["engines.idle_unload_secs"],
            Origin::File(path)
        );
        assert!(matches!(
            loaded.origins["daemon.log_level"],
            Origin::Flag(_)
        ));
        assert_eq!(loaded.entries().len(), loaded.origins.len());
    }

    #[test]
    fn missing_explicit_config_file_is_an_error() {
        let err = load(&LoadOptions {
            config_file: Some("/nonexistent/voxd.toml".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/voxd.toml"), "{err}");
    }
}
