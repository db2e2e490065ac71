//! The Whisper vocabulary as whisper.cpp stores it: the ordinary tokens
//! (every id below `<|endoftext|>`) as raw bytes. CTranslate2 directories
//! hold them as GPT-2 byte-level text, one per line in `vocabulary.txt`
//! (line = id), or in `tokenizer.json`'s `model.vocab` map.

use std::collections::HashMap;
use std::path::Path;

use super::ImportError;

const END_OF_TEXT: &str = "<|endoftext|>";

/// GPT-2's `bytes_to_unicode` inverted: printable character → byte.
fn byte_decoder() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from('!')..=u32::from('~'))
        .chain(u32::from('¡')..=u32::from('¬'))
        .chain(u32::from('®')..=u32::from('ÿ'))
        .collect();
    let mut chars = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    printable
        .iter()
        .zip(&chars)
        .filter_map(|(&b, &c)| Some((char::from_u32(c)?, u8::try_from(b).ok()?)))
        .collect()
}

/// The tokens below `<|endoftext|>`, decoded to bytes, by id.
pub fn load(dir: &Path) -> Result<Vec<Vec<u8>>, ImportError> {
    let txt = dir.join("vocabulary.txt");
    let (path, tokens) = if txt.is_file() {
        let text = std::fs::read_to_string(&txt).map_err(|source| ImportError::Io {
            action: "cannot read",
            path: txt.clone(),
            source,
        })?;
        (txt, text.lines().map(str::to_owned).collect::<Vec<_>>())
    } else {
        let json = dir.join("tokenizer.json");
        if !json.is_file() {
            return Err(ImportError::MissingFile {
                dir: dir.to_path_buf(),
                name: "vocabulary.txt (or tokenizer.json)",
            });
        }
        let tokens = from_tokenizer_json(&json)?;
        (json, tokens)
    };
    let eot = tokens
        .iter()
        .position(|t| t == END_OF_TEXT)
        .ok_or_else(|| ImportError::Vocabulary {
            path: path.clone(),
            line: 0,
            message: format!("no {END_OF_TEXT} token"),
        })?;
    let decoder = byte_decoder();
    tokens[..eot]
        .iter()
        .enumerate()
        .map(|(id, token)| {
            token
                .chars()
                .map(|c| decoder.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| ImportError::Vocabulary {
                    path: path.clone(),
                    line: id + 1,
                    message: format!("token {token:?} is not GPT-2 byte-level text"),
                })
        })
        .collect()
}

/// `model.vocab` (token → id) and `added_tokens`, as a list by id.
fn from_tokenizer_json(path: &Path) -> Result<Vec<String>, ImportError> {
    let bad = |message: String| ImportError::Vocabulary {
        path: path.to_path_buf(),
        line: 0,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        action: "cannot read",
        path: path.to_path_buf(),
        source,
    })?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let vocab = json["model"]["vocab"]
        .as_object()
        .ok_or_else(|| bad("no `model.vocab` object".to_owned()))?;
    let added = json["added_tokens"].as_array().cloned().unwrap_or_default();
    let mut by_id: Vec<Option<String>> = Vec::new();
    let entries = vocab
        .iter()
        .map(|(t, id)| (t.clone(), id.as_u64()))
        .chain(added.iter().map(|a| {
            (
                a["content"].as_str().unwrap_or("").to_owned(),
                a["id"].as_u64(),
            )
        }));
    for (token, id) in entries {
        let id = id.ok_or_else(|| bad(format!("token {token:?} has no integer id")))? as usize;
        if id >= by_id.len() {
            by_id.resize(id + 1, None);
        }
        by_id[id] = Some(token);
    }
    by_id
        .into_iter()
        .enumerate()
        .map(|(id, t)| t.ok_or_else(|| bad(format!("no token with id {id}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_text_decodes_to_bytes() {
        let d = byte_decoder();
        assert_eq!(d.len(), 256);
        assert_eq!(d[&'Ġ'], b' ');
        assert_eq!(d[&'Ċ'], b'\n');
        assert_eq!(d[&'a'], b'a');
        // "é" in UTF-8 is C3 A9, which GPT-2 writes as "Ã©".
        let tokens: Vec<u8> = "Ã©".chars().map(|c| d[&c]).collect();
        assert_eq!(String::from_utf8(tokens).unwrap(), "é");
    }
}
