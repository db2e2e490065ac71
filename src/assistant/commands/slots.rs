//! The built-in slot types' parsers, on [`fold`](crate::assistant::intent)ed
//! words: numbers ("25", "2.5", "twenty five", "a hundred and ten"),
//! durations ("five and a half minutes", "an hour", "1 hour and 30
//! minutes"), times of day ("7:30", "seven thirty pm", "half past seven",
//! "noon"). Each parser returns every way the words *starting* at its
//! position can be read (value, words used), so that the matcher can try
//! each against the rest of the template.

use serde::{Serialize, Serializer};

/// A slot's value.
#[derive(Debug, Clone, PartialEq)]
pub enum SlotValue {
    Number(f64),
    /// In seconds.
    Duration(f64),
    /// 24-hour clock.
    Time {
        hour: u8,
        minute: u8,
    },
    /// A list's value (the canonical one, when a synonym was heard).
    List(String),
    /// The rest of the utterance, as transcribed (folded).
    Text(String),
}

impl SlotValue {
    /// The value for a program's argument, an environment variable, a URL
    /// or a JSON body: a number as `25` or `2.5`, a duration in seconds, a
    /// time as `07:30`.
    pub fn plain(&self) -> String {
        match self {
            SlotValue::Number(n) | SlotValue::Duration(n) => number_text(*n),
            SlotValue::Time { hour, minute } => format!("{hour:02}:{minute:02}"),
            SlotValue::List(s) | SlotValue::Text(s) => s.clone(),
        }
    }

    /// The value in a spoken reply: a duration in words and units ("5
    /// minutes 30 seconds"), a time as `7:30`; others as [`SlotValue::plain`].
    pub fn spoken(&self) -> String {
        match self {
            SlotValue::Duration(secs) => spoken_duration(*secs),
            SlotValue::Time { hour, minute } => format!("{hour}:{minute:02}"),
            other => other.plain(),
        }
    }

    /// Whether the value is a number (numbers and durations are JSON numbers).
    pub fn number(&self) -> Option<f64> {
        match self {
            SlotValue::Number(n) | SlotValue::Duration(n) => Some(*n),
            _ => None,
        }
    }
}

/// Numbers and durations as numbers (a whole one without a fraction),
/// everything else as its [`SlotValue::plain`] text.
impl Serialize for SlotValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.number() {
            Some(n) if n.fract() == 0.0 && n.abs() < 9e15 => s.serialize_i64(n as i64),
            Some(n) => s.serialize_f64(n),
            None => s.serialize_str(&self.plain()),
        }
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn spoken_duration(secs: f64) -> String {
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    let unit = |n: u64, name: &str| match n {
        0 => None,
        1 => Some(format!("1 {name}")),
        n => Some(format!("{n} {name}s")),
    };
    let parts: Vec<String> = [unit(h, "hour"), unit(m, "minute"), unit(s, "second")]
        .into_iter()
        .flatten()
        .collect();
    if parts.is_empty() {
        "0 seconds".into()
    } else {
        parts.join(" ")
    }
}

const UNITS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const TEENS: [&str; 10] = [
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
const TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// The last thing a spelled-out number read.
#[derive(Clone, Copy, PartialEq)]
enum Read {
    Start,
    /// "a" (as in "a hundred"): not a number by itself.
    A,
    Unit,
    Teen,
    Tens,
    Hundred,
    Thousand,
    And,
}

/// Every number that the words from the start read as, with how many words
/// each used: one token of digits ("25", "2.5"), or number words ("twenty
/// five", "one hundred and twenty", "a thousand"). Longest first.
pub fn numbers(words: &[String]) -> Vec<(f64, usize)> {
    let Some(first) = words.first() else {
        return Vec::new();
    };
    if let Some(n) = digits(first) {
        return vec![(n, 1)];
    }
    let mut found = Vec::new();
    let (mut total, mut current, mut last) = (0.0, 0.0, Read::Start);
    for (i, word) in words.iter().enumerate() {
        let w = word.as_str();
        let after_group = matches!(
            last,
            Read::Start | Read::Hundred | Read::Thousand | Read::And
        );
        last = if let Some(n) = UNITS.iter().position(|u| *u == w) {
            if !(after_group || last == Read::Tens) {
                break;
            }
            current += n as f64;
            Read::Unit
        } else if let Some(n) = TEENS.iter().position(|u| *u == w) {
            if !after_group {
                break;
            }
            current += (n + 10) as f64;
            Read::Teen
        } else if let Some(n) = TENS.iter().position(|u| *u == w) {
            if !after_group {
                break;
            }
            current += ((n + 2) * 10) as f64;
            Read::Tens
        } else if (w == "a" || w == "an") && last == Read::Start {
            current = 1.0;
            Read::A
        } else if w == "hundred"
            && matches!(last, Read::A | Read::Unit | Read::Teen | Read::Tens)
            && current < 100.0
        {
            current *= 100.0;
            Read::Hundred
        } else if w == "thousand"
            && matches!(
                last,
                Read::A | Read::Unit | Read::Teen | Read::Tens | Read::Hundred
            )
            && total == 0.0
        {
            total = current * 1000.0;
            current = 0.0;
            Read::Thousand
        } else if w == "and" && matches!(last, Read::Hundred | Read::Thousand) {
            Read::And
        } else {
            break;
        };
        if !matches!(last, Read::A | Read::And) {
            found.push((total + current, i + 1));
        }
    }
    found.reverse();
    found
}

/// A token of digits with at most one decimal point.
fn digits(word: &str) -> Option<f64> {
    let ok = word.chars().all(|c| c.is_ascii_digit() || c == '.')
        && word.chars().filter(|c| *c == '.').count() <= 1
        && word.chars().next().is_some_and(|c| c.is_ascii_digit());
    if ok {
        word.parse().ok()
    } else {
        None
    }
}

/// Seconds in a unit's name, singular or plural.
fn unit_secs(word: &str) -> Option<f64> {
    match word.strip_suffix('s').unwrap_or(word) {
        "second" | "sec" => Some(1.0),
        "minute" | "min" => Some(60.0),
        "hour" | "hr" => Some(3600.0),
        "day" => Some(86400.0),
        _ => None,
    }
}

/// Every duration that the words from the start read as: one or more parts
/// ("an hour", "5 minutes", "five and a half minutes", "half an hour", "a
/// minute and a half"), optionally joined by "and". Longest first.
pub fn durations(words: &[String]) -> Vec<(f64, usize)> {
    let mut found = Vec::new();
    let mut frontier = vec![(0.0, 0)];
    while let Some((secs, at)) = frontier.pop() {
        let rest = &words[at..];
        // Parts after the first may begin with "and".
        let skip = usize::from(at > 0 && rest.first().is_some_and(|w| w == "and"));
        for (part, used) in duration_parts(&rest[skip..]) {
            let next = (secs + part, at + skip + used);
            found.push(next);
            frontier.push(next);
        }
    }
    found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.total_cmp(&b.0)));
    found.dedup_by(|a, b| a.1 == b.1);
    found
}

/// One part of a duration: its seconds and words used.
fn duration_parts(words: &[String]) -> Vec<(f64, usize)> {
    let w = |i: usize| words.get(i).map(String::as_str);
    let mut found = Vec::new();
    // "half an hour", "half a minute".
    if w(0) == Some("half") && matches!(w(1), Some("a" | "an")) {
        if let Some(unit) = w(2).and_then(unit_secs) {
            found.push((unit / 2.0, 3));
        }
    }
    let mut amounts = numbers(words);
    if matches!(w(0), Some("a" | "an")) {
        amounts.push((1.0, 1));
    }
    let is_half =
        |at: usize| w(at) == Some("and") && w(at + 1) == Some("a") && w(at + 2) == Some("half");
    for (amount, used) in amounts {
        // "five and a half minutes"
        let (amount, used) = if is_half(used) {
            (amount + 0.5, used + 3)
        } else {
            (amount, used)
        };
        let Some(unit) = w(used).and_then(unit_secs) else {
            continue;
        };
        found.push((amount * unit, used + 1));
        // "a minute and a half"
        if is_half(used + 1) {
            found.push(((amount + 0.5) * unit, used + 4));
        }
    }
    found
}

/// Every time of day that the words from the start read as, as (hour,
/// minute): "7:30", "7 30", "seven thirty", "seven oh five", "7 o'clock",
/// each with an optional "am"/"pm" ("a.m." too); "half past seven",
/// "quarter to eight", "ten past six"; "noon", "midnight". Longest first.
pub fn times(words: &[String]) -> Vec<((u8, u8), usize)> {
    let w = |i: usize| words.get(i).map(String::as_str);
    let mut found: Vec<((u8, u8), usize)> = Vec::new();
    match w(0) {
        Some("noon" | "midday") => found.push(((12, 0), 1)),
        Some("midnight") => found.push(((0, 0), 1)),
        _ => {}
    }
    // "half past seven", "quarter to eight", "ten past six", "5 minutes to 9".
    let before: Vec<(f64, usize)> = match w(0) {
        Some("half") => vec![(30.0, 1)],
        Some("quarter") => vec![(15.0, 1)],
        Some("a") if w(1) == Some("quarter") => vec![(15.0, 2)],
        _ => numbers(words),
    };
    for (minutes, used) in before {
        let used = used + usize::from(matches!(w(used), Some("minute" | "minutes")));
        let past = match w(used) {
            Some("past" | "after") => true,
            Some("to" | "before") => false,
            _ => continue,
        };
        for (hour, more) in hours(&words[used + 1..]) {
            if !(1.0..60.0).contains(&minutes) || minutes.fract() != 0.0 {
                continue;
            }
            let (h, m) = if past {
                (hour, minutes as u8)
            } else {
                ((hour + 23) % 24, 60 - minutes as u8)
            };
            found.push(((h, m), used + 1 + more));
        }
    }
    // "7:30" (or "7.30") in one token.
    if let Some((h, m)) = w(0).and_then(|t| t.split_once([':', '.'])) {
        if let (Ok(h), Ok(m)) = (h.parse::<u8>(), m.parse::<u8>()) {
            if h < 24 && m < 60 {
                found.extend(with_meridiem(words, (h, m), 1));
            }
        }
    }
    for (hour, used) in hours(words) {
        found.extend(with_meridiem(words, (hour, 0), used));
        // "seven o'clock" (folded: "oclock", or "o clock")
        let oclock = match (w(used), w(used + 1)) {
            (Some("oclock"), _) => Some(1),
            (Some("o"), Some("clock")) => Some(2),
            _ => None,
        };
        if let Some(n) = oclock {
            found.extend(with_meridiem(words, (hour, 0), used + n));
        }
        // "seven thirty", "7 30", "seven oh five"
        let (oh, at) = match w(used) {
            Some("oh" | "o") => (true, used + 1),
            _ => (false, used),
        };
        for (minute, more) in numbers(&words[at..]) {
            let ok = minute.fract() == 0.0
                && if oh {
                    minute < 10.0
                } else {
                    (10.0..60.0).contains(&minute)
                };
            if ok {
                found.extend(with_meridiem(words, (hour, minute as u8), at + more));
            }
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.1));
    found.dedup();
    found
}

/// Whole hours 0 to 24 at the start of `words`.
fn hours(words: &[String]) -> Vec<(u8, usize)> {
    numbers(words)
        .into_iter()
        .filter(|(n, _)| n.fract() == 0.0 && (0.0..=24.0).contains(n))
        .map(|(n, used)| ((n as u8) % 24, used))
        .collect()
}

/// The time as read (`used` words), and with an "am"/"pm" after it.
fn with_meridiem(
    words: &[String],
    (hour, minute): (u8, u8),
    used: usize,
) -> Vec<((u8, u8), usize)> {
    let w = |i: usize| words.get(i).map(String::as_str);
    let mut found = vec![((hour, minute), used)];
    let meridiem = match (w(used), w(used + 1)) {
        (Some("am"), _) => Some((false, 1)),
        (Some("pm"), _) => Some((true, 1)),
        (Some("a"), Some("m")) => Some((false, 2)),
        (Some("p"), Some("m")) => Some((true, 2)),
        _ => None,
    };
    if let Some((pm, n)) = meridiem {
        if (1..=12).contains(&hour) {
            let hour = match (pm, hour) {
                (false, 12) => 0,
                (true, 12) => 12,
                (true, h) => h + 12,
                (false, h) => h,
            };
            found.push(((hour, minute), used + n));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::intent::fold;

    /// The longest reading of all of `text`, if one uses every word.
    fn whole<T: Copy>(text: &str, parse: fn(&[String]) -> Vec<(T, usize)>) -> Option<T> {
        let words = fold(text);
        parse(&words)
            .into_iter()
            .find(|(_, used)| *used == words.len())
            .map(|(v, _)| v)
    }

    #[test]
    fn numbers_in_digits_and_words() {
        for (text, n) in [
            ("25", 25.0),
            ("2.5", 2.5),
            ("eight", 8.0),
            ("twenty five", 25.0),
            ("twenty-five", 25.0),
            ("nineteen", 19.0),
            ("a hundred", 100.0),
            ("one hundred and twenty three", 123.0),
            ("two thousand and five", 2005.0),
            ("zero", 0.0),
        ] {
            assert_eq!(whole(text, numbers), Some(n), "{text}");
        }
        for text in [
            "twenty twenty",
            "five four",
            "and five",
            "a",
            "hundred",
            "lamp",
        ] {
            assert_eq!(whole(text, numbers), None, "{text}");
        }
    }

    #[test]
    fn durations_in_words_and_units() {
        for (text, secs) in [
            ("ten minutes", 600.0),
            ("8 minutes", 480.0),
            ("an hour", 3600.0),
            ("a minute", 60.0),
            ("five and a half minutes", 330.0),
            ("half an hour", 1800.0),
            ("a minute and a half", 90.0),
            ("1 hour and 30 minutes", 5400.0),
            ("two hours fifteen minutes", 8100.0),
            ("90 seconds", 90.0),
            ("2.5 hours", 9000.0),
        ] {
            assert_eq!(whole(text, durations), Some(secs), "{text}");
        }
        for text in ["ten", "minutes", "ten apples", "and ten minutes"] {
            assert_eq!(whole(text, durations), None, "{text}");
        }
    }

    #[test]
    fn times_of_day() {
        for (text, time) in [
            ("7:30", (7, 30)),
            ("7:30 pm", (19, 30)),
            ("7:30 p.m.", (19, 30)),
            ("seven thirty", (7, 30)),
            ("seven oh five", (7, 5)),
            ("7 o'clock", (7, 0)),
            ("12 am", (0, 0)),
            ("six pm", (18, 0)),
            ("half past seven", (7, 30)),
            ("quarter to eight", (7, 45)),
            ("a quarter past six", (6, 15)),
            ("ten past six", (6, 10)),
            ("noon", (12, 0)),
            ("midnight", (0, 0)),
            ("18:45", (18, 45)),
        ] {
            assert_eq!(whole(text, times), Some(time), "{text}");
        }
        for text in ["25:00", "seven sixty", "thirty past", "lunch"] {
            assert_eq!(whole(text, times), None, "{text}");
        }
    }

    #[test]
    fn values_read_plainly_and_aloud() {
        assert_eq!(SlotValue::Number(25.0).plain(), "25");
        assert_eq!(SlotValue::Number(2.5).plain(), "2.5");
        assert_eq!(SlotValue::Duration(330.0).plain(), "330");
        assert_eq!(SlotValue::Duration(330.0).spoken(), "5 minutes 30 seconds");
        assert_eq!(SlotValue::Duration(3600.0).spoken(), "1 hour");
        let t = SlotValue::Time { hour: 7, minute: 5 };
        assert_eq!((t.plain(), t.spoken()), ("07:05".into(), "7:05".into()));
    }
}
