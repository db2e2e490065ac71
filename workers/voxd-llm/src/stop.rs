//! Turns the bytes of generated tokens into text pieces that are safe to
//! stream: whole UTF-8 characters only, and never the start of a stop string
//! (text that could begin one is held back until it is clear either way).

/// What [`StopFilter::push`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Text to stream now (often empty while text is held back).
    Emit(String),
    /// A stop string was found: the text before it, then generation ends.
    Stop(String),
}

/// Filters generated text for stop strings.
#[derive(Debug, Default)]
pub struct StopFilter {
    stops: Vec<String>,
    /// Bytes not yet decoded (an incomplete UTF-8 sequence).
    bytes: Vec<u8>,
    /// Decoded text held back because it may start a stop string.
    pending: String,
}

impl StopFilter {
    /// A filter for `stops`; empty strings are ignored.
    pub fn new(stops: &[String]) -> StopFilter {
        StopFilter {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            ..StopFilter::default()
        }
    }

    /// Adds the bytes of one token.
    pub fn push(&mut self, piece: &[u8]) -> Step {
        self.bytes.extend_from_slice(piece);
        self.decode();
        if let Some(at) = self.stops.iter().filter_map(|s| self.pending.find(s)).min() {
            self.pending.truncate(at);
            return Step::Stop(std::mem::take(&mut self.pending));
        }
        let hold = self.held_back_len();
        let emit = self.pending.len() - hold;
        let rest = self.pending.split_off(emit);
        Step::Emit(std::mem::replace(&mut self.pending, rest))
    }

    /// Generation ended without a stop string: everything held back.
    pub fn finish(mut self) -> String {
        if !self.bytes.is_empty() {
            self.pending
                .push_str(&String::from_utf8_lossy(&std::mem::take(&mut self.bytes)));
        }
        self.pending
    }

    /// Moves the complete characters of `bytes` into `pending`; invalid
    /// sequences become U+FFFD, an incomplete tail waits for more bytes.
    fn decode(&mut self) {
        loop {
            match std::str::from_utf8(&self.bytes) {
                Ok(text) => {
                    self.pending.push_str(text);
                    self.bytes.clear();
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    let Some(bad) = e.error_len() else {
                        // Incomplete sequence at the end: keep it for later.
                        let tail = self.bytes.split_off(valid);
                        self.pending
                            .push_str(&String::from_utf8_lossy(&self.bytes[..valid]));
                        self.bytes = tail;
                        return;
                    };
                    let rest = self.bytes.split_off(valid + bad);
                    self.pending.push_str(&String::from_utf8_lossy(&self.bytes));
                    self.bytes = rest;
                }
            }
        }
    }

    /// Length of the longest end of `pending` that is a proper prefix of a
    /// stop string.
    fn held_back_len(&self) -> usize {
        self.stops
            .iter()
            .map(|stop| {
                (1..stop.len().min(self.pending.len() + 1))
                    .rev()
                    .find(|&k| stop.is_char_boundary(k) && self.pending.ends_with(&stop[..k]))
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, Option<String>, String) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut filter = StopFilter::new(&stops);
        let mut emitted = Vec::new();
        for piece in pieces {
            match filter.push(piece.as_bytes()) {
                Step::Emit(text) => emitted.push(text),
                Step::Stop(text) => return (emitted, Some(text), String::new()),
            }
        }
        (emitted, None, filter.finish())
    }

    #[test]
    fn text_without_stops_streams_at_once() {
        let (emitted, stop, rest) = run(&[], &["Hello", " world"]);
        assert_eq!(emitted, ["Hello", " world"]);
        assert_eq!(stop, None);
        assert_eq!(rest, "");
    }

    #[test]
    fn stops_before_the_stop_string_even_across_pieces() {
        let (emitted, stop, _) = run(&["###"], &["one", " #", "#", "# two"]);
        assert_eq!(emitted, ["one", " ", ""]);
        assert_eq!(stop.as_deref(), Some(""));
        let (emitted, stop, _) = run(&["\n"], &["1. a", "\n2."]);
        assert_eq!(emitted, ["1. a"]);
        assert_eq!(stop.as_deref(), Some(""));
    }

    #[test]
    fn a_false_start_is_released_and_never_split() {
        let (emitted, stop, rest) = run(&["STOP"], &["a ST", "ART b", " S"]);
        assert_eq!(emitted, ["a ", "START b", " "]);
        assert_eq!(stop, None);
        assert_eq!(rest, "S");
    }

    #[test]
    fn the_earliest_of_several_stops_wins() {
        let (_, stop, _) = run(&["b", "ab"], &["xxabyy"]);
        assert_eq!(stop.as_deref(), Some("xx"));
    }

    #[test]
    fn multibyte_characters_are_never_split() {
        let stops: Vec<String> = vec![];
        let mut filter = StopFilter::new(&stops);
        let e = "é".as_bytes();
        assert_eq!(filter.push(&e[..1]), Step::Emit(String::new()));
        assert_eq!(filter.push(&e[1..]), Step::Emit("é".into()));
        assert_eq!(filter.push(&[0xff, b'a']), Step::Emit("\u{fffd}a".into()));
        assert_eq!(filter.push(&e[..1]), Step::Emit(String::new()));
        assert_eq!(filter.finish(), "\u{fffd}");
    }
}
