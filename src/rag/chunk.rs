//! Splitting a note into retrievable chunks: one per paragraph (list, code
//! block) under its heading path, long paragraphs cut at sentence
//! boundaries. Every chunk and every sentence keeps its 1-based line range,
//! so answers can cite `path:start-end` and quote single sentences. Pure
//! text processing; touches nothing else.

use unicode_segmentation::UnicodeSegmentation;

/// Paragraphs longer than this are cut into several chunks (at sentence
/// boundaries): MiniLM reads at most 256 word pieces.
pub const MAX_CHUNK_CHARS: usize = 1000;

/// Inclusive, 1-based line range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lines {
    pub start: u32,
    pub end: u32,
}

/// One sentence (or list item) of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    pub text: String,
    pub lines: Lines,
}

/// One retrievable piece of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Enclosing headings, outermost first, joined with " > " (markdown only).
    pub heading: String,
    /// The paragraph as written (lines joined with '\n').
    pub text: String,
    pub lines: Lines,
    pub sentences: Vec<Sentence>,
}

impl Chunk {
    /// What the embedder reads: the heading path gives a bare paragraph its
    /// subject ("## Wifi" above "password: …").
    pub fn embed_text(&self) -> String {
        if self.heading.is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", self.heading, self.text)
        }
    }
}

/// What the embedder reads for one sentence of a chunk under `heading`.
pub fn sentence_embed_text(heading: &str, sentence: &str) -> String {
    format!("{heading} {sentence}").trim().to_string()
}

/// The kinds of text file voxd indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Plain,
}

impl Format {
    /// By extension: `.md`/`.markdown` and `.txt`/`.text`/`.org`/`.rst`; other files
    /// are not notes.
    pub fn of(path: &std::path::Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "md" | "markdown" | "mdown" | "mkd" => Some(Format::Markdown),
            "txt" | "text" | "org" | "rst" => Some(Format::Plain),
            _ => None,
        }
    }
}

/// Splits a note into chunks.
pub fn chunk(text: &str, format: Format) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut headings: Vec<(usize, String)> = Vec::new();
    let mut para: Vec<(u32, &str)> = Vec::new();
    let mut in_fence = false;
    for (i, line) in text.lines().enumerate() {
        let no = i as u32 + 1;
        let trimmed = line.trim_start();
        if format == Format::Markdown {
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                in_fence = !in_fence;
                para.push((no, line));
                continue;
            }
            if !in_fence {
                if let Some((level, title)) = heading(trimmed) {
                    flush(&mut chunks, &headings, &mut para);
                    headings.retain(|(l, _)| *l < level);
                    headings.push((level, title.to_string()));
                    continue;
                }
            }
        }
        if line.trim().is_empty() && !in_fence {
            flush(&mut chunks, &headings, &mut para);
        } else {
            para.push((no, line));
        }
    }
    flush(&mut chunks, &headings, &mut para);
    chunks
}

/// `# Title` → (1, "Title"); ATX headings only.
fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.bytes().take_while(|b| *b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    Some((level, rest.trim().trim_end_matches('#').trim()))
}

fn flush(chunks: &mut Vec<Chunk>, headings: &[(usize, String)], para: &mut Vec<(u32, &str)>) {
    if para.is_empty() {
        return;
    }
    let heading = headings
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join(" > ");
    let sentences = sentences(para);
    // Cut long paragraphs at sentence boundaries.
    let mut start = 0;
    while start < sentences.len() {
        let mut end = start;
        let mut len = 0;
        while end < sentences.len()
            && (end == start || len + sentences[end].text.len() <= MAX_CHUNK_CHARS)
        {
            len += sentences[end].text.len() + 1;
            end += 1;
        }
        let part = &sentences[start..end];
        let lines = Lines {
            start: part[0].lines.start,
            end: part[part.len() - 1].lines.end,
        };
        let text = para
            .iter()
            .filter(|(no, _)| (lines.start..=lines.end).contains(no))
            .map(|(_, l)| *l)
            .collect::<Vec<_>>()
            .join("\n");
        chunks.push(Chunk {
            heading: heading.clone(),
            text,
            lines,
            sentences: part.to_vec(),
        });
        start = end;
    }
    // A paragraph of markup only (an empty code fence) yields no chunk.
    para.clear();
}

/// A list item or a table row starts a new logical line; wrapped prose
/// continues the previous one.
fn starts_item(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("- ")
        || t.starts_with("* ")
        || t.starts_with("+ ")
        || t.starts_with('|')
        || t.starts_with("```")
        || t.starts_with("> ")
        || {
            let digits = t.bytes().take_while(u8::is_ascii_digit).count();
            digits > 0 && (t[digits..].starts_with(". ") || t[digits..].starts_with(") "))
        }
}

/// Strips list and quote markers for quoting.
fn strip_marker(line: &str) -> &str {
    let t = line.trim();
    for marker in ["- [ ] ", "- [x] ", "- ", "* ", "+ ", "> "] {
        if let Some(rest) = t.strip_prefix(marker) {
            return rest.trim_start();
        }
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        if let Some(rest) = t[digits..]
            .strip_prefix(". ")
            .or_else(|| t[digits..].strip_prefix(") "))
        {
            return rest.trim_start();
        }
    }
    t
}

/// The sentences of a paragraph with their line ranges.
fn sentences(para: &[(u32, &str)]) -> Vec<Sentence> {
    // Logical lines: list items and lines after terminal punctuation start a
    // new one; others continue it (wrapped prose).
    let mut logical: Vec<Vec<(u32, &str)>> = Vec::new();
    for &(no, line) in para {
        let content = strip_marker(line);
        if content.starts_with("```") || content.starts_with("~~~") || content.is_empty() {
            continue;
        }
        let new = match logical.last().and_then(|l| l.last()) {
            None => true,
            Some((_, prev)) => {
                starts_item(line) || prev.trim_end().ends_with(['.', '!', '?', ':', ';'])
            }
        };
        if new {
            logical.push(Vec::new());
        }
        if let Some(cur) = logical.last_mut() {
            cur.push((no, content));
        }
    }
    let mut out = Vec::new();
    for parts in logical {
        // Joined text, and where each physical line starts in it.
        let mut joined = String::new();
        let mut starts = Vec::new();
        for (no, text) in &parts {
            if !joined.is_empty() {
                joined.push(' ');
            }
            starts.push((joined.len(), *no));
            joined.push_str(text.trim());
        }
        let line_at = |offset: usize| {
            starts
                .iter()
                .rev()
                .find(|(s, _)| *s <= offset)
                .map_or(starts[0].1, |(_, no)| *no)
        };
        for (offset, s) in joined.split_sentence_bound_indices() {
            let text = s.trim();
            if text.is_empty() {
                continue;
            }
            let lead = s.len() - s.trim_start().len();
            let start = offset + lead;
            let end = start + text.len() - 1;
            out.push(Sentence {
                text: text.to_string(),
                lines: Lines {
                    start: line_at(start),
                    end: line_at(end),
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str = "# Home\n\
        \n\
        ## Wifi\n\
        The wifi network is called Heron. The password is\n\
        kettle-47-moon.\n\
        \n\
        - Door code: 4417\n\
        - Updated: the door code is now 5820\n\
        \n\
        ## Garden\n\
        ### Roses\n\
        Prune in March.\n";

    #[test]
    fn chunks_follow_headings_and_paragraphs_with_line_ranges() {
        let chunks = chunk(NOTE, Format::Markdown);
        assert_eq!(chunks.len(), 3, "{chunks:#?}");
        assert_eq!(chunks[0].heading, "Home > Wifi");
        assert_eq!(chunks[0].lines, Lines { start: 4, end: 5 });
        assert_eq!(chunks[1].lines, Lines { start: 7, end: 8 });
        assert_eq!(chunks[2].heading, "Home > Garden > Roses");
        assert_eq!(chunks[2].lines, Lines { start: 12, end: 12 });
        assert!(chunks[2]
            .embed_text()
            .starts_with("Home > Garden > Roses\n"));
    }

    #[test]
    fn sentences_span_wrapped_lines_and_list_items_stand_alone() {
        let chunks = chunk(NOTE, Format::Markdown);
        let s = &chunks[0].sentences;
        assert_eq!(s.len(), 2, "{s:#?}");
        assert_eq!(s[0].text, "The wifi network is called Heron.");
        assert_eq!(s[0].lines, Lines { start: 4, end: 4 });
        assert_eq!(s[1].text, "The password is kettle-47-moon.");
        assert_eq!(s[1].lines, Lines { start: 4, end: 5 });
        let items = &chunks[1].sentences;
        assert_eq!(items[0].text, "Door code: 4417");
        assert_eq!(items[1].text, "Updated: the door code is now 5820");
        assert_eq!(items[1].lines, Lines { start: 8, end: 8 });
    }

    #[test]
    fn plain_text_has_no_headings_and_code_fences_stay_whole() {
        let chunks = chunk("# not a heading\nline two\n\nsecond", Format::Plain);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].heading, "");
        assert_eq!(chunks[0].lines, Lines { start: 1, end: 2 });

        let md = "```\n# comment in code\n\nstill code\n```\nafter";
        let chunks = chunk(md, Format::Markdown);
        assert_eq!(chunks.len(), 1, "{chunks:#?}");
        assert_eq!(chunks[0].heading, "");
        // The range spans the content, not the fence markers around it.
        assert_eq!(chunks[0].lines, Lines { start: 2, end: 6 });
    }

    #[test]
    fn long_paragraphs_are_cut_at_sentence_boundaries() {
        let para: String = (0..60)
            .map(|i| format!("Sentence number {i} says something long enough.\n"))
            .collect();
        let chunks = chunk(&para, Format::Plain);
        assert!(chunks.len() >= 3, "{}", chunks.len());
        for c in &chunks {
            assert!(c.text.len() <= MAX_CHUNK_CHARS + 60, "{}", c.text.len());
        }
        assert_eq!(chunks[0].lines.start, 1);
        assert_eq!(chunks.last().unwrap().lines.end, 60);
        let total: usize = chunks.iter().map(|c| c.sentences.len()).sum();
        assert_eq!(total, 60);
    }

    #[test]
    fn formats_by_extension() {
        use std::path::Path;
        assert_eq!(Format::of(Path::new("a/b.MD")), Some(Format::Markdown));
        assert_eq!(Format::of(Path::new("b.txt")), Some(Format::Plain));
        assert_eq!(Format::of(Path::new("b.png")), None);
        assert_eq!(Format::of(Path::new("README")), None);
    }
}
