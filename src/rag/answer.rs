//! Grounded answers from retrieved sources. Pure functions on text and
//! vectors (the `ask` command drives them):
//!
//! - [`superseded`]: "newer content wins" — of two sentences on the same
//!   subject that state different specifics, the older one is dropped;
//! - [`extractive`]: the best source sentence, quoted with its citation, no
//!   model involved;
//! - [`completion_prompt`] / [`chat_prompt`]: numbered sources for the
//!   language model (a completion-style prompt with worked examples for base
//!   models without a chat template, `docs/architecture.md` "Engine facts");
//! - [`support`]: the specific tokens of a generated answer (numbers, names,
//!   codes) must occur in the sources; [`finish_generative`] replaces an
//!   unsupported answer by the extractive one and flags it.
//!
//! Citations always come from retrieval, never from what a model claims.

use std::collections::HashSet;

use serde::Serialize;

use super::chunk::Lines;
use super::embed::cosine;
use super::index::SentenceRow;
use super::DocKind;
use crate::conversation::Turn;
use crate::llm::{ChatMessage, ChatRole};

/// What voxd says when the notes do not cover a question.
pub const ABSTAIN_TEXT: &str = "I don't find that in your notes.";

/// Two sentences at least this similar talk about the same thing
/// (calibrated on tests/fixtures/notes with all-MiniLM-L6-v2).
pub const SAME_SUBJECT: f32 = 0.6;

/// Weights of word overlap with the question in a sentence's relevance:
/// words of the sentence itself, and of its headings (shared by every
/// sentence below them, so they tell sentences apart less).
const LEXICAL_WEIGHT: f32 = 0.4;
const HEADING_WEIGHT: f32 = 0.1;

/// One retrieved chunk, numbered as the prompt and the citations show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// 1-based number in the prompt.
    pub n: usize,
    pub kind: DocKind,
    /// Absolute path of the note, or of the captioned image.
    pub path: String,
    /// Path relative to its notes folder (an image's file name), for display.
    pub name: String,
    pub heading: String,
    pub lines: Lines,
    /// Cosine similarity of the chunk to the question (0 without
    /// embeddings; 1 for the newest picture when the question asks for it).
    pub score: f32,
    pub sentences: Vec<SentenceRow>,
}

/// A reference to the notes that backs an answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Citation {
    /// The source number in the prompt.
    pub n: usize,
    /// `note`, or `image` (a caption: `path` is the image, lines 1-1).
    pub kind: DocKind,
    pub path: String,
    pub name: String,
    pub line_start: u32,
    pub line_end: u32,
    pub snippet: String,
}

/// How an answer was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Used {
    Generative,
    Extractive,
    /// Nothing relevant was retrieved.
    Abstained,
    /// The model answered without sources (`--no-rag`, or RAG switched off).
    NoRag,
}

/// Notes on how an answer came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The generated answer named things the sources do not contain; the
    /// extractive answer replaced it.
    UnsupportedReplaced,
    /// No language model could be used (none installed, or its worker
    /// failed); the answer is extractive.
    LlmUnavailable,
    /// An older statement was dropped in favour of a newer one on the same
    /// subject.
    NewerContentWins,
}

/// A finished answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub text: String,
    pub mode: Used,
    pub citations: Vec<Citation>,
    pub flags: Vec<Flag>,
    /// The generated answer's tokens that no source contains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unsupported: Vec<String>,
}

impl Answer {
    pub fn abstain() -> Answer {
        Answer {
            text: ABSTAIN_TEXT.to_string(),
            mode: Used::Abstained,
            citations: Vec::new(),
            flags: Vec::new(),
            unsupported: Vec::new(),
        }
    }
}

/// `(source, sentence)` position.
pub type At = (usize, usize);

/// The sentences that a newer sentence on the same subject contradicts:
/// both state specifics (numbers, names, codes), the specifics differ, the
/// two are at least [`SAME_SUBJECT`] similar, at least half of their other
/// content words are the same (the subject: "front door code"), and the
/// other one is newer (a higher revision, or further down the same edit). `vectors[s][i]` is
/// the embedding of `sources[s].sentences[i]`.
pub fn superseded(sources: &[Source], vectors: &[Vec<Vec<f32>>]) -> HashSet<At> {
    /// A sentence that states something checkable.
    struct Statement<'a> {
        at: At,
        row: &'a SentenceRow,
        vector: &'a [f32],
        claims: HashSet<String>,
        subject: Vec<String>,
    }
    let mut all: Vec<Statement<'_>> = Vec::new();
    for (s, source) in sources.iter().enumerate() {
        for (i, sentence) in source.sentences.iter().enumerate() {
            let Some(v) = vectors.get(s).and_then(|v| v.get(i)) else {
                continue;
            };
            let specifics: HashSet<String> = claims(&sentence.text)
                .into_iter()
                .map(|t| t.to_lowercase())
                .collect();
            if !specifics.is_empty() {
                // The subject: content words that are not the claims themselves.
                let words = content_words(&sentence.text)
                    .into_iter()
                    .filter(|w| !specifics.contains(w) && !w.chars().any(|c| c.is_ascii_digit()))
                    .collect();
                all.push(Statement {
                    at: (s, i),
                    row: sentence,
                    vector: v,
                    claims: specifics,
                    subject: words,
                });
            }
        }
    }
    let mut out = HashSet::new();
    for a in &all {
        for b in &all {
            if a.at == b.at
                || a.claims == b.claims
                || cosine(a.vector, b.vector) < SAME_SUBJECT
                || subject_overlap(&a.subject, &b.subject) < 0.5
            {
                continue;
            }
            let (ra, rb) = (a.row, b.row);
            let newer = (rb.revision, rb.lines.start) > (ra.revision, ra.lines.start)
                && (rb.revision > ra.revision || sources[a.at.0].path == sources[b.at.0].path);
            if newer {
                out.insert(a.at);
            }
        }
    }
    out
}

/// Words of the question worth matching (no stop words, 3+ characters).
pub fn content_words(text: &str) -> Vec<String> {
    const STOP: &[&str] = &[
        "the", "and", "what", "whats", "when", "where", "who", "whom", "which", "how", "why",
        "does", "did", "was", "were", "are", "is", "our", "your", "you", "for", "from", "with",
        "that", "this", "there", "have", "has", "had", "can", "could", "would", "should", "will",
        "about", "tell", "know", "please", "its", "into", "than", "then", "them", "they", "much",
        "many", "goes", "get", "gets", "any", "some",
    ];
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3 && !STOP.contains(&w.as_str()))
        .collect()
}

/// Jaccard similarity of two word lists, on five-letter stems.
fn subject_overlap(a: &[String], b: &[String]) -> f32 {
    let stems = |w: &[String]| -> HashSet<String> {
        w.iter().map(|x| x.chars().take(5).collect()).collect()
    };
    let (a, b) = (stems(a), stems(b));
    let union = a.union(&b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(&b).count() as f32 / union as f32
}

/// Fraction of the question's content words found in `text` (matching on
/// the first five letters, a crude stemmer: "birthday" ~ "birthdays").
fn overlap(question: &[String], text: &str) -> f32 {
    if question.is_empty() {
        return 0.0;
    }
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .collect();
    let stem = |w: &str| w.chars().take(5).collect::<String>();
    let hits = question
        .iter()
        .filter(|q| words.iter().any(|w| stem(w) == stem(q)))
        .count();
    hits as f32 / question.len() as f32
}

/// The best sentence for the question: `query` is the question's unit
/// vector, `vectors` the sentences' (as for [`superseded`]). Superseded
/// sentences never win. `None` when the sources have no sentence.
pub fn best_sentence(
    question: &str,
    query: &[f32],
    sources: &[Source],
    vectors: &[Vec<Vec<f32>>],
    dropped: &HashSet<At>,
) -> Option<At> {
    let words = content_words(question);
    let mut best: Option<(At, f32)> = None;
    for (s, source) in sources.iter().enumerate() {
        // Words the heading already matches say what the whole section is
        // about; the sentence is judged on the rest.
        let own: Vec<String> = words
            .iter()
            .filter(|w| overlap(std::slice::from_ref(*w), &source.heading) == 0.0)
            .cloned()
            .collect();
        for (i, sentence) in source.sentences.iter().enumerate() {
            if dropped.contains(&(s, i)) {
                continue;
            }
            let semantic = vectors
                .get(s)
                .and_then(|v| v.get(i))
                .map_or(0.0, |v| cosine(v, query));
            let score = semantic
                + LEXICAL_WEIGHT * overlap(&own, &sentence.text)
                + HEADING_WEIGHT * overlap(&words, &source.heading);
            if best.is_none_or(|(_, b)| score > b) {
                best = Some(((s, i), score));
            }
        }
    }
    best.map(|(at, _)| at)
}

/// The citation of one sentence.
pub fn cite_sentence(source: &Source, sentence: &SentenceRow) -> Citation {
    Citation {
        n: source.n,
        kind: source.kind,
        path: source.path.clone(),
        name: source.name.clone(),
        line_start: sentence.lines.start,
        line_end: sentence.lines.end,
        snippet: sentence.text.clone(),
    }
}

/// The citation of a whole source chunk (its kept sentences as snippet).
pub fn cite_source(source: &Source, text: &str) -> Citation {
    Citation {
        n: source.n,
        kind: source.kind,
        path: source.path.clone(),
        name: source.name.clone(),
        line_start: source.lines.start,
        line_end: source.lines.end,
        snippet: text.to_string(),
    }
}

/// The extractive answer: the best sentence quoted, `From home.md: "…"`.
pub fn extractive(
    question: &str,
    query: &[f32],
    sources: &[Source],
    vectors: &[Vec<Vec<f32>>],
    dropped: &HashSet<At>,
) -> Answer {
    let Some((s, i)) = best_sentence(question, query, sources, vectors, dropped) else {
        return Answer::abstain();
    };
    let source = &sources[s];
    let sentence = &source.sentences[i];
    let mut flags = Vec::new();
    if !dropped.is_empty() {
        flags.push(Flag::NewerContentWins);
    }
    Answer {
        text: format!("From {}: \"{}\"", source.name, sentence.text),
        mode: Used::Extractive,
        citations: vec![cite_sentence(source, sentence)],
        flags,
        unsupported: Vec::new(),
    }
}

/// A source as the model reads it: its number, name and kept sentences.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptSource {
    pub n: usize,
    pub name: String,
    pub text: String,
}

/// The sources the model reads, without their superseded sentences: those
/// scoring at least `relative` times the best source's similarity (every
/// token costs prefill time before the answer's first word, and a small
/// model is easily led astray by a source that does not answer).
pub fn prompt_sources(
    sources: &[Source],
    dropped: &HashSet<At>,
    relative: f32,
) -> Vec<PromptSource> {
    let floor = sources.iter().map(|s| s.score).fold(0.0, f32::max) * relative.clamp(0.0, 1.0);
    sources
        .iter()
        .enumerate()
        .filter(|(_, source)| source.score >= floor)
        .map(|(s, source)| {
            let text = source
                .sentences
                .iter()
                .enumerate()
                .filter(|(i, _)| !dropped.contains(&(s, *i)))
                .map(|(_, x)| x.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            PromptSource {
                n: source.n,
                name: source.name.clone(),
                text,
            }
        })
        .filter(|p| !p.text.is_empty())
        .collect()
}

/// Stop strings for the completion prompt: one answer is one line.
pub const COMPLETION_STOP: &[&str] = &["\n"];

/// Worked examples shown to base models before the real question (made-up
/// facts, none in any test fixture).
const EXAMPLES: &str = "Sources:\n\
[1] pets.md: Our cat Pip was born on 2 June 2017. Pip eats twice a day.\n\
[2] car.md: The car is a blue Fiat Panda. Its next service is due at 92,000 km.\n\
Question: When is the car's next service due?\n\
Answer: At 92,000 km [2].\n\
\n\
Sources:\n\
[1] work.md: The office printer is called Otter and sits on floor 3.\n\
Question: What is the name of the office printer?\n\
Answer: Otter [1].\n\
\n";

fn sources_block(sources: &[PromptSource]) -> String {
    sources
        .iter()
        .map(|s| format!("[{}] {}: {}\n", s.n, s.name, s.text.replace('\n', " ")))
        .collect()
}

/// voxd's completion-style grounded prompt for base models: an instruction,
/// two worked examples, the conversation so far, the numbered sources, the
/// question and an `Answer:` cue (stop at the end of the line).
pub fn completion_prompt(question: &str, sources: &[PromptSource], history: &[Turn]) -> String {
    let mut p = String::from(
        "Answer each question in one short line using only the numbered sources, \
         and cite them like [1].\n\n",
    );
    p.push_str(EXAMPLES);
    for turn in history {
        p.push_str(&format!(
            "Question: {}\nAnswer: {}\n\n",
            one_line(&turn.question),
            one_line(&turn.answer)
        ));
    }
    p.push_str("Sources:\n");
    p.push_str(&sources_block(sources));
    p.push_str(&format!("Question: {}\nAnswer:", one_line(question)));
    p
}

/// A completion prompt without sources (`--no-rag`).
pub fn plain_completion_prompt(question: &str, history: &[Turn]) -> String {
    let mut p = String::new();
    for turn in history {
        p.push_str(&format!(
            "Question: {}\nAnswer: {}\n\n",
            one_line(&turn.question),
            one_line(&turn.answer)
        ));
    }
    p.push_str(&format!("Question: {}\nAnswer:", one_line(question)));
    p
}

/// The system prompt of chat models.
pub const SYSTEM_PROMPT: &str = "You are voxd, a private offline assistant. Answer briefly \
    from the user's notes given as numbered sources, and cite them like [1]. If the sources \
    do not contain the answer, say you don't find it in the notes.";

/// Chat messages for models with a template: system prompt, history, then
/// the sources and the question (the sources are never trimmed).
pub fn chat_prompt(
    question: &str,
    sources: Option<&[PromptSource]>,
    history: &[Turn],
) -> Vec<ChatMessage> {
    let mut messages = vec![ChatMessage {
        role: ChatRole::System,
        content: SYSTEM_PROMPT.to_string(),
    }];
    for turn in history {
        messages.push(ChatMessage {
            role: ChatRole::User,
            content: turn.question.clone(),
        });
        messages.push(ChatMessage {
            role: ChatRole::Assistant,
            content: turn.answer.clone(),
        });
    }
    let content = match sources {
        Some(sources) => format!("Sources:\n{}\nQuestion: {question}", sources_block(sources)),
        None => question.to_string(),
    };
    messages.push(ChatMessage {
        role: ChatRole::User,
        content,
    });
    messages
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes `[1]`-style references, which are not claims about the world.
pub fn strip_refs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let close = after.find(']');
        match close {
            Some(c)
                if c > 0
                    && after[..c]
                        .chars()
                        .all(|ch| ch.is_ascii_digit() || ch == ',' || ch == ' ') =>
            {
                out.push_str(&rest[..open]);
                rest = &after[c + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The tokens of `text` that make a claim checkable: anything with a digit
/// (numbers, dates, codes like `kettle-47-moon`), capitalised words (names)
/// and all-caps words. Surrounding punctuation is trimmed.
pub fn specific_tokens(text: &str) -> Vec<String> {
    let text = strip_refs(text);
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .map(|w| {
            w.strip_suffix("'s")
                .or_else(|| w.strip_suffix("’s"))
                .unwrap_or(w)
        })
        .filter(|w| {
            w.chars().any(|c| c.is_ascii_digit())
                || w.chars().next().is_some_and(char::is_uppercase)
        })
        .filter(|w| *w != "I")
        .map(str::to_string)
        .collect()
}

/// The specific tokens a sentence states, for telling statements apart: a
/// sentence's capitalised first word is just grammar unless it holds a digit.
fn claims(text: &str) -> Vec<String> {
    let mut tokens = specific_tokens(text);
    let first = strip_refs(text)
        .split_whitespace()
        .next()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string());
    if let (Some(first), Some(t)) = (first, tokens.first()) {
        if *t == first && !t.chars().any(|c| c.is_ascii_digit()) {
            tokens.remove(0);
        }
    }
    tokens
}

/// Whether `needle` occurs in `hay` as a whole word (case-insensitive;
/// both already lower-case). Digits are compared without thousands
/// separators ("5,820" = "5820").
fn contains_word(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        if !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric) {
            return true;
        }
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

fn normalise(text: &str) -> String {
    let lower = text.to_lowercase();
    // "5,820" → "5820", keeping other commas.
    let chars: Vec<char> = lower.chars().collect();
    chars
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            !(**c == ','
                && i.checked_sub(1).is_some_and(|p| chars[p].is_ascii_digit())
                && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        })
        .map(|(_, c)| *c)
        .collect()
}

/// The support check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Support {
    /// Specific tokens found in no source and not in the question.
    pub unsupported: Vec<String>,
    /// Sources containing at least one of the answer's specific tokens.
    pub backing: Vec<usize>,
    /// The answer states nothing (empty, or only a reference).
    pub empty: bool,
}

impl Support {
    pub fn ok(&self) -> bool {
        self.unsupported.is_empty() && !self.empty
    }
}

/// Checks a generated answer against the sources it was given.
pub fn support(answer: &str, question: &str, sources: &[PromptSource]) -> Support {
    let texts: Vec<String> = sources
        .iter()
        .map(|s| normalise(&format!("{} {}", s.name, s.text)))
        .collect();
    let question = normalise(question);
    let mut unsupported = Vec::new();
    let mut backing = Vec::new();
    for token in specific_tokens(answer) {
        let t = normalise(&token);
        let found: Vec<usize> = sources
            .iter()
            .zip(&texts)
            .filter(|(_, text)| contains_word(text, &t))
            .map(|(s, _)| s.n)
            .collect();
        if found.is_empty() && !contains_word(&question, &t) {
            unsupported.push(token);
        }
        for n in found {
            if !backing.contains(&n) {
                backing.push(n);
            }
        }
    }
    let empty = strip_refs(answer)
        .trim()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .is_empty();
    Support {
        unsupported,
        backing,
        empty,
    }
}

/// Turns a generated answer into the reply: kept with citations from the
/// sources that back it when it passes the support check, else replaced by
/// `fallback` (the extractive answer) and flagged.
pub fn finish_generative(
    generated: &str,
    question: &str,
    sources: &[Source],
    prompt: &[PromptSource],
    fallback: Answer,
) -> Answer {
    let text = generated.trim().to_string();
    let verdict = support(&text, question, prompt);
    if !verdict.ok() {
        let mut answer = fallback;
        answer.flags.insert(0, Flag::UnsupportedReplaced);
        answer.unsupported = verdict.unsupported;
        return answer;
    }
    let mut numbers = verdict.backing;
    if numbers.is_empty() {
        // Nothing specific to match: cite what the model referenced, if it
        // exists, else the best source.
        numbers = referenced(&text)
            .into_iter()
            .filter(|n| prompt.iter().any(|p| p.n == *n))
            .collect();
    }
    if numbers.is_empty() {
        numbers.extend(prompt.first().map(|p| p.n));
    }
    let citations = numbers
        .iter()
        .filter_map(|n| {
            let source = sources.iter().find(|s| s.n == *n)?;
            let text = prompt.iter().find(|p| p.n == *n)?;
            Some(cite_source(source, &text.text))
        })
        .collect();
    Answer {
        text,
        mode: Used::Generative,
        citations,
        flags: Vec::new(),
        unsupported: Vec::new(),
    }
}

/// The source numbers a text refers to as `[n]`.
fn referenced(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        if let Some(close) = rest.find(']') {
            for n in rest[..close]
                .split(',')
                .filter_map(|x| x.trim().parse().ok())
            {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentence(text: &str, line: u32, revision: i64) -> SentenceRow {
        SentenceRow {
            text: text.into(),
            lines: Lines {
                start: line,
                end: line,
            },
            revision,
            vector: None,
        }
    }

    fn source(n: usize, name: &str, sentences: Vec<SentenceRow>) -> Source {
        Source {
            n,
            kind: DocKind::Note,
            path: format!("/notes/{name}"),
            name: name.into(),
            heading: String::new(),
            lines: Lines {
                start: sentences[0].lines.start,
                end: sentences[sentences.len() - 1].lines.end,
            },
            score: 0.5,
            sentences,
        }
    }

    fn prompt(sources: &[Source]) -> Vec<PromptSource> {
        prompt_sources(sources, &HashSet::new(), 0.0)
    }

    #[test]
    fn only_sources_near_the_best_reach_the_prompt() {
        let scored = |n, name, score| Source {
            score,
            ..source(n, name, vec![sentence(name, 1, 1)])
        };
        // "What is the front door code?" over tests/fixtures/notes.
        let sources = [
            scored(1, "home.md", 0.701),
            scored(2, "car.md", 0.246),
            scored(3, "wifi.md", 0.36),
            scored(4, "lemon-cake.md", 0.162),
        ];
        let names = |relative| -> Vec<String> {
            prompt_sources(&sources, &HashSet::new(), relative)
                .into_iter()
                .map(|p| format!("[{}] {}", p.n, p.name))
                .collect()
        };
        assert_eq!(names(0.5), ["[1] home.md", "[3] wifi.md"]);
        assert_eq!(names(0.0).len(), 4);
        assert_eq!(names(7.0), ["[1] home.md"], "never less than the best");
    }

    #[test]
    fn specific_tokens_are_numbers_names_and_codes_without_refs() {
        assert_eq!(
            specific_tokens("Maria's birthday is 14 March [2]; the code is kettle-47-moon."),
            ["Maria", "14", "March", "kettle-47-moon"]
        );
        assert_eq!(strip_refs("yes [1, 2] and [x] [3]"), "yes  and [x] ");
    }

    #[test]
    fn a_supported_answer_is_kept_and_cites_the_backing_source() {
        let sources = vec![
            source(
                1,
                "home.md",
                vec![sentence("The wifi password is kettle-47-moon.", 3, 1)],
            ),
            source(
                2,
                "people.md",
                vec![sentence("Maria's birthday is 14 March.", 5, 2)],
            ),
        ];
        let p = prompt(&sources);
        let a = finish_generative(
            " kettle-47-moon [2]",
            "what is the wifi password?",
            &sources,
            &p,
            Answer::abstain(),
        );
        assert_eq!(a.mode, Used::Generative);
        assert_eq!(a.text, "kettle-47-moon [2]");
        // Cited from retrieval: source 1 holds the token, whatever [2] says.
        assert_eq!(a.citations.len(), 1);
        assert_eq!(a.citations[0].n, 1);
        assert_eq!(a.citations[0].name, "home.md");
        assert_eq!((a.citations[0].line_start, a.citations[0].line_end), (3, 3));
    }

    #[test]
    fn an_unsupported_answer_is_replaced_and_flagged() {
        let sources = vec![source(
            1,
            "people.md",
            vec![sentence("Maria's birthday is 14 March.", 5, 1)],
        )];
        let p = prompt(&sources);
        let fallback = Answer {
            text: "From people.md: \"Maria's birthday is 14 March.\"".into(),
            mode: Used::Extractive,
            citations: vec![cite_sentence(&sources[0], &sources[0].sentences[0])],
            flags: Vec::new(),
            unsupported: Vec::new(),
        };
        // A wrong date, an invented name, a wrong number.
        for generated in [
            "Maria was born on 12 March.",
            "Her birthday is in June.",
            "It is on 14 March, says Lucia.",
        ] {
            let a = finish_generative(
                generated,
                "When is Maria's birthday?",
                &sources,
                &p,
                fallback.clone(),
            );
            assert_eq!(a.mode, Used::Extractive, "{generated}");
            assert_eq!(a.flags[0], Flag::UnsupportedReplaced);
            assert_eq!(a.text, fallback.text);
            assert!(!a.unsupported.is_empty());
        }
        let a = finish_generative("  [1] ", "When?", &sources, &p, fallback.clone());
        assert_eq!(
            a.flags,
            [Flag::UnsupportedReplaced],
            "an empty answer is not supported"
        );
        // Words of the question are fine even if the source lacks them.
        let a = finish_generative(
            "Maria: 14 March",
            "When is Maria's birthday?",
            &sources,
            &p,
            fallback,
        );
        assert_eq!(a.mode, Used::Generative);
    }

    #[test]
    fn numbers_match_whole_words_only() {
        let sources = vec![source(
            1,
            "home.md",
            vec![sentence("The door code is 58201.", 1, 1)],
        )];
        let p = prompt(&sources);
        assert_eq!(support("5820", "code?", &p).unsupported, ["5820"]);
        assert!(support("58,201", "code?", &p).ok());
        assert!(support("58201.", "code?", &p).ok());
    }

    #[test]
    fn the_completion_prompt_numbers_sources_and_ends_with_the_cue() {
        let sources = vec![
            PromptSource {
                n: 1,
                name: "home.md".into(),
                text: "The door code is 5820.".into(),
            },
            PromptSource {
                n: 2,
                name: "a.md".into(),
                text: "two\nlines".into(),
            },
        ];
        let history = vec![Turn {
            question: "Hi\nthere".into(),
            answer: "Hello".into(),
        }];
        let p = completion_prompt("What is the door code?", &sources, &history);
        assert!(p.ends_with("Sources:\n[1] home.md: The door code is 5820.\n[2] a.md: two lines\nQuestion: What is the door code?\nAnswer:"), "{p}");
        assert!(p.contains("Question: Hi there\nAnswer: Hello\n\n"));
        // Two worked examples precede the real sources.
        assert_eq!(p.matches("Sources:\n").count(), 3);
        assert!(p.find("Otter").unwrap() < p.find("door code is 5820").unwrap());
        let chat = chat_prompt("q?", Some(&sources), &history);
        assert_eq!(chat.len(), 4);
        assert_eq!(chat[0].role, ChatRole::System);
        assert!(chat[3].content.starts_with("Sources:\n[1] home.md:"));
        assert!(chat[3].content.ends_with("Question: q?"));
    }

    #[test]
    fn newer_statements_supersede_older_ones_on_the_same_subject() {
        let sources = vec![source(
            1,
            "home.md",
            vec![
                sentence("The door code is 4417.", 3, 1),
                sentence("Updated: the door code is now 5820.", 9, 2),
                sentence("The door sticks in winter.", 4, 1),
            ],
        )];
        // Hand-made unit vectors: sentences 0 and 1 on the same subject.
        let vectors = vec![vec![vec![1.0, 0.0], vec![0.8, 0.6], vec![0.0, 1.0]]];
        let dropped = superseded(&sources, &vectors);
        assert_eq!(dropped, HashSet::from([(0, 0)]));
        let a = extractive(
            "What is the door code?",
            &[1.0, 0.0],
            &sources,
            &vectors,
            &dropped,
        );
        assert_eq!(
            a.text,
            "From home.md: \"Updated: the door code is now 5820.\""
        );
        assert_eq!(a.citations[0].line_start, 9);
        assert_eq!(a.flags, [Flag::NewerContentWins]);
        let p = prompt_sources(&sources, &dropped, 0.5);
        assert!(!p[0].text.contains("4417"));
        // The old code is no longer supported.
        assert!(!support("4417", "door code?", &p).ok());
    }

    #[test]
    fn list_items_with_quantities_of_different_things_do_not_conflict() {
        let sources = vec![source(
            1,
            "cake.md",
            vec![
                sentence("340 grams of self-raising flour", 3, 1),
                sentence("200 grams of caster sugar", 5, 1),
            ],
        )];
        let vectors = vec![vec![vec![1.0, 0.0]; 2]];
        assert!(superseded(&sources, &vectors).is_empty());
    }

    #[test]
    fn same_revision_later_line_wins_and_equal_specifics_do_not_conflict() {
        let sources = vec![source(
            1,
            "a.md",
            vec![
                sentence("Code 1111.", 1, 5),
                sentence("Code now 2222.", 2, 5),
                sentence("Code now 2222!", 3, 5),
            ],
        )];
        let vectors = vec![vec![vec![1.0, 0.0]; 3]];
        let dropped = superseded(&sources, &vectors);
        assert_eq!(dropped, HashSet::from([(0, 0)]));
    }
}
