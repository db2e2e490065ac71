//! Word error rate with jiwer-style normalisation: lower case, punctuation
//! removed (apostrophes kept inside words), whitespace collapsed, and
//! numbers below 100 written as words on both sides ("15" = "fifteen").

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

fn number_words(n: u32) -> Vec<String> {
    match n {
        0..=19 => vec![ONES[n as usize].to_owned()],
        20..=99 if n % 10 == 0 => vec![TENS[(n / 10) as usize].to_owned()],
        20..=99 => vec![
            TENS[(n / 10) as usize].to_owned(),
            ONES[(n % 10) as usize].to_owned(),
        ],
        _ => vec![n.to_string()],
    }
}

/// The words of `text` after normalisation.
pub fn normalise(text: &str) -> Vec<String> {
    let cleaned: String = text
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    cleaned
        .split_whitespace()
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .flat_map(|w| match w.parse::<u32>() {
            Ok(n) => number_words(n),
            Err(_) => vec![w.to_owned()],
        })
        .collect()
}

/// Whether `text` holds the words of `phrase` in a row (both normalised:
/// "kettle-47-moon" is "kettle forty seven moon").
pub fn says(text: &str, phrase: &str) -> bool {
    let (words, phrase) = (normalise(text), normalise(phrase));
    !phrase.is_empty() && words.windows(phrase.len()).any(|w| w == phrase.as_slice())
}

/// Word-level edit distance between `reference` and `hypothesis`.
pub fn errors(reference: &[String], hypothesis: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut row = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            let sub = prev[j] + usize::from(r != h);
            row[j + 1] = sub.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[hypothesis.len()]
}

/// Accumulates errors over many utterances (corpus WER).
#[derive(Debug, Default)]
pub struct Wer {
    pub errors: usize,
    pub words: usize,
}

impl Wer {
    pub fn add(&mut self, reference: &str, hypothesis: &str) -> usize {
        let (r, h) = (normalise(reference), normalise(hypothesis));
        let e = errors(&r, &h);
        self.errors += e;
        self.words += r.len();
        e
    }

    pub fn rate(&self) -> f64 {
        self.errors as f64 / self.words.max(1) as f64
    }

    /// Prints this WER and asserts it is at most 1.5 × `measured` plus
    /// `margin`. `measured` is what the check gave when last measured (the
    /// test speech and Whisper's greedy decoding are deterministic: it moves
    /// only with the models, the decoder or the audio path); the margin is
    /// stated where the bound would otherwise be under one word.
    pub fn assert_near(&self, what: &str, measured: f64, margin: f64) {
        let bound = measured * 1.5 + margin;
        let rate = self.rate();
        eprintln!(
            "WER {what}: {rate:.3} ({} errors / {} words; measured {measured:.3}, bound {bound:.3})",
            self.errors, self.words
        );
        assert!(
            rate <= bound + 1e-9,
            "WER {what}: {rate:.3} ({} errors / {} words) is over {bound:.3} \
             (1.5 x the measured {measured:.3} + {margin:.3})",
            self.errors,
            self.words
        );
    }
}
