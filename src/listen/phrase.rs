//! Wake phrases configured as text (`listen.wake_phrases`, e.g. "hey
//! computer"): no model is trained for them. While voxd sleeps, every
//! speech segment the VAD cuts is transcribed by the STT engine and its
//! transcript is matched here against the phrases.
//!
//! Matching is on letters only, so Whisper's punctuation, casing and word
//! splits do not matter ("Hey, Computer." and "hey-computer" both match
//! "hey computer"): the phrase's letters are compared with those of the
//! transcript's first words, one to the phrase's word count plus two,
//! optionally after one leading word ("okay, hey computer"), by normalised
//! Levenshtein similarity; the best window at or above
//! `listen.wake_phrase_similarity` matches. What follows the phrase in the
//! same segment is the question ("Hey computer, what's the time?").

/// A configured wake phrase.
#[derive(Debug, Clone)]
pub struct Phrase {
    /// As configured (the name in `wake.detected`).
    pub text: String,
    /// Its letters and digits, lowercase, without spaces.
    key: String,
    words: usize,
}

/// A phrase found at the start of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The phrase as configured.
    pub phrase: String,
    /// Similarity of the heard words to the phrase, 0 to 1.
    pub score: f32,
    /// What was said after the phrase, trimmed of punctuation at its
    /// start; empty when the segment held only the phrase.
    pub rest: String,
}

impl Phrase {
    /// The phrase, or why it cannot be one.
    pub fn new(text: &str) -> Result<Phrase, String> {
        let words = words(text);
        if words.is_empty() {
            return Err(format!(
                "listen.wake_phrases: {text:?} has no letters or digits"
            ));
        }
        Ok(Phrase {
            text: text.trim().to_string(),
            key: words.iter().map(|w| key(w.1)).collect(),
            words: words.len(),
        })
    }
}

/// The words of `text` (runs of letters, digits and apostrophes) with their
/// byte offsets.
fn words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let in_word = c.is_alphanumeric() || c == '\'';
        match (start, in_word) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

fn key(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The best match of any of `phrases` at the start of `transcript` whose
/// similarity is at least `min_similarity`.
pub fn find(phrases: &[Phrase], transcript: &str, min_similarity: f32) -> Option<Match> {
    let words = words(transcript);
    let mut best: Option<(f32, &Phrase, usize)> = None;
    for phrase in phrases {
        // One leading word may come before the phrase ("okay, hey computer").
        for skip in 0..=1 {
            for len in 1..=phrase.words + 2 {
                let Some(window) = words.get(skip..skip + len) else {
                    break;
                };
                let heard: String = window.iter().map(|w| key(w.1)).collect();
                let score = strsim::normalized_levenshtein(&heard, &phrase.key) as f32;
                if score >= min_similarity && best.is_none_or(|(s, _, _)| score > s) {
                    best = Some((score, phrase, skip + len));
                }
            }
        }
    }
    best.map(|(score, phrase, used)| {
        let rest = words
            .get(used)
            .map_or("", |(offset, _)| &transcript[*offset..]);
        Match {
            phrase: phrase.text.clone(),
            score,
            rest: rest.trim().to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{find, Phrase};

    fn phrases(texts: &[&str]) -> Vec<Phrase> {
        texts.iter().map(|t| Phrase::new(t).unwrap()).collect()
    }

    #[test]
    fn punctuation_case_and_word_splits_do_not_matter() {
        let p = phrases(&["hey computer", "okay voxd"]);
        for heard in [
            "Hey, Computer.",
            "hey-computer!",
            "HEY COMPUTER",
            " Hey computer? ",
        ] {
            let m = find(&p, heard, 0.85).unwrap_or_else(|| panic!("{heard}"));
            assert_eq!((m.phrase.as_str(), m.rest.as_str()), ("hey computer", ""));
            assert!((m.score - 1.0).abs() < 1e-6, "{heard}: {m:?}");
        }
        let m = find(&p, "Okay, Vox D. Lights off.", 0.85).unwrap();
        assert_eq!(
            (m.phrase.as_str(), m.rest.as_str()),
            ("okay voxd", "Lights off.")
        );
    }

    #[test]
    fn what_follows_the_phrase_is_the_question() {
        let p = phrases(&["hey computer"]);
        let m = find(&p, "Hey computer, what is the wifi password?", 0.85).unwrap();
        assert_eq!(m.rest, "what is the wifi password?");
        let m = find(&p, "Okay, hey computer. What's the time?", 0.85).unwrap();
        assert_eq!(m.rest, "What's the time?");
    }

    #[test]
    fn a_near_miss_matches_and_other_speech_does_not() {
        let p = phrases(&["hey jarvis"]);
        let m = find(&p, "Hey Jervis, lights on.", 0.85).unwrap();
        assert!(m.score < 1.0 && m.score >= 0.8, "{m:?}");
        assert_eq!(m.rest, "lights on.");
        for other in [
            "Hello there, how are you today?",
            "I told them about Jarvis yesterday.",
            "Hey.",
            "",
            "Have a nice day.",
        ] {
            assert_eq!(find(&p, other, 0.85), None, "{other}");
        }
    }

    #[test]
    fn a_phrase_needs_letters() {
        assert!(Phrase::new(" ,.! ").is_err());
        assert_eq!(Phrase::new("  Hey Computer ").unwrap().text, "Hey Computer");
    }
}
