//! The KV cache across worker restarts. When the worker stops (idle unload,
//! the memory budget making room for another engine, the daemon shutting
//! down) it writes the keys and values of its last prompt and reply to a
//! file in the model's `cache_dir`; the next worker on the same model reads
//! them back, so a prompt that starts the same way (voxd's instructions and
//! worked examples open every grounded prompt) decodes only what differs.
//! On a board whose budget holds one engine at a time, the language model
//! restarts for every spoken question, and this is what keeps its prompt
//! prefix warm.
//!
//! The file is named after the model file (name, size, modification time)
//! and the context size, so another model, a replaced file or another
//! context never reads it. A CRC-32 over its contents is checked before
//! llama.cpp sees a byte (llama.cpp's own file reader aborts the process on
//! a truncated file), and a damaged file, or one llama.cpp refuses, is
//! deleted. It is written atomically (a temporary file renamed into place),
//! 0600 in a 0700 folder, and only one file is kept per folder.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use llama_cpp_2::context::session::LlamaStateSeqFlags;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::token::LlamaToken;
use voxd_proto::llm::ModelParams;

const EXTENSION: &str = "kv";

/// Where the KV cache of `params`' model is kept, if anywhere.
pub fn file(params: &ModelParams) -> Option<PathBuf> {
    let dir = params.cache_dir.as_ref()?;
    let meta = fs::metadata(&params.path).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs();
    let stem = params.path.file_stem()?.to_string_lossy();
    Some(dir.join(format!(
        "{stem}-{}-{modified}-ctx{}.{EXTENSION}",
        meta.len(),
        params.context
    )))
}

/// The file begins with these bytes (then a CRC-32 of the rest, the token
/// count, the tokens, and llama.cpp's state of sequence 0).
const MAGIC: &[u8; 8] = b"VOXDKV1\0";

/// Reads the cache kept in `file` into sequence 0 of `ctx` and returns its
/// tokens; nothing if there is none. A file that is damaged, or that
/// llama.cpp refuses, is deleted and the context left empty.
pub fn restore(ctx: &mut LlamaContext, file: &Path) -> Vec<LlamaToken> {
    let Ok(bytes) = fs::read(file) else {
        return Vec::new();
    };
    match parse(&bytes, ctx.n_ctx() as usize).and_then(|(tokens, state)| {
        // SAFETY: `state` is byte for byte what `save` got from llama.cpp
        // for this model file and context size (the CRC and the file name
        // say so), and llama.cpp bounds-checks its reads of a buffer.
        let ok = unsafe { ctx.state_seq_set_data_ext(state, 0, LlamaStateSeqFlags::empty()) };
        ok.then_some(tokens)
            .ok_or_else(|| "llama.cpp refused its state".to_string())
    }) {
        Ok(tokens) => {
            eprintln!(
                "voxd-llm: restored the KV cache of {} tokens ({} KiB) from {}",
                tokens.len(),
                bytes.len() >> 10,
                file.display()
            );
            tokens
        }
        Err(why) => {
            ctx.clear_kv_cache();
            let _ = fs::remove_file(file);
            eprintln!(
                "voxd-llm: ignored and deleted the saved KV cache {}: {why}",
                file.display()
            );
            Vec::new()
        }
    }
}

/// The tokens and the state in a file's bytes, if they are whole.
fn parse(bytes: &[u8], max_tokens: usize) -> Result<(Vec<LlamaToken>, &[u8]), String> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not a voxd KV cache file")?;
    let (crc, body) = rest.split_first_chunk::<4>().ok_or("truncated")?;
    if u32::from_le_bytes(*crc) != crc32fast::hash(body) {
        return Err("its checksum does not match (damaged or truncated)".into());
    }
    let (count, body) = body.split_first_chunk::<4>().ok_or("truncated")?;
    let count = u32::from_le_bytes(*count) as usize;
    if count == 0 || count > max_tokens {
        return Err(format!(
            "{count} tokens do not fit the context of {max_tokens}"
        ));
    }
    let (tokens, state) = body.split_at_checked(count * 4).ok_or("truncated")?;
    let tokens = tokens
        .chunks_exact(4)
        .map(|t| LlamaToken::new(i32::from_le_bytes([t[0], t[1], t[2], t[3]])))
        .collect();
    Ok((tokens, state))
}

/// Writes the cache of sequence 0 (`tokens`) to `file`, replacing any other
/// file in its folder.
pub fn save(ctx: &LlamaContext, file: &Path, tokens: &[LlamaToken]) -> Result<(), String> {
    let dir = file
        .parent()
        .ok_or_else(|| format!("{} has no folder", file.display()))?;
    let flags = LlamaStateSeqFlags::empty();
    let size = ctx.state_seq_get_size_ext(0, flags);
    let mut body = Vec::with_capacity(4 + tokens.len() * 4 + size);
    body.extend_from_slice(&(tokens.len() as u32).to_le_bytes());
    for token in tokens {
        body.extend_from_slice(&token.0.to_le_bytes());
    }
    let at = body.len();
    body.resize(at + size, 0);
    // SAFETY: the buffer has the `size` bytes llama.cpp says this state takes.
    let written = unsafe { ctx.state_seq_get_data_ext(body[at..].as_mut_ptr(), 0, flags) };
    if written != size {
        return Err(format!(
            "llama.cpp wrote {written} bytes of a {size}-byte state"
        ));
    }
    let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    bytes.extend_from_slice(&body);

    create_private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = file.with_extension("tmp");
    let placed = write_private(&tmp, &bytes).and_then(|()| fs::rename(&tmp, file));
    if let Err(e) = placed {
        let _ = fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", file.display()));
    }
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path != file && path.extension().is_some_and(|e| e == EXTENSION) {
            let _ = fs::remove_file(path);
        }
    }
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fs::write(file, bytes)
}
