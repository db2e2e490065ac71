//! `commands.toml`: reading and checking it into a [`CommandSet`]. Every
//! error names the file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::action::{placeholders, Action, HttpAction};
use super::template::{Entry, List, Lists, SlotKind, Template};
use crate::error::{ErrorKind, Kind};

/// How long an action may take unless its command says (`timeout_secs`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    #[serde(default)]
    lists: BTreeMap<Spanned<String>, ListDef>,
    #[serde(default)]
    command: Vec<CommandDef>,
}

/// `device = ["desk lamp", "kitchen light"]`, or with synonyms
/// `[lists.device]` `"desk lamp" = ["desk light"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ListDef {
    Values(Vec<String>),
    Synonyms(BTreeMap<String, Vec<String>>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandDef {
    name: Spanned<String>,
    sentences: Vec<Spanned<String>>,
    #[serde(default)]
    run: Vec<String>,
    #[serde(default)]
    http: Option<HttpDef>,
    #[serde(default)]
    say: String,
    #[serde(default)]
    say_failed: Option<String>,
    #[serde(default)]
    timeout_secs: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpDef {
    #[serde(default = "post")]
    method: String,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<toml::Value>,
}

fn post() -> String {
    "POST".into()
}

/// The commands of one `commands.toml`, checked and ready to match.
#[derive(Debug, Default)]
pub struct CommandSet {
    pub path: PathBuf,
    pub lists: Lists,
    pub commands: Vec<Arc<UserCommand>>,
}

/// One `[[command]]`.
#[derive(Debug)]
pub struct UserCommand {
    pub name: String,
    /// Where it is defined in the file.
    pub line: usize,
    pub sentences: Vec<Template>,
    pub action: Action,
    /// The spoken reply when the action succeeded (empty: none).
    pub say: String,
    /// The spoken reply when it failed.
    pub say_failed: String,
}

/// `commands.toml` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CommandsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl Kind for CommandsError {
    fn kind(&self) -> ErrorKind {
        match self {
            CommandsError::Read { .. } => ErrorKind::Internal,
            CommandsError::Invalid { .. } => ErrorKind::InvalidParams,
        }
    }
}

impl CommandSet {
    /// Reads `path`; a file that does not exist is an empty set.
    pub fn load(path: &Path) -> Result<CommandSet, CommandsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => CommandSet::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CommandSet {
                path: path.to_path_buf(),
                ..CommandSet::default()
            }),
            Err(source) => Err(CommandsError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Checks `text`, the contents of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<CommandSet, CommandsError> {
        let at = |offset: usize, message: String| CommandsError::Invalid {
            path: path.to_path_buf(),
            line: text[..offset.min(text.len())].matches('\n').count() + 1,
            message,
        };
        let file: FileDef = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            at(offset, e.message().to_string())
        })?;
        let mut lists = Lists::new();
        for (name, def) in file.lists {
            let list = list(name.get_ref(), def).map_err(|m| at(name.span().start, m))?;
            lists.insert(name.into_inner(), Arc::new(list));
        }
        let mut commands: Vec<Arc<UserCommand>> = Vec::new();
        for def in file.command {
            let start = def.name.span().start;
            if let Some(first) = commands.iter().find(|c| c.name == *def.name.get_ref()) {
                return Err(at(
                    start,
                    format!(
                        "a second command named {:?} (the first is on line {})",
                        first.name, first.line
                    ),
                ));
            }
            let line = text[..start].matches('\n').count() + 1;
            commands.push(Arc::new(command(def, &lists, line, &at)?));
        }
        Ok(CommandSet {
            path: path.to_path_buf(),
            lists,
            commands,
        })
    }
}

/// A list's entries: each value and each synonym, folded.
fn list(name: &str, def: ListDef) -> Result<List, String> {
    if SlotKind::BUILT_IN.contains(&name) {
        return Err(format!(
            "list `{name}` has the name of a built-in slot type"
        ));
    }
    let pairs: Vec<(String, Vec<String>)> = match def {
        ListDef::Values(values) => values.into_iter().map(|v| (v, Vec::new())).collect(),
        ListDef::Synonyms(map) => map.into_iter().collect(),
    };
    let mut entries = Vec::new();
    for (value, synonyms) in pairs {
        for spoken in std::iter::once(&value).chain(&synonyms) {
            let entry = Entry::new(&value, spoken);
            if entry.is_empty() {
                return Err(format!("list `{name}`: {spoken:?} has no words"));
            }
            entries.push(entry);
        }
    }
    if entries.is_empty() {
        return Err(format!("list `{name}` is empty"));
    }
    Ok(List {
        name: name.to_string(),
        entries,
    })
}

fn command(
    def: CommandDef,
    lists: &Lists,
    line: usize,
    at: &impl Fn(usize, String) -> CommandsError,
) -> Result<UserCommand, CommandsError> {
    let name = def.name.get_ref().clone();
    let start = def.name.span().start;
    let invalid = |message: String| at(start, format!("command {name:?}: {message}"));
    if def.sentences.is_empty() {
        return Err(invalid("no `sentences`".into()));
    }
    let mut sentences = Vec::new();
    for sentence in &def.sentences {
        let template = Template::parse(sentence.get_ref(), lists).map_err(|e| {
            at(
                sentence.span().start,
                format!("command {name:?}: sentence {:?}: {e}", sentence.get_ref()),
            )
        })?;
        sentences.push(template);
    }
    let timeout = match def.timeout_secs {
        None => DEFAULT_TIMEOUT,
        Some(secs) if secs > 0.0 && secs <= 3600.0 => Duration::from_secs_f64(secs),
        Some(secs) => {
            return Err(invalid(format!(
                "timeout_secs = {secs}: from above 0 to 3600"
            )))
        }
    };
    let http = def
        .http
        .map(|h| HttpAction::new(&h.method, h.url, h.headers, h.body))
        .transpose()
        .map_err(invalid)?;
    let action = Action {
        run: def.run,
        http,
        timeout,
    };
    let say_failed = def
        .say_failed
        .unwrap_or_else(|| "Sorry, that did not work.".into());
    // Every `{slot}` an action or a reply names is a slot of a sentence.
    let known = |slot: &str| {
        sentences
            .iter()
            .any(|t| t.slots.iter().any(|s| s.name == slot))
    };
    let named = action
        .templates()
        .into_iter()
        .chain([def.say.as_str(), say_failed.as_str()])
        .flat_map(placeholders)
        .find(|slot| !known(slot));
    if let Some(slot) = named {
        return Err(invalid(format!("{{{slot}}} is no slot of its sentences")));
    }
    Ok(UserCommand {
        name,
        line,
        sentences,
        action,
        say: def.say,
        say_failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        CommandSet::parse(Path::new("/c/commands.toml"), text)
            .unwrap_err()
            .to_string()
    }

    const GOOD: &str = r#"
[lists]
device = ["desk lamp", "kitchen light"]

[lists.colour]
red = ["crimson"]
blue = []

[[command]]
name = "power_on"
sentences = ["(turn | switch) on [the] {device}"]
run = ["/usr/local/bin/power", "on", "{device}"]
say = "Turning on the {device}."

[[command]]
name = "paint"
sentences = ["paint it {colour}", "make it {colour}"]
http = { url = "http://127.0.0.1:8123/api/webhook/paint", body = { colour = "{colour}" } }
"#;

    #[test]
    fn reads_lists_commands_and_actions() {
        let set = CommandSet::parse(Path::new("/c/commands.toml"), GOOD).unwrap();
        let names: Vec<&str> = set.commands.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["power_on", "paint"]);
        assert_eq!(set.commands[0].line, 10);
        assert_eq!(set.commands[1].sentences.len(), 2);
        assert_eq!(set.lists["colour"].entries.len(), 3);
        let http = set.commands[1].action.http.as_ref().unwrap();
        assert_eq!(http.method, "POST");
        assert_eq!(set.commands[1].action.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let bad_template = GOOD.replace("[the] {device}\"", "[the {device}\"");
        assert_eq!(
            error(&bad_template),
            "/c/commands.toml:11: command \"power_on\": sentence \"(turn | switch) on [the {device}\": `[` is never closed"
        );
        let unknown = GOOD.replace("it {colour}\",", "it {colour:hue}\",");
        assert!(
            error(&unknown).starts_with(
                "/c/commands.toml:17: command \"paint\": sentence \"paint it {colour:hue}\": unknown slot type `hue`"
            ),
            "{}",
            error(&unknown)
        );
        let twice = GOOD.replace("name = \"paint\"", "name = \"power_on\"");
        assert_eq!(
            error(&twice),
            "/c/commands.toml:16: a second command named \"power_on\" (the first is on line 10)"
        );
        let unknown_slot = GOOD.replace("Turning on the {device}", "Turning on the {lamp}");
        assert_eq!(
            error(&unknown_slot),
            "/c/commands.toml:10: command \"power_on\": {lamp} is no slot of its sentences"
        );
        let typo = GOOD.replace("say =", "sya =");
        assert!(
            error(&typo).starts_with("/c/commands.toml:13: unknown field `sya`"),
            "{}",
            error(&typo)
        );
        assert!(
            error("[[command]\n").starts_with("/c/commands.toml:1: "),
            "{}",
            error("[[command]\n")
        );
        assert_eq!(
            error("[lists]\nnumber = [\"one\"]\n"),
            "/c/commands.toml:2: list `number` has the name of a built-in slot type"
        );
        let method = GOOD.replace("http = { url", "http = { method = \"FETCH\", url");
        assert!(error(&method).contains("method"), "{}", error(&method));
    }

    #[test]
    fn a_missing_file_is_an_empty_set() {
        let set = CommandSet::load(Path::new("/nonexistent/voxd/commands.toml")).unwrap();
        assert!(set.commands.is_empty());
    }
}
