//! Writes whisper.cpp's ggml model file from an indexed CTranslate2 model.
//!
//! Layout (little-endian `i32`s): magic `ggml`, hyper-parameters (n_vocab,
//! n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx,
//! n_text_state, n_text_head, n_text_layer, n_mels, ftype), the mel filters
//! (n_mels, n_fft bins, f32 values), the vocabulary (count, then length +
//! bytes per token), then tensors: n_dims, name length, type (0 f32, 1 f16),
//! dims innermost first, name, data.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::Path;

use half::{bf16, f16};

use super::ct2::{Ct2Model, DType, Variable};
use super::mel;
use super::ImportError;
use crate::models::progress::PullProgress;
use crate::models::store::TEMP_PREFIX;

const GGML_MAGIC: u32 = 0x6767_6d6c;

/// whisper.cpp's hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub struct Hparams {
    pub n_vocab: u32,
    pub n_audio_ctx: u32,
    pub n_audio_state: u32,
    pub n_audio_head: u32,
    pub n_audio_layer: u32,
    pub n_text_ctx: u32,
    pub n_text_state: u32,
    pub n_text_head: u32,
    pub n_text_layer: u32,
    pub n_mels: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    F32,
    F16,
}

/// One ggml tensor and where its values come from.
struct Tensor {
    name: String,
    source: String,
    /// Rows of the source to take (fused projections are split by rows).
    rows: Option<Range<u64>>,
    /// Shape, outermost first (numpy order).
    shape: Vec<u64>,
    out: Out,
}

fn dim(model: &Ct2Model, name: &str, axis: usize) -> Result<u32, ImportError> {
    let var = model.get(name)?;
    var.shape
        .get(axis)
        .and_then(|&d| u32::try_from(d).ok())
        .ok_or_else(|| ImportError::Unsupported {
            path: model.path.clone(),
            message: format!(
                "`{name}` has shape {:?}; expected an axis {axis}",
                var.shape
            ),
        })
}

fn count_layers(model: &Ct2Model, stack: &str) -> u32 {
    (0..)
        .take_while(|i| {
            model
                .variables
                .contains_key(&format!("{stack}/layer_{i}/ffn/linear_0/weight"))
        })
        .count() as u32
}

fn hparams(model: &mut Ct2Model) -> Result<Hparams, ImportError> {
    let positive = |model: &Ct2Model, name: &str, v: i64| {
        u32::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| ImportError::Unsupported {
                path: model.path.clone(),
                message: format!("`{name}` is {v}"),
            })
    };
    let n_audio_head = model.scalar("encoder/num_heads")?;
    let n_audio_head = positive(model, "encoder/num_heads", n_audio_head)?;
    let n_text_head = model.scalar("decoder/num_heads")?;
    let n_text_head = positive(model, "decoder/num_heads", n_text_head)?;
    let h = Hparams {
        n_vocab: dim(model, "decoder/embeddings/weight", 0)?,
        n_audio_ctx: dim(model, "encoder/position_encodings/encodings", 0)?,
        n_audio_state: dim(model, "encoder/conv1/weight", 0)?,
        n_audio_head,
        n_audio_layer: count_layers(model, "encoder"),
        n_text_ctx: dim(model, "decoder/position_encodings/encodings", 0)?,
        n_text_state: dim(model, "decoder/embeddings/weight", 1)?,
        n_text_head,
        n_text_layer: count_layers(model, "decoder"),
        n_mels: dim(model, "encoder/conv1/weight", 1)?,
    };
    if h.n_audio_layer == 0 || h.n_text_layer == 0 || h.n_audio_state != h.n_text_state {
        return Err(ImportError::Unsupported {
            path: model.path.clone(),
            message: format!(
                "{} encoder / {} decoder layers, widths {} / {}: not a Whisper model",
                h.n_audio_layer, h.n_text_layer, h.n_audio_state, h.n_text_state
            ),
        });
    }
    Ok(h)
}

/// Every tensor whisper.cpp loads, mapped from its CTranslate2 variable.
fn plan(h: &Hparams) -> Vec<Tensor> {
    let n = u64::from(h.n_audio_state);
    let mut t = Vec::new();
    let mut add = |name: String, source: String, rows: Option<Range<u64>>, shape: Vec<u64>, out| {
        t.push(Tensor {
            name,
            source,
            rows,
            shape,
            out,
        })
    };
    let mels = u64::from(h.n_mels);
    add(
        "encoder.positional_embedding".into(),
        "encoder/position_encodings/encodings".into(),
        None,
        vec![u64::from(h.n_audio_ctx), n],
        Out::F32,
    );
    add(
        "encoder.conv1.weight".into(),
        "encoder/conv1/weight".into(),
        None,
        vec![n, mels, 3],
        Out::F16,
    );
    add(
        "encoder.conv1.bias".into(),
        "encoder/conv1/bias".into(),
        None,
        vec![n, 1],
        Out::F32,
    );
    add(
        "encoder.conv2.weight".into(),
        "encoder/conv2/weight".into(),
        None,
        vec![n, n, 3],
        Out::F16,
    );
    add(
        "encoder.conv2.bias".into(),
        "encoder/conv2/bias".into(),
        None,
        vec![n, 1],
        Out::F32,
    );
    add(
        "encoder.ln_post.weight".into(),
        "encoder/layer_norm/gamma".into(),
        None,
        vec![n],
        Out::F32,
    );
    add(
        "encoder.ln_post.bias".into(),
        "encoder/layer_norm/beta".into(),
        None,
        vec![n],
        Out::F32,
    );
    add(
        "decoder.positional_embedding".into(),
        "decoder/position_encodings/encodings".into(),
        None,
        vec![u64::from(h.n_text_ctx), n],
        Out::F32,
    );
    add(
        "decoder.token_embedding.weight".into(),
        "decoder/embeddings/weight".into(),
        None,
        vec![u64::from(h.n_vocab), n],
        Out::F16,
    );
    add(
        "decoder.ln.weight".into(),
        "decoder/layer_norm/gamma".into(),
        None,
        vec![n],
        Out::F32,
    );
    add(
        "decoder.ln.bias".into(),
        "decoder/layer_norm/beta".into(),
        None,
        vec![n],
        Out::F32,
    );

    // A layer norm, an MLP, and attention blocks; `fused` rows are split
    // into query/key/value (self) or key/value (cross).
    let layer_norm = |t: &mut Vec<Tensor>, to: String, from: String| {
        t.push(Tensor {
            name: format!("{to}.weight"),
            source: format!("{from}/gamma"),
            rows: None,
            shape: vec![n],
            out: Out::F32,
        });
        t.push(Tensor {
            name: format!("{to}.bias"),
            source: format!("{from}/beta"),
            rows: None,
            shape: vec![n],
            out: Out::F32,
        });
    };
    let linear = |t: &mut Vec<Tensor>,
                  to: String,
                  from: &str,
                  rows: Option<Range<u64>>,
                  width: u64,
                  bias: bool| {
        let out_rows = rows.as_ref().map_or(width, |r| r.end - r.start);
        t.push(Tensor {
            name: format!("{to}.weight"),
            source: format!("{from}/weight"),
            rows: rows.clone(),
            shape: vec![out_rows, n],
            out: Out::F16,
        });
        if bias {
            t.push(Tensor {
                name: format!("{to}.bias"),
                source: format!("{from}/bias"),
                rows,
                shape: vec![out_rows],
                out: Out::F32,
            });
        }
    };
    for (stack, layers) in [("encoder", h.n_audio_layer), ("decoder", h.n_text_layer)] {
        for i in 0..layers {
            let to = format!("{stack}.blocks.{i}");
            let from = format!("{stack}/layer_{i}");
            layer_norm(
                &mut t,
                format!("{to}.attn_ln"),
                format!("{from}/self_attention/layer_norm"),
            );
            let qkv = format!("{from}/self_attention/linear_0");
            linear(
                &mut t,
                format!("{to}.attn.query"),
                &qkv,
                Some(0..n),
                n,
                true,
            );
            // The key projection has no bias (CTranslate2 stores zeros).
            linear(
                &mut t,
                format!("{to}.attn.key"),
                &qkv,
                Some(n..2 * n),
                n,
                false,
            );
            linear(
                &mut t,
                format!("{to}.attn.value"),
                &qkv,
                Some(2 * n..3 * n),
                n,
                true,
            );
            linear(
                &mut t,
                format!("{to}.attn.out"),
                &format!("{from}/self_attention/linear_1"),
                None,
                n,
                true,
            );
            if stack == "decoder" {
                layer_norm(
                    &mut t,
                    format!("{to}.cross_attn_ln"),
                    format!("{from}/attention/layer_norm"),
                );
                linear(
                    &mut t,
                    format!("{to}.cross_attn.query"),
                    &format!("{from}/attention/linear_0"),
                    None,
                    n,
                    true,
                );
                let kv = format!("{from}/attention/linear_1");
                linear(
                    &mut t,
                    format!("{to}.cross_attn.key"),
                    &kv,
                    Some(0..n),
                    n,
                    false,
                );
                linear(
                    &mut t,
                    format!("{to}.cross_attn.value"),
                    &kv,
                    Some(n..2 * n),
                    n,
                    true,
                );
                linear(
                    &mut t,
                    format!("{to}.cross_attn.out"),
                    &format!("{from}/attention/linear_2"),
                    None,
                    n,
                    true,
                );
            }
            layer_norm(
                &mut t,
                format!("{to}.mlp_ln"),
                format!("{from}/ffn/layer_norm"),
            );
            linear(
                &mut t,
                format!("{to}.mlp.0"),
                &format!("{from}/ffn/linear_0"),
                None,
                4 * n,
                true,
            );
            let out = format!("{to}.mlp.2");
            t.push(Tensor {
                name: format!("{out}.weight"),
                source: format!("{from}/ffn/linear_1/weight"),
                rows: None,
                shape: vec![n, 4 * n],
                out: Out::F16,
            });
            t.push(Tensor {
                name: format!("{out}.bias"),
                source: format!("{from}/ffn/linear_1/bias"),
                rows: None,
                shape: vec![n],
                out: Out::F32,
            });
        }
    }
    t
}

/// The values of `var` (rows `rows`) converted to `out`.
fn convert(
    path: &Path,
    name: &str,
    var: &Variable,
    bytes: &[u8],
    rows: Option<&Range<u64>>,
    out: Out,
) -> Result<Vec<u8>, ImportError> {
    let size = var.dtype.size() as usize;
    let row_len = var.shape.iter().skip(1).product::<u64>() as usize * size;
    let slice = match rows {
        None => bytes,
        Some(r) => {
            let available = var.shape.first().copied().unwrap_or(0);
            if r.end > available {
                return Err(ImportError::Unsupported {
                    path: path.to_path_buf(),
                    message: format!(
                        "`{name}` has {available} rows; the fused projection needs {}",
                        r.end
                    ),
                });
            }
            &bytes[r.start as usize * row_len..r.end as usize * row_len]
        }
    };
    let values =
        |f: &dyn Fn(&[u8]) -> f32| -> Vec<f32> { slice.chunks_exact(size).map(f).collect() };
    let as_f32: Vec<f32> = match (var.dtype, out) {
        (DType::F16, Out::F16) | (DType::F32, Out::F32) => return Ok(slice.to_vec()),
        (DType::F16, Out::F32) => values(&|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
        (DType::Bf16, _) => values(&|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        (DType::F32, Out::F16) => values(&|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        (other, _) => {
            return Err(ImportError::Unsupported {
                path: path.to_path_buf(),
                message: format!(
                    "`{name}` is {}: quantized CTranslate2 models cannot be imported; convert the model with `--quantization float16`",
                    other.name()
                ),
            })
        }
    };
    Ok(match out {
        Out::F32 => as_f32.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Out::F16 => as_f32
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect(),
    })
}

fn put_i32(w: &mut impl Write, v: u64) -> std::io::Result<()> {
    let v = i32::try_from(v)
        .map_err(|_| std::io::Error::other(format!("{v} does not fit in an i32")))?;
    w.write_all(&v.to_le_bytes())
}

/// Writes the ggml file for `model` to `dest` atomically; returns the number
/// of tensors, the bytes written and the hyper-parameters.
pub fn write(
    model: &mut Ct2Model,
    tokens: &[Vec<u8>],
    dest: &Path,
    progress: &mut dyn PullProgress,
) -> Result<(usize, u64, Hparams), ImportError> {
    let h = hparams(model)?;
    let tensors = plan(&h);
    // Check every source before writing anything.
    for t in &tensors {
        let var = model.get(&t.source)?;
        let want: u64 = t.shape.iter().product::<u64>();
        let have = match &t.rows {
            Some(r) => (r.end - r.start) * var.shape.iter().skip(1).product::<u64>(),
            None => var.elements(),
        };
        if want != have {
            return Err(ImportError::Unsupported {
                path: model.path.clone(),
                message: format!(
                    "`{}` has shape {:?}; `{}` needs {:?}",
                    t.source, var.shape, t.name, t.shape
                ),
            });
        }
    }
    let dir = dest.parent().unwrap_or(Path::new("."));
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    let temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(io("cannot create a temp file in", dir))?;
    let total = std::fs::metadata(&model.path).map(|m| m.len()).ok();
    progress.start(&format!("importing {}", model.path.display()), total);
    let result = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, temp.as_file());
        let temp_path = temp.path().to_path_buf();
        let e = |source| ImportError::Io {
            action: "cannot write",
            path: temp_path.clone(),
            source,
        };
        w.write_all(&GGML_MAGIC.to_le_bytes()).map_err(&e)?;
        for v in [
            h.n_vocab,
            h.n_audio_ctx,
            h.n_audio_state,
            h.n_audio_head,
            h.n_audio_layer,
            h.n_text_ctx,
            h.n_text_state,
            h.n_text_head,
            h.n_text_layer,
            h.n_mels,
            1, // ftype: mostly f16
        ] {
            put_i32(&mut w, u64::from(v)).map_err(&e)?;
        }
        let filters = mel::filters(h.n_mels as usize);
        put_i32(&mut w, u64::from(h.n_mels)).map_err(&e)?;
        put_i32(&mut w, mel::N_BINS as u64).map_err(&e)?;
        for v in filters {
            w.write_all(&v.to_le_bytes()).map_err(&e)?;
        }
        put_i32(&mut w, tokens.len() as u64).map_err(&e)?;
        for token in tokens {
            put_i32(&mut w, token.len() as u64).map_err(&e)?;
            w.write_all(token).map_err(&e)?;
        }
        let mut last_source = String::new();
        let mut cached = None;
        for t in &tensors {
            if t.source != last_source {
                let (var, bytes) = model.read(&t.source)?;
                progress.advance(var.len);
                cached = Some((var, bytes));
                last_source.clone_from(&t.source);
            }
            let Some((var, bytes)) = &cached else {
                unreachable!("read above")
            };
            let data = convert(&model.path, &t.source, var, bytes, t.rows.as_ref(), t.out)?;
            put_i32(&mut w, t.shape.len() as u64).map_err(&e)?;
            put_i32(&mut w, t.name.len() as u64).map_err(&e)?;
            put_i32(&mut w, if t.out == Out::F16 { 1 } else { 0 }).map_err(&e)?;
            for d in t.shape.iter().rev() {
                put_i32(&mut w, *d).map_err(&e)?;
            }
            w.write_all(t.name.as_bytes()).map_err(&e)?;
            w.write_all(&data).map_err(&e)?;
        }
        w.flush().map_err(&e)?;
        drop(w);
        temp.as_file()
            .sync_all()
            .map_err(io("cannot sync", temp.path()))?;
        Ok(())
    })();
    progress.finish();
    result?;
    let bytes = temp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
    temp.persist(dest).map_err(|e| ImportError::Io {
        action: "cannot move the imported model to",
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok((tensors.len(), bytes, h))
}
