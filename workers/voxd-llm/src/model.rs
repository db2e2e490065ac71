//! Loading a model: the check that the file is GGUF at all, llama.cpp's
//! load (releasing the mapped pages of weights it copied out), and the
//! [`ModelInfo`] that describes a loaded model.

use std::path::Path;
use std::time::Instant;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use voxd_proto::llm::{ModelInfo, ModelParams, PromptFormat};

use crate::jobs::Failure;

/// Loads the GGUF that `params` names.
pub fn load(backend: &LlamaBackend, params: &ModelParams) -> Result<LlamaModel, Failure> {
    let path = &params.path;
    check_gguf(path)?;
    // Mapped pages already copied are released every 5 % of the load, so
    // they do not pile up to a second copy of the weights meanwhile.
    let mapped = path.clone();
    let mut next = 0.0;
    let model_params = LlamaModelParams::default()
        .with_n_gpu_layers(params.gpu_layers)
        .with_progress_callback(move |progress| {
            if progress >= next {
                release_mapped_pages(&mapped);
                next = progress + 0.05;
            }
            true
        });
    let started = Instant::now();
    let model = LlamaModel::load_from_file(backend, path, &model_params).map_err(|e| {
        Failure::new(
            "load_failed",
            format!(
                "llama.cpp could not load the model {}: {e} (a truncated or corrupt GGUF, or an architecture this llama.cpp does not support)",
                path.display()
            ),
        )
    })?;
    let released = release_mapped_pages(path);
    eprintln!(
        "voxd-llm: loaded {} in {:.2} s ({} MiB of its mapped pages released)",
        path.display(),
        started.elapsed().as_secs_f64(),
        released >> 20
    );
    Ok(model)
}

/// Drops this process's resident pages of the memory-mapped model file and
/// returns how many bytes of mapping that covered (called while the model
/// loads and once it has). Where the CPU has a
/// faster weight layout (AMX tiles, interleaved blocks), llama.cpp copies
/// most weights out of the mapping while loading, and the file pages it
/// read to do so would otherwise stay resident: the weights would count
/// twice against the memory budget (measured: Gemma 3 270M, a 235 MiB
/// file, at 527 MiB RSS on an AMX Xeon). Pages still in use come back from
/// the page cache on their next read; nothing is lost, because llama.cpp
/// maps the file shared and read-only.
#[cfg(target_os = "linux")]
fn release_mapped_pages(path: &Path) -> usize {
    let (Ok(path), Ok(maps)) = (
        path.canonicalize(),
        std::fs::read_to_string("/proc/self/maps"),
    ) else {
        return 0;
    };
    let path = path.to_string_lossy();
    let mut released = 0;
    // Lines read `start-end perms offset dev inode path`.
    for line in maps.lines().filter(|l| l.ends_with(&*path)) {
        let Some((start, end)) = line.split(' ').next().and_then(|r| r.split_once('-')) else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        // SAFETY: [start, end) is a mapping of this process, as its own
        // maps list it. MADV_DONTNEED on a shared read-only file mapping
        // only drops page-table entries: the next read faults the page back
        // in from the file, unchanged.
        if unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) }
            == 0
        {
            released += end - start;
        }
    }
    released
}

#[cfg(not(target_os = "linux"))]
fn release_mapped_pages(_path: &Path) -> usize {
    0
}

/// A clear error for a missing file or one that is not GGUF at all.
fn check_gguf(path: &Path) -> Result<(), Failure> {
    use std::io::Read;
    let fail = |why: String| Failure::new("load_failed", why);
    let mut file = std::fs::File::open(path)
        .map_err(|e| fail(format!("cannot open the model {}: {e}", path.display())))?;
    let mut magic = [0u8; 4];
    let n = file
        .read(&mut magic)
        .map_err(|e| fail(format!("cannot read the model {}: {e}", path.display())))?;
    if n < 4 || &magic != b"GGUF" {
        return Err(fail(format!(
            "the model file {} is not a GGUF file (it does not start with the bytes `GGUF`)",
            path.display()
        )));
    }
    Ok(())
}

/// What `load` replies: `model` as loaded from `params`, with a context of
/// `context` tokens and the chat template from `template` (`model`,
/// `config`), if any.
pub fn info(
    model: &LlamaModel,
    params: &ModelParams,
    context: u32,
    template: Option<&str>,
) -> ModelInfo {
    let name = model
        .meta_val_str("general.name")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            params
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let quantization = model
        .meta_val_str("general.file_type")
        .ok()
        .and_then(|t| t.parse::<u32>().ok())
        .and_then(file_type_name);
    ModelInfo {
        name,
        path: params.path.to_string_lossy().into_owned(),
        quantization,
        parameters: Some(model.n_params()),
        context,
        prompt_format: match template {
            Some(_) => PromptFormat::ChatTemplate,
            None => PromptFormat::Completion,
        },
        chat_template: template.map(str::to_owned),
    }
}

/// llama.cpp's `llama_ftype` names for the common quantisations.
fn file_type_name(ftype: u32) -> Option<String> {
    let name = match ftype {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        25 => "IQ4_NL",
        30 => "IQ4_XS",
        32 => "BF16",
        _ => return None,
    };
    Some(name.to_owned())
}
