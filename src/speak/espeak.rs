//! Text to phonemes with espeak-ng (built from source by `espeak-rs-sys`),
//! the way Piper's reference implementation does it: clause by clause, each
//! clause's punctuation kept as a phoneme (commas and stops become pauses),
//! grouped into sentences, NFD-decomposed. espeak-ng is a process-wide
//! singleton, so every call goes through one lock.
//!
//! The espeak-ng 1.52 that `espeak-rs-sys` vendors lacks Piper's
//! `espeak_TextToPhonemesWithTerminator`; the clause terminator is read
//! from the text espeak-ng consumed for the clause instead (its last
//! punctuation mark; espeak-ng reads one character of the next clause
//! ahead), which gives the same ids as Piper for the punctuation it keeps
//! (`. ? ! , : ;`) — `tests/tts_voice.rs` checks this against `piper-tts`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use espeak_rs_sys as sys;
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, thiserror::Error)]
pub enum EspeakError {
    #[error(
        "espeak-ng data not found; looked in: {tried}. Set tts.espeak_data (or \
         PIPER_ESPEAKNG_DATA_DIRECTORY) to the directory that contains espeak-ng-data"
    )]
    NoData { tried: String },
    #[error("espeak-ng failed to start with the data in {0}")]
    Init(PathBuf),
    #[error("espeak-ng has no voice {0:?}")]
    Voice(String),
    #[error("text contains a NUL character")]
    Nul,
}

const DATA_DIR_NAME: &str = "espeak-ng-data";

/// The data directory espeak-ng was initialised with, once it was.
struct State {
    data: PathBuf,
    voice: String,
}

static ESPEAK: Mutex<Option<State>> = Mutex::new(None);

/// Directories that may contain `espeak-ng-data`, in the order voxd tries
/// them: `configured` (tts.espeak_data), `$PIPER_ESPEAKNG_DATA_DIRECTORY`,
/// beside the voxd executable, `$XDG_DATA_HOME/voxd` (`~/.local/share/voxd`),
/// then (added when initialising) the build's own copy inside the cargo
/// target directory.
pub fn data_candidates(configured: &Path) -> Vec<PathBuf> {
    if !configured.as_os_str().is_empty() {
        return vec![configured.to_path_buf()];
    }
    let mut dirs = Vec::new();
    if let Some(p) = std::env::var_os("PIPER_ESPEAKNG_DATA_DIRECTORY").filter(|p| !p.is_empty()) {
        dirs.push(PathBuf::from(p));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(dir);
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")));
    if let Some(data_home) = data_home {
        dirs.push(data_home.join("voxd"));
    }
    dirs
}

/// The parent of the `espeak-ng-data` that the espeak-ng build installed
/// (its compiled-in default). Call with the lock held, before initialising.
fn built_data_parent() -> Option<PathBuf> {
    let mut path: *const c_char = std::ptr::null();
    // SAFETY: InitializePath(NULL) only sets espeak's data path to its
    // compiled-in default (nothing is loaded); espeak_Info reports it.
    unsafe {
        sys::espeak_ng_InitializePath(std::ptr::null());
        sys::espeak_Info(&mut path);
    }
    if path.is_null() {
        return None;
    }
    // SAFETY: espeak returns a pointer to its static NUL-terminated path.
    let data = unsafe { CStr::from_ptr(path) }
        .to_string_lossy()
        .into_owned();
    Path::new(&data).parent().map(Path::to_path_buf)
}

/// Initialises espeak-ng once with the first data directory found.
fn ensure_init<'a>(
    state: &'a mut Option<State>,
    configured: &Path,
) -> Result<&'a mut State, EspeakError> {
    if state.is_none() {
        let mut candidates = data_candidates(configured);
        if configured.as_os_str().is_empty() {
            candidates.extend(built_data_parent());
        }
        let data = candidates
            .iter()
            .find(|d| d.join(DATA_DIR_NAME).join("phontab").is_file())
            .cloned()
            .ok_or_else(|| EspeakError::NoData {
                tried: candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let path =
            CString::new(data.as_os_str().as_encoded_bytes()).map_err(|_| EspeakError::Nul)?;
        // SAFETY: called once, under the lock; `path` outlives the call.
        let rate = unsafe {
            sys::espeak_Initialize(
                sys::espeak_AUDIO_OUTPUT_AUDIO_OUTPUT_SYNCHRONOUS,
                0,
                path.as_ptr(),
                sys::espeakINITIALIZE_DONT_EXIT as c_int,
            )
        };
        if rate <= 0 {
            return Err(EspeakError::Init(data));
        }
        tracing::debug!(data = %data.display(), "espeak-ng initialised");
        *state = Some(State {
            data,
            voice: String::new(),
        });
    }
    Ok(state.as_mut().expect("initialised above"))
}

/// Where espeak-ng's data was found (initialising it if needed).
pub fn data_dir(configured: &Path) -> Result<PathBuf, EspeakError> {
    let mut guard = ESPEAK.lock().unwrap_or_else(|e| e.into_inner());
    Ok(ensure_init(&mut guard, configured)?.data.clone())
}

/// Phonemes of `text` for espeak voice `voice`, one list per sentence, each
/// phoneme one Unicode scalar (as Piper's phoneme id maps expect).
pub fn phonemize(
    text: &str,
    voice: &str,
    configured_data: &Path,
) -> Result<Vec<Vec<char>>, EspeakError> {
    let text_c = CString::new(text).map_err(|_| EspeakError::Nul)?;
    let mut guard = ESPEAK.lock().unwrap_or_else(|e| e.into_inner());
    let state = ensure_init(&mut guard, configured_data)?;
    if state.voice != voice {
        let name = CString::new(voice).map_err(|_| EspeakError::Nul)?;
        // SAFETY: espeak is initialised and we hold its lock.
        let err = unsafe { sys::espeak_SetVoiceByName(name.as_ptr()) };
        if err != sys::espeak_ERROR_EE_OK {
            return Err(EspeakError::Voice(voice.to_string()));
        }
        state.voice = voice.to_string();
    }

    let base = text_c.as_ptr();
    let len = text_c.as_bytes().len();
    let mut sentences = Vec::new();
    let mut sentence = String::new();
    let mut ptr: *const c_void = base.cast();
    let mut consumed = 0usize;
    while !ptr.is_null() {
        // SAFETY: `ptr` points into `text_c` (NUL-terminated, alive for the
        // loop); espeak advances it clause by clause and sets it to NULL at
        // the end. The returned string is espeak's own buffer, copied at once.
        let clause = unsafe {
            let out = sys::espeak_TextToPhonemes(
                &mut ptr,
                sys::espeakCHARS_UTF8 as c_int,
                sys::espeakPHONEMES_IPA as c_int,
            );
            if out.is_null() {
                String::new()
            } else {
                CStr::from_ptr(out).to_string_lossy().into_owned()
            }
        };
        let end = if ptr.is_null() {
            len
        } else {
            // SAFETY: both pointers are into the same allocation.
            (unsafe { ptr.cast::<c_char>().offset_from(base) } as usize).min(len)
        };
        let mut clause_text = &text[consumed.min(end)..end];
        consumed = end;
        if !ptr.is_null() {
            // espeak has read one character of the next clause ahead.
            let mut chars = clause_text.chars();
            chars.next_back();
            clause_text = chars.as_str();
        }
        let (terminator, sentence_end) = terminator(clause_text);
        sentence.push_str(&strip_language_flags(&clause));
        if let Some(t) = terminator {
            sentence.push(t);
            if matches!(t, ',' | ':' | ';') {
                sentence.push(' ');
            }
        }
        if sentence_end {
            sentences.push(std::mem::take(&mut sentence));
        }
    }
    if !sentence.is_empty() {
        sentences.push(sentence);
    }
    Ok(sentences
        .into_iter()
        .map(|s| s.nfd().collect::<Vec<char>>())
        .filter(|s| !s.is_empty())
        .collect())
}

/// The punctuation Piper keeps for a clause that espeak ended after
/// `clause_text`, and whether it ends a sentence. Of a run like "?!" the
/// first mark counts; an ellipsis ("...", "…") ends a clause with none.
fn terminator(clause_text: &str) -> (Option<char>, bool) {
    let text = clause_text
        .trim_end()
        .trim_end_matches(['"', '\'', ')', ']', '}', '”', '’', '»']);
    let marks = |c: char| matches!(c, '.' | '?' | '!' | ',' | ':' | ';' | '…');
    let run = &text[text.trim_end_matches(marks).len()..];
    if run.contains("..") || run.contains('…') {
        return (None, false);
    }
    match run.chars().next() {
        Some(c @ ('.' | '?' | '!')) => (Some(c), true),
        Some(c @ (',' | ':' | ';')) => (Some(c), false),
        _ => (None, false),
    }
}

/// Removes espeak's language-switch flags, e.g. "(fr)" around foreign words.
fn strip_language_flags(phonemes: &str) -> String {
    let mut out = String::with_capacity(phonemes.len());
    let mut depth = 0;
    for c in phonemes.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminators_follow_pipers_clause_rules() {
        assert_eq!(terminator("Hello, "), (Some(','), false));
        assert_eq!(terminator("Is it? "), (Some('?'), true));
        assert_eq!(terminator("He said \"Stop.\" "), (Some('.'), true));
        assert_eq!(terminator("no punctuation"), (None, false));
        assert_eq!(terminator("a list; "), (Some(';'), false));
        assert_eq!(terminator("what?! "), (Some('?'), true));
        assert_eq!(terminator("Wait... "), (None, false));
        assert_eq!(terminator("Wait… "), (None, false));
    }

    #[test]
    fn language_flags_are_removed() {
        assert_eq!(strip_language_flags("(fr)bɔ̃ʒuːɹ(en) ðɛɹ"), "bɔ̃ʒuːɹ ðɛɹ");
    }
}
