//! One source of configuration values (a layer) and the checks every layer
//! passes before it is merged.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Config, ConfigError};

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `config/voxd.toml`, compiled in.
    Default,
    /// `config/profiles/<name>.toml`, compiled in.
    Profile(String),
    /// The user's file or `--config PATH`.
    File(PathBuf),
    /// A `VOXD_*` environment variable.
    Env(String),
    /// A command-line flag of `voxd serve`.
    Flag(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default (config/voxd.toml)"),
            Origin::Profile(name) => write!(f, "profile {name} (config/profiles/{name}.toml)"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag(flag) => write!(f, "command-line flag {flag}"),
        }
    }
}

impl serde::Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A parsed layer: its values, and enough of its source to locate errors.
#[derive(Debug)]
pub(super) struct Layer {
    pub origin: Origin,
    pub table: toml::Table,
    /// The source text of file-like layers, for line numbers.
    text: Option<String>,
    /// Dotted key → the origin of that key when it differs per key (env vars, flags).
    per_key: BTreeMap<String, Origin>,
}

impl Layer {
    /// Parses a TOML layer; syntax errors carry their line.
    pub fn parse(origin: Origin, text: &str) -> Result<Layer, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError {
            origin: origin.clone(),
            line: e.span().map(|span| line_of(text, span.start)),
            key: None,
            message: e.message().trim().to_string(),
        })?;
        Ok(Layer {
            origin,
            table,
            text: Some(text.to_string()),
            per_key: BTreeMap::new(),
        })
    }

    /// Builds the layer of `VOXD_*` variables, typing each value like its default.
    pub fn from_env(vars: &[(String, String)], defaults: &Layer) -> Result<Layer, ConfigError> {
        let known: BTreeMap<String, (String, &toml::Value)> = leaves(&defaults.table)
            .into_iter()
            .map(|(key, value)| (env_name(&key), (key, value)))
            .collect();
        let mut layer = Layer {
            origin: Origin::Env("VOXD_*".into()),
            table: toml::Table::new(),
            text: None,
            per_key: BTreeMap::new(),
        };
        for (var, raw) in vars {
            let Some((key, default)) = known.get(var) else {
                let closest = known
                    .keys()
                    .max_by(|a, b| {
                        strsim::jaro_winkler(a, var).total_cmp(&strsim::jaro_winkler(b, var))
                    })
                    .cloned()
                    .unwrap_or_default();
                return Err(ConfigError {
                    origin: Origin::Env(var.clone()),
                    line: None,
                    key: None,
                    message: format!("not a voxd setting; did you mean {closest}? (`voxd config show` lists every key)"),
                });
            };
            let origin = Origin::Env(var.clone());
            let value = typed_like(raw, default).map_err(|message| ConfigError {
                origin: origin.clone(),
                line: None,
                key: Some(key.clone()),
                message,
            })?;
            insert(&mut layer.table, key, value);
            layer.per_key.insert(key.clone(), origin);
        }
        Ok(layer)
    }

    /// Builds the layer of command-line flags.
    pub fn from_flags(flags: &[(String, toml::Value)]) -> Layer {
        let mut layer = Layer {
            origin: Origin::Flag("".into()),
            table: toml::Table::new(),
            text: None,
            per_key: BTreeMap::new(),
        };
        for (key, value) in flags {
            insert(&mut layer.table, key, value.clone());
            layer
                .per_key
                .insert(key.clone(), Origin::Flag(format!("for {key}")));
        }
        layer
    }

    /// The value this layer sets for a top-level key.
    pub fn get(&self, key: &str) -> Option<&toml::Value> {
        self.table.get(key)
    }

    /// The origin of one key of this layer.
    pub fn origin_of(&self, key: &str) -> Origin {
        self.per_key
            .get(key)
            .cloned()
            .unwrap_or_else(|| self.origin.clone())
    }

    /// An error about `key`, located in this layer.
    pub fn error_at(&self, key: &str, message: String) -> ConfigError {
        ConfigError {
            origin: self.origin_of(key),
            line: self.text.as_deref().and_then(|text| line_of_key(text, key)),
            key: Some(key.to_string()),
            message,
        }
    }

    /// Every key of this layer must exist in the defaults, with the same shape.
    pub fn check_keys(&self, defaults: &Layer) -> Result<(), ConfigError> {
        check_table(self, &self.table, &defaults.table, "")
    }

    /// The defaults overlaid with this layer must deserialise into [`Config`].
    pub fn check_types(&self, defaults: &toml::Table) -> Result<(), ConfigError> {
        let mut merged = defaults.clone();
        merge(&mut merged, &self.table);
        deserialize(&merged)
            .map(|_| ())
            .map_err(|(key, message)| self.error_at(&key, message))
    }
}

fn check_table(
    layer: &Layer,
    table: &toml::Table,
    defaults: &toml::Table,
    prefix: &str,
) -> Result<(), ConfigError> {
    for (name, value) in table {
        let key = join(prefix, name);
        match (defaults.get(name), value) {
            (None, _) => {
                let allowed: Vec<&str> = defaults.keys().map(String::as_str).collect();
                let section = if prefix.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in [{prefix}]")
                };
                let hint = strsim_closest(name, &allowed)
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                return Err(layer.error_at(
                    &key,
                    format!(
                        "unknown key; {hint}allowed keys {section}: {}",
                        allowed.join(", ")
                    ),
                ));
            }
            (Some(toml::Value::Table(sub_defaults)), toml::Value::Table(sub)) => {
                check_table(layer, sub, sub_defaults, &key)?
            }
            (Some(toml::Value::Table(_)), _) => {
                return Err(layer.error_at(&key, format!("must be a table ([{key}])")))
            }
            (Some(_), toml::Value::Table(_)) => {
                return Err(layer.error_at(&key, "is a value, not a table".to_string()))
            }
            (Some(_), _) => {}
        }
    }
    Ok(())
}

fn strsim_closest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .copied()
        .map(|a| (strsim::jaro_winkler(a, name), a))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, a)| a)
}

/// Deserialises a merged table; on failure returns (dotted key, message).
pub(super) fn deserialize(table: &toml::Table) -> Result<Config, (String, String)> {
    let value = toml::Value::Table(table.clone());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Seq { .. } => None,
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(".");
        (key, e.into_inner().to_string().trim().to_string())
    })
}

/// Every non-table value as (dotted key, value), in key order.
pub(super) fn leaves(table: &toml::Table) -> Vec<(String, &toml::Value)> {
    fn walk<'a>(table: &'a toml::Table, prefix: &str, out: &mut Vec<(String, &'a toml::Value)>) {
        for (name, value) in table {
            let key = join(prefix, name);
            match value {
                toml::Value::Table(sub) => walk(sub, &key, out),
                _ => out.push((key, value)),
            }
        }
    }
    let mut out = Vec::new();
    walk(table, "", &mut out);
    out
}

/// Overlays `top` onto `base`, table by table.
pub(super) fn merge(base: &mut toml::Table, top: &toml::Table) {
    for (name, value) in top {
        match (base.get_mut(name), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            _ => {
                base.insert(name.clone(), value.clone());
            }
        }
    }
}

fn insert(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut cur = table;
    for part in parts {
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        cur = entry.as_table_mut().expect("made a table above");
    }
    cur.insert(last.to_string(), value);
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// `engines.llm.threads` → `VOXD_ENGINES_LLM_THREADS`.
pub(super) fn env_name(key: &str) -> String {
    format!("VOXD_{}", key.replace(['.', '-'], "_").to_uppercase())
}

/// Types an environment string like the key's default value.
fn typed_like(raw: &str, default: &toml::Value) -> Result<toml::Value, String> {
    let raw_trimmed = raw.trim();
    match default {
        toml::Value::String(_) => Ok(toml::Value::String(raw.to_string())),
        toml::Value::Integer(_) => raw_trimmed
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("{raw:?} is not an integer")),
        toml::Value::Float(_) => raw_trimmed
            .parse::<f64>()
            .map(toml::Value::Float)
            .map_err(|_| format!("{raw:?} is not a number")),
        toml::Value::Boolean(_) => match raw_trimmed {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("{raw:?} is not a boolean (true/false)")),
        },
        toml::Value::Array(_) if raw_trimmed.starts_with('[') => {
            let doc: toml::Table = toml::from_str(&format!("v = {raw_trimmed}"))
                .map_err(|e| format!("{raw:?} is not a TOML array: {}", e.message()))?;
            Ok(doc["v"].clone())
        }
        toml::Value::Array(_) => Ok(toml::Value::Array(
            raw_trimmed
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        )),
        toml::Value::Datetime(_) | toml::Value::Table(_) => {
            Err("cannot be set from the environment".to_string())
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key` is set in a TOML text.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            let span = table
                .key(part)
                .and_then(|k| k.span())
                .or_else(|| table.get(part).and_then(|i| i.span()))?;
            return Some(line_of(text, span.start));
        }
        table = table.get(part)?.as_table_like()?;
    }
    None
}
