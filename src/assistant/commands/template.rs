//! Sentence templates: parsing (`(turn | switch) on [the] {device}`) and
//! matching an utterance's normalised words against them.
//!
//! Matching is a backtracking walk over every reading of the template
//! (each alternative, with and without each optional part, every way a
//! slot can read the words at its place) that uses every word; among them
//! the best is kept: fewest words in a free-text slot, then fewest edits
//! in list values, then most literal words; ties go to the first found, so
//! the result is deterministic.

use std::sync::Arc;

use super::slots::{self, SlotValue};
use crate::assistant::intent::fold;

/// A user list: its spoken forms and the value each one stands for.
#[derive(Debug)]
pub struct List {
    pub name: String,
    pub entries: Vec<Entry>,
}

/// One spoken form of a list value.
#[derive(Debug)]
pub struct Entry {
    /// The canonical value, reported and passed to actions.
    pub value: String,
    /// How many words the spoken form has.
    words: usize,
    /// The spoken form's folded words, joined without spaces (so that
    /// "desk lamp" also matches "desklamp").
    joined: String,
}

impl Entry {
    pub fn new(value: &str, spoken: &str) -> Entry {
        let words = fold(spoken);
        Entry {
            value: value.to_string(),
            words: words.len(),
            joined: words.concat(),
        }
    }

    /// Whether the spoken form has no words.
    pub fn is_empty(&self) -> bool {
        self.words == 0
    }

    /// The edits allowed between a heard form and this one: one per five
    /// letters, so none under five (short names must be heard exactly).
    fn allowed_edits(&self) -> usize {
        self.joined.chars().count() / 5
    }
}

/// What a slot reads.
#[derive(Debug, Clone)]
pub enum SlotKind {
    Number,
    Duration,
    Time,
    /// The rest of the utterance; only as a template's last element.
    Text,
    List(Arc<List>),
}

impl SlotKind {
    /// The built-in types, by name.
    pub const BUILT_IN: [&'static str; 4] = ["number", "duration", "time", "text"];

    fn built_in(name: &str) -> Option<SlotKind> {
        match name {
            "number" => Some(SlotKind::Number),
            "duration" => Some(SlotKind::Duration),
            "time" => Some(SlotKind::Time),
            "text" => Some(SlotKind::Text),
            _ => None,
        }
    }

    /// The type's name, as a template writes it.
    pub fn name(&self) -> &str {
        match self {
            SlotKind::Number => "number",
            SlotKind::Duration => "duration",
            SlotKind::Time => "time",
            SlotKind::Text => "text",
            SlotKind::List(list) => &list.name,
        }
    }
}

/// A slot of a template: its name and type.
#[derive(Debug, Clone)]
pub struct Slot {
    pub name: String,
    pub kind: SlotKind,
}

#[derive(Debug)]
enum Node {
    Word(String),
    /// `(a | b)`, or with `optional` `[a | b]`.
    Choice {
        options: Vec<Vec<Node>>,
        optional: bool,
    },
    /// An index into [`Template::slots`].
    Slot(usize),
}

/// A parsed sentence template.
#[derive(Debug)]
pub struct Template {
    /// As written in the file.
    pub source: String,
    pub slots: Vec<Slot>,
    nodes: Vec<Node>,
}

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{0}` is never closed")]
    Unclosed(char),
    #[error("`{0}` closes nothing")]
    Unopened(char),
    #[error("a slot needs a name: {{name}} or {{name:type}}")]
    SlotName,
    #[error("unknown slot type `{kind}` in {{{slot}}}: one of {known}")]
    UnknownType {
        slot: String,
        kind: String,
        known: String,
    },
    #[error("slot {{{0}}} appears twice")]
    Twice(String),
    #[error("the free-text slot {{{0}}} must be the template's last element, outside ( ) and [ ]")]
    TextNotLast(String),
    #[error("the template has no words")]
    Empty,
}

/// The lists a template's slots may name.
pub type Lists = std::collections::BTreeMap<String, Arc<List>>;

impl Template {
    pub fn parse(source: &str, lists: &Lists) -> Result<Template, TemplateError> {
        let mut parser = Parser {
            chars: source.chars().collect(),
            at: 0,
            lists,
            slots: Vec::new(),
            text: String::new(),
        };
        let options = parser.options(None)?;
        let nodes = match options.len() {
            1 => options.into_iter().next().unwrap_or_default(),
            _ => vec![Node::Choice {
                options,
                optional: false,
            }],
        };
        let template = Template {
            source: source.to_string(),
            slots: parser.slots,
            nodes,
        };
        template.check()?;
        Ok(template)
    }

    /// A template must say something, and a free-text slot must come last
    /// at the top level.
    fn check(&self) -> Result<(), TemplateError> {
        fn has_word(nodes: &[Node]) -> bool {
            nodes.iter().any(|n| match n {
                Node::Word(_) => true,
                Node::Choice { options, optional } => {
                    !optional && options.iter().all(|o| has_word(o))
                }
                Node::Slot(_) => false,
            })
        }
        let top: Vec<&[Node]> = match self.nodes.as_slice() {
            [Node::Choice {
                options,
                optional: false,
            }] => options.iter().map(Vec::as_slice).collect(),
            nodes => vec![nodes],
        };
        for (i, slot) in self.slots.iter().enumerate() {
            if !matches!(slot.kind, SlotKind::Text) {
                continue;
            }
            let last = top
                .iter()
                .any(|nodes| matches!(nodes.last(), Some(Node::Slot(k)) if *k == i));
            if !last {
                return Err(TemplateError::TextNotLast(slot.name.clone()));
            }
        }
        if top.iter().any(|nodes| !has_word(nodes)) {
            return Err(TemplateError::Empty);
        }
        Ok(())
    }

    /// The best reading of all of `words` (normalised), if there is one.
    pub fn best(&self, words: &[String]) -> Option<Reading> {
        let mut walk = Walk {
            words,
            slots: &self.slots,
            current: Reading::default(),
            best: None,
        };
        walk.go(&self.nodes, &Then::Done, 0);
        walk.best
    }
}

/// How a template read an utterance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// (slot index, value, the words it read).
    pub values: Vec<(usize, SlotValue, String)>,
    /// Edits in list values (ASR errors forgiven).
    pub edits: usize,
    /// Words read by a free-text slot.
    pub text_words: usize,
    /// Words matched literally.
    pub literals: usize,
}

impl Reading {
    /// Lower is better: less free text (a typed reading beats a catch-all),
    /// fewer edits, more literal words.
    pub fn rank(&self) -> (usize, usize, std::cmp::Reverse<usize>) {
        (
            self.text_words,
            self.edits,
            std::cmp::Reverse(self.literals),
        )
    }
}

struct Parser<'l> {
    chars: Vec<char>,
    at: usize,
    lists: &'l Lists,
    slots: Vec<Slot>,
    /// Literal text not yet split into words.
    text: String,
}

impl Parser<'_> {
    /// Alternatives separated by `|` up to `close` (or the end).
    fn options(&mut self, close: Option<char>) -> Result<Vec<Vec<Node>>, TemplateError> {
        let mut options = Vec::new();
        let mut seq = Vec::new();
        loop {
            let c = self.chars.get(self.at).copied();
            self.at += 1;
            match c {
                None => {
                    self.flush(&mut seq);
                    options.push(seq);
                    return match close {
                        None => Ok(options),
                        Some(')') => Err(TemplateError::Unclosed('(')),
                        Some(_) => Err(TemplateError::Unclosed('[')),
                    };
                }
                Some(c) if Some(c) == close => {
                    self.flush(&mut seq);
                    options.push(seq);
                    return Ok(options);
                }
                Some('|') => {
                    self.flush(&mut seq);
                    options.push(std::mem::take(&mut seq));
                }
                Some(open @ ('(' | '[')) => {
                    self.flush(&mut seq);
                    let optional = open == '[';
                    let options = self.options(Some(if optional { ']' } else { ')' }))?;
                    seq.push(Node::Choice { options, optional });
                }
                Some(c @ (')' | ']' | '}')) => return Err(TemplateError::Unopened(c)),
                Some('{') => {
                    self.flush(&mut seq);
                    let slot = self.slot()?;
                    seq.push(Node::Slot(slot));
                }
                Some(c) => self.text.push(c),
            }
        }
    }

    fn flush(&mut self, seq: &mut Vec<Node>) {
        seq.extend(fold(&self.text).into_iter().map(Node::Word));
        self.text.clear();
    }

    /// `{name}` (a list of that name, or a built-in type of that name) or
    /// `{name:type}`; the `{` is read.
    fn slot(&mut self) -> Result<usize, TemplateError> {
        let end = self.chars[self.at..]
            .iter()
            .position(|c| *c == '}')
            .ok_or(TemplateError::Unclosed('{'))?;
        let inside: String = self.chars[self.at..self.at + end].iter().collect();
        self.at += end + 1;
        let (name, kind) = match inside.split_once(':') {
            Some((name, kind)) => (name.trim(), kind.trim()),
            None => (inside.trim(), inside.trim()),
        };
        let ident =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident(name) {
            return Err(TemplateError::SlotName);
        }
        let kind = match self.lists.get(kind) {
            Some(list) => SlotKind::List(list.clone()),
            None => SlotKind::built_in(kind).ok_or_else(|| TemplateError::UnknownType {
                slot: name.to_string(),
                kind: kind.to_string(),
                known: SlotKind::BUILT_IN
                    .iter()
                    .copied()
                    .chain(self.lists.keys().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
        };
        if self.slots.iter().any(|s| s.name == name) {
            return Err(TemplateError::Twice(name.to_string()));
        }
        self.slots.push(Slot {
            name: name.to_string(),
            kind,
        });
        Ok(self.slots.len() - 1)
    }
}

/// What follows the nodes being matched: more nodes, then what follows them.
enum Then<'n, 'c> {
    Done,
    More(&'n [Node], &'c Then<'n, 'c>),
}

struct Walk<'a> {
    words: &'a [String],
    slots: &'a [Slot],
    current: Reading,
    best: Option<Reading>,
}

impl<'a> Walk<'a> {
    fn go(&mut self, nodes: &'a [Node], then: &Then<'a, '_>, at: usize) {
        if self.best.as_ref().is_some_and(|b| {
            b.text_words <= self.current.text_words && b.edits < self.current.edits
        }) {
            return;
        }
        let Some((node, rest)) = nodes.split_first() else {
            match then {
                Then::Done => self.finish(at),
                Then::More(nodes, then) => self.go(nodes, then, at),
            }
            return;
        };
        match node {
            Node::Word(word) => {
                if self.words.get(at) == Some(word) {
                    self.current.literals += 1;
                    self.go(rest, then, at + 1);
                    self.current.literals -= 1;
                }
            }
            Node::Choice { options, optional } => {
                let after = Then::More(rest, then);
                for option in options {
                    self.go(option, &after, at);
                }
                if *optional {
                    self.go(rest, then, at);
                }
            }
            Node::Slot(k) => {
                let slot = &self.slots[*k];
                for (value, used, edits) in read_slot(&slot.kind, &self.words[at..]) {
                    let heard = self.words[at..at + used].join(" ");
                    let text = if matches!(slot.kind, SlotKind::Text) {
                        used
                    } else {
                        0
                    };
                    self.current.values.push((*k, value, heard));
                    self.current.edits += edits;
                    self.current.text_words += text;
                    self.go(rest, then, at + used);
                    self.current.text_words -= text;
                    self.current.edits -= edits;
                    self.current.values.pop();
                }
            }
        }
    }

    fn finish(&mut self, at: usize) {
        if at != self.words.len() {
            return;
        }
        if self
            .best
            .as_ref()
            .is_none_or(|b| self.current.rank() < b.rank())
        {
            self.best = Some(self.current.clone());
        }
    }
}

/// Every way a slot reads the words at its place: (value, words used, edits).
fn read_slot(kind: &SlotKind, words: &[String]) -> Vec<(SlotValue, usize, usize)> {
    let exact = |v: SlotValue, used: usize| (v, used, 0);
    match kind {
        SlotKind::Number => slots::numbers(words)
            .into_iter()
            .map(|(n, used)| exact(SlotValue::Number(n), used))
            .collect(),
        SlotKind::Duration => slots::durations(words)
            .into_iter()
            .map(|(s, used)| exact(SlotValue::Duration(s), used))
            .collect(),
        SlotKind::Time => slots::times(words)
            .into_iter()
            .map(|((hour, minute), used)| exact(SlotValue::Time { hour, minute }, used))
            .collect(),
        SlotKind::Text if !words.is_empty() => {
            vec![exact(SlotValue::Text(words.join(" ")), words.len())]
        }
        SlotKind::Text => Vec::new(),
        SlotKind::List(list) => read_list(list, words),
    }
}

/// The list values that the words at the start read as, exactly or within
/// an entry's allowed edits, over one word fewer to one more than the
/// entry has (a word split or run together by the transcriber).
fn read_list(list: &List, words: &[String]) -> Vec<(SlotValue, usize, usize)> {
    let mut found = Vec::new();
    for entry in &list.entries {
        let shortest = entry.words.saturating_sub(1).max(1);
        for used in shortest..=(entry.words + 1).min(words.len()) {
            let heard = words[..used].concat();
            let edits = if heard == entry.joined {
                0
            } else {
                let allowed = entry.allowed_edits();
                // Cheap bound first: the lengths alone need this many edits.
                if heard.len().abs_diff(entry.joined.len()) > allowed {
                    continue;
                }
                match strsim::levenshtein(&heard, &entry.joined) {
                    d if d <= allowed => d,
                    _ => continue,
                }
            };
            found.push((SlotValue::List(entry.value.clone()), used, edits));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::intent::normalise;

    fn lists() -> Lists {
        let device = List {
            name: "device".into(),
            entries: vec![
                Entry::new("desk lamp", "desk lamp"),
                Entry::new("desk lamp", "desk light"),
                Entry::new("kitchen light", "kitchen light"),
                Entry::new("tv", "tv"),
            ],
        };
        Lists::from([("device".to_string(), Arc::new(device))])
    }

    /// The slot values (name = plain value) of the best reading of `text`.
    fn read(template: &str, text: &str) -> Option<Vec<String>> {
        let t = Template::parse(template, &lists()).unwrap();
        let reading = t.best(&normalise(text))?;
        Some(
            reading
                .values
                .iter()
                .map(|(k, v, _)| format!("{}={}", t.slots[*k].name, v.plain()))
                .collect(),
        )
    }

    #[test]
    fn alternatives_and_optional_words() {
        let t = "(turn | switch) on [the] {device}";
        assert_eq!(
            read(t, "Turn on the desk lamp."),
            Some(vec!["device=desk lamp".into()])
        );
        assert_eq!(
            read(t, "switch on kitchen light"),
            Some(vec!["device=kitchen light".into()])
        );
        assert_eq!(
            read(t, "please switch on the TV"),
            Some(vec!["device=tv".into()])
        );
        assert_eq!(read(t, "flip on the desk lamp"), None);
        assert_eq!(read(t, "turn on the"), None);
        assert_eq!(read(t, "turn on the desk lamp now or later"), None);
        // `[a | b]`, and alternatives at the top level.
        let t = "[please | kindly] lights (off | out) | darkness";
        assert_eq!(read(t, "kindly lights out"), Some(vec![]));
        assert_eq!(read(t, "darkness"), Some(vec![]));
        assert_eq!(read(t, "lights"), None);
    }

    #[test]
    fn list_synonyms_give_the_canonical_value() {
        let t = "turn on [the] {device}";
        assert_eq!(
            read(t, "turn on the desk light"),
            Some(vec!["device=desk lamp".into()])
        );
        let t = "dim [the] {lamp:device} to {level:number} percent";
        assert_eq!(
            read(t, "dim the desk lamp to twenty five percent"),
            Some(vec!["lamp=desk lamp".into(), "level=25".into()])
        );
    }

    #[test]
    fn small_transcription_errors_in_list_values_are_forgiven() {
        let t = "turn on [the] {device}";
        for heard in [
            "turn on the desk lamb",
            "turn on the desklamp",
            "turn on the kitchen night",
            "turn on the kitchen lights",
        ] {
            assert!(read(t, heard).is_some(), "{heard}");
        }
        // Too far off, or a short name with any error.
        for heard in [
            "turn on the desk",
            "turn on the kitchen",
            "turn on the dusk ramp",
            "turn on the tb",
            "turn on the garage door",
        ] {
            assert_eq!(read(t, heard), None, "{heard}");
        }
        // An exact value beats a near one.
        let t = Template::parse("turn on {device}", &lists()).unwrap();
        let reading = t.best(&normalise("turn on desk light")).unwrap();
        assert_eq!(reading.edits, 0);
    }

    #[test]
    fn typed_slots() {
        assert_eq!(
            read(
                "set a timer for {length:duration}",
                "set a timer for five and a half minutes"
            ),
            Some(vec!["length=330".into()])
        );
        assert_eq!(
            read("wake me at {when:time}", "wake me at 7:30 a.m."),
            Some(vec!["when=07:30".into()])
        );
        assert_eq!(
            read("remind me to {what:text}", "remind me to call Marta"),
            Some(vec!["what=call marta".into()])
        );
        assert_eq!(read("remind me to {what:text}", "remind me to"), None);
        assert_eq!(
            read(
                "set the volume to {level:number}",
                "set the volume to eleven"
            ),
            Some(vec!["level=11".into()])
        );
        assert_eq!(
            read("set the volume to {level:number}", "set the volume to loud"),
            None
        );
        // A built-in type's name is a slot of that type.
        assert_eq!(
            read("count to {number}", "count to 3"),
            Some(vec!["number=3".into()])
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = |t: &str| Template::parse(t, &lists()).unwrap_err();
        assert_eq!(err("(turn | switch on"), TemplateError::Unclosed('('));
        assert_eq!(err("turn [on"), TemplateError::Unclosed('['));
        assert_eq!(err("turn on)"), TemplateError::Unopened(')'));
        assert_eq!(err("turn on {device"), TemplateError::Unclosed('{'));
        assert_eq!(err("turn on {}"), TemplateError::SlotName);
        assert_eq!(
            err("{a:text} please"),
            TemplateError::TextNotLast("a".into())
        );
        assert_eq!(
            err("say [{a:text}]"),
            TemplateError::TextNotLast("a".into())
        );
        assert_eq!(
            err("{device} and {device}"),
            TemplateError::Twice("device".into())
        );
        assert_eq!(err("[the] {device}"), TemplateError::Empty);
        assert_eq!(
            err("set {level:colour}").to_string(),
            "unknown slot type `colour` in {level}: one of number, duration, time, text, device"
        );
        assert!(matches!(
            err("turn on {lamp}"),
            TemplateError::UnknownType { .. }
        ));
    }
}
