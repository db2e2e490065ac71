//! User commands: `commands.toml` (`assistant.commands`, by default
//! `$XDG_CONFIG_HOME/voxd/commands.toml`), sentence templates with slots
//! matched on what was said, and the action each runs (see
//! `docs/commands.md`).
//!
//! The template grammar is Home Assistant's hassil / Rhasspy's, kept close
//! so that their users feel at home: `(a | b)` alternatives, `[optional]`
//! words, `{slot}` for the list of that name and `{slot:type}` for a
//! built-in type or a list under another name. It is matched by hand here
//! (`template.rs`): no maintained Rust crate parses or matches hassil-style
//! templates (crates.io and docs.rs have string templating, i.e. the other
//! direction, and the Python hassil only), and the matcher is small: a
//! backtracking walk over words, with typed slot readers (`slots.rs`) and
//! edit distance (`strsim`) on list values for transcription errors.
//!
//! Matching is on the same normalised words as the built-in intents
//! (`intent::normalise`), deterministic, and says which template matched
//! with which slot values. A turn tries user commands after the built-in
//! intents and before `ask`.

mod action;
mod file;
mod slots;
mod template;
pub mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde::Serialize;

pub use action::{ActionError, Prepared, PreparedHttp, Slots};
pub use file::{CommandSet, CommandsError, UserCommand};
pub use slots::SlotValue;

use super::intent::normalise;
use crate::events::{Events, Observed};

/// The user's commands as last loaded, reloadable while in use.
pub struct UserCommands {
    path: PathBuf,
    set: RwLock<Arc<CommandSet>>,
    /// Why the file (as it is now) could not be loaded, if it could not.
    error: RwLock<Option<String>>,
    events: Events,
}

/// A command that an utterance matched.
#[derive(Debug, Clone)]
pub struct Matched {
    pub command: Arc<UserCommand>,
    /// The sentence template that matched, as written.
    pub template: String,
    pub slots: Slots,
    /// What each slot heard (its words as transcribed).
    pub heard: BTreeMap<String, String>,
}

/// How running a command went: its reply (`assistant.reply`'s `command`)
/// and the `command.ran` event.
#[derive(Debug, Clone, Serialize)]
pub struct Ran {
    pub name: String,
    pub template: String,
    pub slots: Slots,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the action took.
    pub ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
    TimedOut,
}

/// What user commands publish.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum CommandEvent {
    /// `command.ran`: a command's action ran (or failed).
    Ran(Ran),
    /// `command.reloaded`: the file was read anew.
    Reloaded { path: PathBuf, commands: usize },
    /// `command.invalid`: the file was changed into one that cannot be
    /// used; the previous commands stay active.
    Invalid { path: PathBuf, error: String },
}

impl Observed for CommandEvent {
    fn name(&self) -> &'static str {
        match self {
            CommandEvent::Ran(_) => "command.ran",
            CommandEvent::Reloaded { .. } => "command.reloaded",
            CommandEvent::Invalid { .. } => "command.invalid",
        }
    }
}

impl UserCommands {
    /// The configured file: `assistant.commands`, or `commands.toml` next
    /// to the user's `voxd.toml`.
    pub fn path_from_config(config: &crate::config::AssistantConfig) -> Option<PathBuf> {
        if !config.commands.as_os_str().is_empty() {
            return Some(config.commands.clone());
        }
        Some(
            crate::config::user_config_path()?
                .parent()?
                .join("commands.toml"),
        )
    }

    /// Loads `path`; a file that cannot be used is logged and leaves no
    /// commands (until it is fixed and reloaded).
    pub fn open(path: PathBuf, events: Events) -> UserCommands {
        let commands = UserCommands {
            set: RwLock::new(Arc::new(CommandSet {
                path: path.clone(),
                ..CommandSet::default()
            })),
            path,
            error: RwLock::new(None),
            events,
        };
        if let Err(e) = commands.reload() {
            tracing::error!("user commands: {e}");
        }
        commands
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The commands in use.
    pub fn current(&self) -> Arc<CommandSet> {
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Why the file could not be loaded the last time it was read.
    pub fn error(&self) -> Option<String> {
        self.error.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the file again. If it cannot be used the commands in use stay
    /// and the error says why (file and line).
    pub fn reload(&self) -> Result<Arc<CommandSet>, CommandsError> {
        let loaded = CommandSet::load(&self.path);
        let mut error = self.error.write().unwrap_or_else(|e| e.into_inner());
        match loaded {
            Ok(set) => {
                let set = Arc::new(set);
                *self.set.write().unwrap_or_else(|e| e.into_inner()) = set.clone();
                *error = None;
                tracing::info!(path = %self.path.display(), commands = set.commands.len(), "user commands loaded");
                self.events.publish(CommandEvent::Reloaded {
                    path: self.path.clone(),
                    commands: set.commands.len(),
                });
                Ok(set)
            }
            Err(e) => {
                *error = Some(e.to_string());
                self.events.publish(CommandEvent::Invalid {
                    path: self.path.clone(),
                    error: e.to_string(),
                });
                Err(e)
            }
        }
    }

    /// The command that `text` says, if any.
    pub fn find(&self, text: &str) -> Option<Matched> {
        self.current().find(text)
    }

    /// Runs a matched command's action and publishes `command.ran`; the
    /// reply to speak is [`Matched::reply`].
    pub async fn run(&self, matched: &Matched) -> Ran {
        let started = Instant::now();
        let name = &matched.command.name;
        let result = matched.prepare().perform(name).await;
        let (outcome, error) = match &result {
            Ok(()) => (Outcome::Ok, None),
            Err(e) if e.timed_out() => (Outcome::TimedOut, Some(e.to_string())),
            Err(e) => (Outcome::Failed, Some(e.to_string())),
        };
        let ran = Ran {
            name: name.clone(),
            template: matched.template.clone(),
            slots: matched.slots.clone(),
            outcome,
            error,
            ms: started.elapsed().as_millis() as u64,
        };
        tracing::info!(command = %name, outcome = ?ran.outcome, error = ?ran.error, ms = ran.ms, "user command ran");
        self.events.publish(CommandEvent::Ran(ran.clone()));
        ran
    }
}

impl CommandSet {
    /// The best match for `text` among every command's templates: least
    /// free text, then fewest edits in list values, then most literal
    /// words, then the first in the file.
    pub fn find(&self, text: &str) -> Option<Matched> {
        let words = normalise(text);
        if words.is_empty() {
            return None;
        }
        let mut best: Option<(&Arc<UserCommand>, &template::Template, template::Reading)> = None;
        for command in &self.commands {
            for sentence in &command.sentences {
                let Some(reading) = sentence.best(&words) else {
                    continue;
                };
                if best
                    .as_ref()
                    .is_none_or(|(_, _, b)| reading.rank() < b.rank())
                {
                    best = Some((command, sentence, reading));
                }
            }
        }
        let (command, template, reading) = best?;
        let mut slots = Slots::new();
        let mut heard = BTreeMap::new();
        for (k, value, words) in reading.values {
            let name = template.slots[k].name.clone();
            heard.insert(name.clone(), words);
            slots.insert(name, value);
        }
        Some(Matched {
            command: command.clone(),
            template: template.source.clone(),
            slots,
            heard,
        })
    }
}

impl Matched {
    /// The action with the slot values in place.
    pub fn prepare(&self) -> Prepared {
        self.command.action.prepare(&self.slots)
    }

    /// What to say after the action: `say`, or `say_failed` when it did
    /// not succeed, with slot values spoken.
    pub fn reply(&self, outcome: Outcome) -> String {
        let template = match outcome {
            Outcome::Ok => &self.command.say,
            Outcome::Failed | Outcome::TimedOut => &self.command.say_failed,
        };
        action::fill(template, |name| self.slots.get(name).map(SlotValue::spoken))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[lists]
device = ["desk lamp", "kitchen light"]

[[command]]
name = "power_on"
sentences = ["(turn | switch) on [the] {device}"]
run = ["/bin/true", "{device}"]
say = "Turning on the {device}."

[[command]]
name = "power_any"
sentences = ["(turn | switch) on {thing:text}"]
say = "I don't know {thing}."

[[command]]
name = "timer"
sentences = ["set a timer for {length:duration}"]
say = "Timer for {length}."
say_failed = "No timer for {length}."
"#;

    fn set() -> CommandSet {
        CommandSet::parse(Path::new("commands.toml"), FILE).unwrap()
    }

    #[test]
    fn the_most_specific_template_wins() {
        let set = set();
        let m = set.find("Turn on the desk lamp, please.").unwrap();
        assert_eq!(m.command.name, "power_on");
        assert_eq!(m.template, "(turn | switch) on [the] {device}");
        assert_eq!(m.slots["device"], SlotValue::List("desk lamp".into()));
        assert_eq!(m.reply(Outcome::Ok), "Turning on the desk lamp.");
        // A typed slot beats free text even with a transcription error.
        let m = set.find("turn on the desk lamb").unwrap();
        assert_eq!(m.command.name, "power_on");
        assert_eq!(m.heard["device"], "desk lamb");
        let m = set.find("switch on the garage door").unwrap();
        assert_eq!(m.command.name, "power_any");
        assert_eq!(m.reply(Outcome::Ok), "I don't know the garage door.");
        assert!(set.find("what is the wifi password").is_none());
        assert!(set.find("").is_none());
    }

    #[test]
    fn replies_speak_slot_values() {
        let m = set()
            .find("set a timer for five and a half minutes")
            .unwrap();
        assert_eq!(m.reply(Outcome::Ok), "Timer for 5 minutes 30 seconds.");
        assert_eq!(
            m.reply(Outcome::Failed),
            "No timer for 5 minutes 30 seconds."
        );
        assert_eq!(m.prepare().run, Vec::<String>::new());
    }

    #[test]
    fn matching_is_deterministic() {
        let set = set();
        let first = set.find("switch on kitchen light").unwrap();
        for _ in 0..10 {
            let again = set.find("switch on kitchen light").unwrap();
            assert_eq!(
                (again.command.name.as_str(), &again.slots),
                (first.command.name.as_str(), &first.slots)
            );
        }
    }
}
