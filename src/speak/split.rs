//! The sentence splitter: turns a stream of text tokens (an LLM reply,
//! markdown and all) into speakable chunks, each emitted as soon as it is
//! complete so synthesis can start while text is still arriving.
//!
//! A chunk ends at a sentence end (`.`, `!`, `?`, `…`, then optional closing
//! quotes or brackets, then whitespace), at a line break (paragraphs, list
//! items, headings), or, for run-on text, at a comma or space before
//! [`MAX_CHUNK_CHARS`]. Abbreviations (`Dr.`, `e.g.`), initials (`J.`),
//! decimals (`3.14`), list numbers (`1.`) and URLs do not end a sentence.
//! Fenced code blocks are not read aloud; markdown syntax and citation
//! markers (`[3]`) are removed from what is (see [`clean`]).

/// A run-on chunk is cut near this length so latency stays bounded.
pub const MAX_CHUNK_CHARS: usize = 300;

/// Words that end with a period but do not end a sentence (lower case,
/// without the final period).
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "e.g", "i.e", "cf", "fig", "approx",
    "dept", "no", "nr", "vol", "ca", "mt",
];

/// Characters that may follow a sentence end before the whitespace.
fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | ')' | ']' | '}' | '”' | '’' | '»' | '*' | '_'
    )
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

/// Streaming splitter state.
#[derive(Debug, Default)]
pub struct Splitter {
    /// Text received but not yet placed in a chunk (an unfinished line
    /// start that may still turn out to be a code fence).
    raw: String,
    /// The chunk being built (raw markdown).
    chunk: String,
    /// The chunk began at the start of a line.
    chunk_at_line_start: bool,
    /// The next character of `raw` starts a line.
    line_start: bool,
    /// Inside a fenced code block.
    in_fence: bool,
}

impl Splitter {
    pub fn new() -> Splitter {
        Splitter {
            line_start: true,
            chunk_at_line_start: true,
            ..Splitter::default()
        }
    }

    /// Adds text; returns the speakable chunks it completed, in order.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.raw.push_str(text);
        let mut out = Vec::new();
        self.scan(false, &mut out);
        out
    }

    /// Ends the stream; returns the last chunks.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        self.scan(true, &mut out);
        self.emit(&mut out);
        self.in_fence = false;
        self.line_start = true;
        self.chunk_at_line_start = true;
        out
    }

    fn scan(&mut self, eof: bool, out: &mut Vec<String>) {
        loop {
            if self.raw.is_empty() {
                return;
            }
            if self.line_start {
                let line_end = self.raw.find('\n');
                let line = &self.raw[..line_end.unwrap_or(self.raw.len())];
                let trimmed = line.trim_start();
                let fence = trimmed.starts_with("```") || trimmed.starts_with("~~~");
                let maybe_fence = "```".starts_with(trimmed) || "~~~".starts_with(trimmed);
                if fence || self.in_fence {
                    // Fence lines and code are dropped whole: wait for the line end.
                    let Some(end) = line_end else {
                        if eof {
                            self.raw.clear();
                        }
                        return;
                    };
                    if fence {
                        self.emit(out);
                        self.in_fence = !self.in_fence;
                    }
                    self.raw.drain(..=end);
                    continue;
                }
                if maybe_fence && line_end.is_none() && !eof {
                    return; // could still become ``` — wait
                }
                self.line_start = false;
            }
            // Move the rest of this line into the chunk.
            let (take, newline) = match self.raw.find('\n') {
                Some(i) => (i, true),
                None => (self.raw.len(), false),
            };
            self.chunk.push_str(&self.raw[..take]);
            self.raw.drain(..take + usize::from(newline));
            self.split_sentences(out);
            if newline {
                self.emit(out);
                self.line_start = true;
                self.chunk_at_line_start = true;
            }
        }
    }

    /// Emits every complete sentence in the chunk; keeps the rest.
    fn split_sentences(&mut self, out: &mut Vec<String>) {
        while let Some(cut) = sentence_end(&self.chunk, self.chunk_at_line_start) {
            let rest = self.chunk.split_off(cut);
            self.emit(out);
            self.chunk = rest.trim_start().to_string();
            self.chunk_at_line_start = false;
        }
        while self.chunk.chars().count() > MAX_CHUNK_CHARS {
            let cut = run_on_cut(&self.chunk);
            let rest = self.chunk.split_off(cut);
            self.emit(out);
            self.chunk = rest.trim_start().to_string();
            self.chunk_at_line_start = false;
        }
    }

    fn emit(&mut self, out: &mut Vec<String>) {
        let chunk = std::mem::take(&mut self.chunk);
        if let Some(text) = clean(&chunk) {
            out.push(text);
        }
    }
}

/// Splits a whole text at once.
pub fn split(text: &str) -> Vec<String> {
    let mut splitter = Splitter::new();
    let mut chunks = splitter.push(text);
    chunks.extend(splitter.finish());
    chunks
}

/// The byte offset just after the first sentence end in `chunk` that is
/// followed by whitespace (so a token still to come cannot change it).
fn sentence_end(chunk: &str, at_line_start: bool) -> Option<usize> {
    let chars: Vec<(usize, char)> = chunk.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if !is_terminator(c) {
            i += 1;
            continue;
        }
        // Run of terminators and closers: "?!", ".)", ".\"".
        let mut j = i + 1;
        while j < chars.len() && (is_terminator(chars[j].1) || is_closer(chars[j].1)) {
            j += 1;
        }
        let Some(&(after, next)) = chars.get(j) else {
            return None; // the next token decides
        };
        if next.is_whitespace() && (c != '.' || ends_sentence(&chunk[..pos], at_line_start)) {
            return Some(after);
        }
        i = j;
    }
    None
}

/// Whether a period after `before` ends a sentence.
fn ends_sentence(before: &str, at_line_start: bool) -> bool {
    let word = before
        .rsplit(|c: char| c.is_whitespace())
        .next()
        .unwrap_or("")
        .trim_start_matches(|c: char| !c.is_alphanumeric());
    if word.is_empty() {
        return true;
    }
    let lower = word.to_lowercase();
    if ABBREVIATIONS.contains(&lower.as_str()) {
        return false;
    }
    // An initial: "J. R. R. Tolkien".
    let mut letters = word.chars();
    if let (Some(first), None) = (letters.next(), letters.next()) {
        if first.is_uppercase() {
            return false;
        }
    }
    // "e.g" style words with inner periods, and URLs / file names.
    if word.contains('.') && word.chars().all(|c| c.is_alphabetic() || c == '.') && word.len() <= 6
    {
        return false;
    }
    // A list number at the start of a line: "1. Eggs".
    let numbered_item = word.chars().all(|c| c.is_ascii_digit()) && before.trim() == word;
    !(numbered_item && at_line_start)
}

/// Where to cut a run-on chunk: after the last comma, semicolon or colon
/// before the limit, else the last space, else at the limit.
fn run_on_cut(chunk: &str) -> usize {
    let limit = chunk
        .char_indices()
        .nth(MAX_CHUNK_CHARS)
        .map_or(chunk.len(), |(i, _)| i);
    let head = &chunk[..limit];
    head.rfind([',', ';', ':'])
        .map(|i| i + 1)
        .or_else(|| head.rfind(' '))
        .filter(|&i| i > 0)
        .unwrap_or(limit)
}

/// Turns one raw markdown chunk into the text to speak, or `None` when
/// nothing in it is speakable (a rule, a lone bullet, only punctuation).
pub fn clean(raw: &str) -> Option<String> {
    let mut line = raw.trim();
    // Block markers at the line start: headings, quotes, bullets, numbers.
    loop {
        let before = line;
        line = line.trim_start_matches('#').trim_start();
        line = line.trim_start_matches('>').trim_start();
        for bullet in ["- [ ] ", "- [x] ", "- ", "* ", "+ ", "• "] {
            if let Some(rest) = line.strip_prefix(bullet) {
                line = rest.trim_start();
            }
        }
        // "1. " and "2) " list numbers.
        let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            if let Some(rest) = line[digits..]
                .strip_prefix(". ")
                .or_else(|| line[digits..].strip_prefix(") "))
            {
                line = rest.trim_start();
            }
        }
        if line == before {
            break;
        }
    }
    if line
        .chars()
        .all(|c| matches!(c, '-' | '*' | '_' | '=' | ' '))
    {
        return None; // horizontal rule or setext underline
    }
    let mut text = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        // Links and images: keep the text, drop the target.
        if let Some(after) = rest.strip_prefix("![").or_else(|| rest.strip_prefix('[')) {
            if let Some(close) = after.find("](") {
                if let Some(end) = after[close + 2..].find(')') {
                    text.push_str(&after[..close]);
                    rest = &after[close + 2 + end + 1..];
                    continue;
                }
            }
        }
        // Citation and footnote markers ([3], [1, 2], [^4]) are not read.
        if let Some(len) = reference_at(rest) {
            text.truncate(text.trim_end().len());
            rest = &rest[len..];
            continue;
        }
        // Bare URLs: say the host only.
        if let Some(url_len) = url_at(rest) {
            text.push_str(url_host(&rest[..url_len]));
            rest = &rest[url_len..];
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        rest = &rest[c.len_utf8()..];
        match c {
            '*' | '`' | '~' | '#' | '[' | ']' => {}
            '_' => {
                // Emphasis markers go; snake_case keeps a space.
                let inner = text.chars().last().is_some_and(char::is_alphanumeric)
                    && rest.chars().next().is_some_and(char::is_alphanumeric);
                if inner {
                    text.push(' ');
                }
            }
            '|' => text.push_str(", "),
            '<' | '>' => text.push(' '),
            c if c.is_control() => text.push(' '),
            c => text.push(c),
        }
    }
    let text = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" ,", ",");
    let text = text.trim_matches(|c: char| c == ',' || c.is_whitespace());
    text.chars()
        .any(char::is_alphanumeric)
        .then(|| text.to_string())
}

/// Length of the URL starting `s`, if one does.
fn url_at(s: &str) -> Option<usize> {
    let scheme = ["https://", "http://", "www."].into_iter().find(|p| {
        s.get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
    })?;
    let end = s
        .find(|c: char| c.is_whitespace() || matches!(c, ')' | '>' | '"' | '\''))
        .unwrap_or(s.len());
    // A sentence's final punctuation is not part of the URL.
    let url = s[..end].trim_end_matches(['.', ',', ';', ':', '!', '?']);
    (url.len() > scheme.len()).then_some(url.len())
}

/// The host of a URL: `https://docs.rs/tokio/x` → `docs.rs`.
fn url_host(url: &str) -> &str {
    let no_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = no_scheme.split(['/', '?', '#']).next().unwrap_or(no_scheme);
    host.strip_prefix("www.").unwrap_or(host)
}

/// The length of a citation or footnote marker at the start of `s`: digits
/// (with commas and spaces between), or `^` and a label, in brackets.
fn reference_at(s: &str) -> Option<usize> {
    let inner = s.strip_prefix('[')?;
    let close = inner.find(']')?;
    let label = &inner[..close];
    let numbers = label.chars().any(|c| c.is_ascii_digit())
        && label
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == ' ');
    let footnote =
        label.len() > 1 && label.starts_with('^') && !label.contains(char::is_whitespace);
    (numbers || footnote).then_some(close + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `text` in pieces of `n` characters.
    fn stream(text: &str, n: usize) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        let mut s = Splitter::new();
        let mut out = Vec::new();
        for piece in chars.chunks(n) {
            out.extend(s.push(&piece.iter().collect::<String>()));
        }
        out.extend(s.finish());
        out
    }

    fn check(text: &str, expected: &[&str]) {
        for n in [1, 2, 3, 7, 1000] {
            assert_eq!(stream(text, n), expected, "pieces of {n} chars: {text:?}");
        }
    }

    #[test]
    fn sentences_end_at_stops_questions_and_exclamations() {
        check(
            "Hello there. How are you? Great!  Fine…  Bye",
            &["Hello there.", "How are you?", "Great!", "Fine…", "Bye"],
        );
    }

    #[test]
    fn a_sentence_is_emitted_before_the_stream_ends() {
        let mut s = Splitter::new();
        assert!(s.push("The weather is sunny").is_empty());
        assert!(
            s.push(".").is_empty(),
            "a period alone could be 3.14 or e.g."
        );
        assert_eq!(s.push(" Tomor"), ["The weather is sunny."]);
        assert!(s.push("row it rains").is_empty());
        assert_eq!(s.finish(), ["Tomorrow it rains"]);
    }

    #[test]
    fn abbreviations_initials_and_numbers_do_not_end_sentences() {
        check(
            "Dr. Smith met Mr. J. R. Jones, e.g. at 3.14 p.m. on St. Mark's day. Pi is 3.14159. Then i.e. this.",
            &[
                "Dr. Smith met Mr. J. R. Jones, e.g. at 3.14 p.m. on St. Mark's day.",
                "Pi is 3.14159.",
                "Then i.e. this.",
            ],
        );
        check(
            "It costs $2.50. Version 2. Done.",
            &["It costs $2.50.", "Version 2.", "Done."],
        );
    }

    #[test]
    fn quotes_and_brackets_stay_with_their_sentence() {
        check(
            "He said \"Stop.\" Then (quietly.) she left?! Yes.",
            &["He said \"Stop.\"", "Then (quietly.)", "she left?!", "Yes."],
        );
    }

    #[test]
    fn lists_and_headings_are_chunks_without_their_markers() {
        check(
            "# Shopping\n\nYou need:\n1. Eggs\n2. Flour. Fresh flour.\n- **Milk**\n* [Butter](https://shop.example/b)\n\n---\nDone.",
            &[
                "Shopping",
                "You need:",
                "Eggs",
                "Flour.",
                "Fresh flour.",
                "Milk",
                "Butter",
                "Done.",
            ],
        );
    }

    #[test]
    fn code_blocks_are_not_read_and_inline_code_loses_its_backticks() {
        check(
            "Run this:\n```bash\ncargo build. Now.\nls -la\n```\nThen call `main()` and my_var. End.",
            &["Run this:", "Then call main() and my var.", "End."],
        );
        // An unclosed fence at the end swallows the rest, without hanging.
        check("Look:\n```\nfn main() {}", &["Look:"]);
    }

    #[test]
    fn urls_are_spoken_as_their_host_and_do_not_split() {
        check(
            "See https://docs.rs/tokio/latest/tokio/index.html. Or www.example.com/a?b=c, later.",
            &["See docs.rs.", "Or example.com, later."],
        );
    }

    #[test]
    fn markdown_emphasis_tables_and_quotes_are_not_read() {
        check(
            "> **Note:** this is _very_ ~~bad~~ good.\n| a | b |\n|---|---|",
            &["Note: this is very bad good.", "a, b"],
        );
    }

    #[test]
    fn citation_and_footnote_markers_are_not_read() {
        check(
            "The code is 4417 [3]. Maria [1, 2] likes puzzles[^note]. Box [a] stays.",
            &["The code is 4417.", "Maria likes puzzles.", "Box a stays."],
        );
        // A link whose text is a number keeps it.
        check("See [3](https://example.com).", &["See 3."]);
    }

    #[test]
    fn nothing_speakable_gives_no_chunks() {
        check("", &[]);
        check("...!!! ??? ---\n\n***\n", &[]);
        check("   \n\t\n", &[]);
    }

    #[test]
    fn run_on_text_is_cut_at_a_comma_near_the_limit() {
        let clause = "and then it went on, ";
        let text = clause.repeat(40);
        let chunks = stream(&text, 5);
        assert!(chunks.len() > 2, "{chunks:?}");
        for c in &chunks {
            assert!(c.chars().count() <= MAX_CHUNK_CHARS, "{c}");
            assert!(c.ends_with("on"), "cut after a comma: {c:?}");
        }
        let words: usize = chunks.iter().map(|c| c.split_whitespace().count()).sum();
        assert_eq!(words, text.split_whitespace().count(), "no words lost");
    }

    #[test]
    fn a_long_word_without_spaces_is_cut_at_the_limit() {
        let text = "x".repeat(MAX_CHUNK_CHARS * 2 + 10);
        let chunks = stream(&text, 64);
        assert_eq!(chunks.concat(), text);
        assert!(chunks.iter().all(|c| c.chars().count() <= MAX_CHUNK_CHARS));
    }

    #[test]
    fn multibyte_text_splits_on_character_boundaries() {
        check(
            "Grüße aus Köln. Ça va? 東京は晴れ。 Yes",
            &["Grüße aus Köln.", "Ça va?", "東京は晴れ。 Yes"],
        );
    }
}
