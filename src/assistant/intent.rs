//! Built-in intents: what the assistant answers itself, before (and
//! instead of) the language model, so that it is instant and exact:
//! stopping, the time, reading the newest note, describing the newest
//! picture. Matching is on normalised words, never on a model's guess;
//! everything else is a [`Intent::Question`] for `ask`.

/// What an utterance asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// "stop", "cancel", "be quiet": stop speaking, say nothing.
    Stop,
    /// "what time is it".
    Time,
    /// "read my last note".
    LatestNote,
    /// "what's in the latest picture", "what was in the last photo I saved".
    LatestPicture,
    /// Anything else: answered from the notes (and the language model).
    Question,
}

impl Intent {
    /// The intent's name in replies and events.
    pub fn name(self) -> &'static str {
        match self {
            Intent::Stop => "stop",
            Intent::Time => "time",
            Intent::LatestNote => "latest_note",
            Intent::LatestPicture => "latest_picture",
            Intent::Question => "question",
        }
    }
}

const STOP: &[&str] = &[
    "stop",
    "stop it",
    "stop talking",
    "cancel",
    "be quiet",
    "quiet",
    "shut up",
    "never mind",
    "nevermind",
    "enough",
    "thats enough",
];

const TIME: &[&str] = &[
    "what time is it",
    "whats the time",
    "what is the time",
    "tell me the time",
    "do you have the time",
];

const RECENT: &[&str] = &["last", "latest", "newest", "most recent", "recent"];
const PICTURE: &[&str] = &["picture", "photo", "image", "screenshot", "pic"];

/// Classifies an utterance (as transcribed or typed).
pub fn classify(text: &str) -> Intent {
    let words = normalise(text);
    let phrase = words.join(" ");
    let has = |w: &str| {
        words
            .iter()
            .any(|x| x == w || x.strip_suffix('s') == Some(w))
    };
    let has_phrase = |p: &str| format!(" {phrase} ").contains(&format!(" {p} "));
    if STOP.contains(&phrase.as_str()) {
        Intent::Stop
    } else if TIME.iter().any(|p| has_phrase(p)) || phrase == "time" {
        Intent::Time
    } else if RECENT.iter().any(|r| has_phrase(r)) && PICTURE.iter().any(|p| has(p)) {
        Intent::LatestPicture
    } else if RECENT.iter().any(|r| has_phrase(r))
        && has("note")
        && ["read", "whats", "what", "show", "tell"]
            .iter()
            .any(|v| has(v))
    {
        Intent::LatestNote
    } else {
        Intent::Question
    }
}

/// [`fold`]ed words, courtesy words at the ends dropped ("please", "hey"):
/// what built-in intents and user commands match on.
pub(crate) fn normalise(text: &str) -> Vec<String> {
    let mut words = fold(text);
    while words
        .first()
        .is_some_and(|w| ["please", "ok", "okay", "hey", "so"].contains(&w.as_str()))
    {
        words.remove(0);
    }
    while words.last().is_some_and(|w| w == "please" || w == "now") {
        words.pop();
    }
    words
}

/// Lower-case words without punctuation, apostrophes folded ("what's" →
/// "whats"); a `.` or `:` between two digits stays ("2.5", "7:30").
pub(crate) fn fold(text: &str) -> Vec<String> {
    let chars: Vec<char> = text
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '\'' | '’'))
        .collect();
    let digit = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(char::is_ascii_digit)
    };
    let folded: String = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let joins = matches!(c, '.' | ':') && digit(i.checked_sub(1)) && digit(Some(i + 1));
            if c.is_alphanumeric() || joins {
                c
            } else {
                ' '
            }
        })
        .collect();
    folded.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_the_built_in_commands() {
        for (text, intent) in [
            ("Stop.", Intent::Stop),
            ("Please stop!", Intent::Stop),
            ("Never mind", Intent::Stop),
            ("What time is it?", Intent::Time),
            ("Hey, what's the time please?", Intent::Time),
            ("Read my last note.", Intent::LatestNote),
            ("What's in my latest note?", Intent::LatestNote),
            ("What's in the latest picture?", Intent::LatestPicture),
            (
                "What was in the last picture I saved?",
                Intent::LatestPicture,
            ),
            ("Describe my most recent photos", Intent::LatestPicture),
        ] {
            assert_eq!(classify(text), intent, "{text:?}");
        }
    }

    #[test]
    fn questions_go_to_ask() {
        for text in [
            "What is the wifi password?",
            "When is Mara's birthday?",
            "Stop the timer at noon and tell me the code",
            "What time does the bakery open?",
            "Where is my note about the boiler?",
            "",
        ] {
            assert_eq!(classify(text), Intent::Question, "{text:?}");
        }
    }

    #[test]
    fn folding_keeps_decimals_and_clock_times() {
        assert_eq!(
            fold("Set it to 2.5, at 7:30. Don't!"),
            ["set", "it", "to", "2.5", "at", "7:30", "dont"]
        );
        assert_eq!(normalise("Okay, stop now."), ["stop"]);
    }
}
