//! A tiny, randomly initialised BLIP captioning model with the real
//! architecture (2 vision and 2 text layers, small hidden sizes, BLIP's real
//! 30,524-token vocabulary and 384×384 input), written in the real Hugging
//! Face layout: `config.json`, `model.safetensors` (every tensor
//! `BlipForConditionalGeneration` has, named as transformers names them) and
//! `tokenizer.json` (the BERT uncased WordPiece tokenizer of
//! all-MiniLM-L6-v2 plus BLIP's `[DEC]`/`[ENC]` tokens, as BLIP ships it).
//!
//! The weights come from a fixed-seed splitmix64 generator, so the same seed
//! gives the same bytes on every machine; `scripts/blip_reference.py` loads
//! these files in transformers to produce the reference captions the tests
//! compare against.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::{json, Value};

/// The seed of the model the tests and the benchmark use.
pub const SEED: u64 = 20_261_123;

const VOCAB: usize = 30524;
const TEXT_HIDDEN: usize = 32;
const TEXT_INTER: usize = 64;
const TEXT_LAYERS: usize = 2;
const TEXT_POSITIONS: usize = 64;
const VISION_HIDDEN: usize = 48;
const VISION_INTER: usize = 96;
const VISION_LAYERS: usize = 2;
const HEADS: usize = 4;
const IMAGE: usize = 384;
const PATCH: usize = 16;

/// splitmix64: tiny, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-scale, scale).
    fn uniform(&mut self, scale: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        (unit * 2.0 - 1.0) * scale
    }
}

struct Weights {
    rng: Rng,
    tensors: HashMap<String, Tensor>,
}

impl Weights {
    fn put(&mut self, name: &str, shape: &[usize], values: Vec<f32>) {
        let t = Tensor::from_vec(values, shape, &Device::Cpu).unwrap();
        self.tensors.insert(name.to_string(), t);
    }

    /// Uniform values with variance 1/`fan_in` (or `scale` when given).
    fn random(&mut self, name: &str, shape: &[usize], scale: f32) {
        let n = shape.iter().product();
        let values = (0..n).map(|_| self.rng.uniform(scale)).collect();
        self.put(name, shape, values);
    }

    fn linear(&mut self, name: &str, out: usize, inp: usize) {
        let scale = (3.0 / inp as f32).sqrt();
        self.random(&format!("{name}.weight"), &[out, inp], scale);
        self.random(&format!("{name}.bias"), &[out], 0.1);
    }

    fn layer_norm(&mut self, name: &str, n: usize) {
        let w = (0..n).map(|_| 1.0 + self.rng.uniform(0.2)).collect();
        self.put(&format!("{name}.weight"), &[n], w);
        self.random(&format!("{name}.bias"), &[n], 0.1);
    }
}

fn config() -> Value {
    json!({
        "architectures": ["BlipForConditionalGeneration"],
        "model_type": "blip",
        "projection_dim": 32,
        "image_text_hidden_size": 32,
        "text_config": {
            "model_type": "blip_text_model",
            "vocab_size": VOCAB,
            "hidden_size": TEXT_HIDDEN,
            "encoder_hidden_size": VISION_HIDDEN,
            "intermediate_size": TEXT_INTER,
            "projection_dim": 32,
            "num_hidden_layers": TEXT_LAYERS,
            "num_attention_heads": HEADS,
            "max_position_embeddings": TEXT_POSITIONS,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-12,
            "is_decoder": true,
            "bos_token_id": 30522,
            "sep_token_id": 102,
            "pad_token_id": 0,
            "eos_token_id": 2
        },
        "vision_config": {
            "model_type": "blip_vision_model",
            "hidden_size": VISION_HIDDEN,
            "intermediate_size": VISION_INTER,
            "projection_dim": 32,
            "num_hidden_layers": VISION_LAYERS,
            "num_attention_heads": HEADS,
            "image_size": IMAGE,
            "patch_size": PATCH,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-5
        }
    })
}

fn weights(seed: u64) -> HashMap<String, Tensor> {
    let mut w = Weights {
        rng: Rng(seed),
        tensors: HashMap::new(),
    };
    let (vh, th) = (VISION_HIDDEN, TEXT_HIDDEN);
    let positions = (IMAGE / PATCH) * (IMAGE / PATCH) + 1;
    w.random("vision_model.embeddings.class_embedding", &[1, 1, vh], 1.0);
    w.random(
        "vision_model.embeddings.patch_embedding.weight",
        &[vh, 3, PATCH, PATCH],
        (3.0 / (3 * PATCH * PATCH) as f32).sqrt(),
    );
    w.random("vision_model.embeddings.patch_embedding.bias", &[vh], 0.1);
    w.random(
        "vision_model.embeddings.position_embedding",
        &[1, positions, vh],
        0.5,
    );
    for i in 0..VISION_LAYERS {
        let p = format!("vision_model.encoder.layers.{i}");
        w.linear(&format!("{p}.self_attn.qkv"), 3 * vh, vh);
        w.linear(&format!("{p}.self_attn.projection"), vh, vh);
        w.layer_norm(&format!("{p}.layer_norm1"), vh);
        w.linear(&format!("{p}.mlp.fc1"), VISION_INTER, vh);
        w.linear(&format!("{p}.mlp.fc2"), vh, VISION_INTER);
        w.layer_norm(&format!("{p}.layer_norm2"), vh);
    }
    w.layer_norm("vision_model.post_layernorm", vh);

    let t = "text_decoder.bert";
    w.random(
        &format!("{t}.embeddings.word_embeddings.weight"),
        &[VOCAB, th],
        1.0,
    );
    w.random(
        &format!("{t}.embeddings.position_embeddings.weight"),
        &[TEXT_POSITIONS, th],
        0.5,
    );
    w.layer_norm(&format!("{t}.embeddings.LayerNorm"), th);
    for i in 0..TEXT_LAYERS {
        let p = format!("{t}.encoder.layer.{i}");
        for (block, kv_in) in [("attention", th), ("crossattention", vh)] {
            w.linear(&format!("{p}.{block}.self.query"), th, th);
            w.linear(&format!("{p}.{block}.self.key"), th, kv_in);
            w.linear(&format!("{p}.{block}.self.value"), th, kv_in);
            w.linear(&format!("{p}.{block}.output.dense"), th, th);
            w.layer_norm(&format!("{p}.{block}.output.LayerNorm"), th);
        }
        w.linear(&format!("{p}.intermediate.dense"), TEXT_INTER, th);
        w.linear(&format!("{p}.output.dense"), th, TEXT_INTER);
        w.layer_norm(&format!("{p}.output.LayerNorm"), th);
    }
    let c = "text_decoder.cls.predictions";
    w.linear(&format!("{c}.transform.dense"), th, th);
    w.layer_norm(&format!("{c}.transform.LayerNorm"), th);
    // The output projection is tied to the word embeddings, as in BLIP's
    // checkpoints; its bias is stored under both names transformers uses.
    let embeddings = w.tensors[&format!("{t}.embeddings.word_embeddings.weight")].clone();
    w.tensors
        .insert(format!("{c}.decoder.weight"), embeddings.copy().unwrap());
    w.random(&format!("{c}.bias"), &[VOCAB], 0.5);
    let bias = w.tensors[&format!("{c}.bias")].copy().unwrap();
    w.tensors.insert(format!("{c}.decoder.bias"), bias);
    w.tensors
}

/// BLIP's tokenizer: BERT uncased WordPiece (from `bert_tokenizer_json`,
/// e.g. all-MiniLM-L6-v2's) plus `[DEC]` (30522) and `[ENC]` (30523), with
/// no padding or truncation.
fn tokenizer(bert_tokenizer_json: &Path) -> Value {
    let text = std::fs::read_to_string(bert_tokenizer_json).unwrap();
    let mut tok: Value = serde_json::from_str(&text).unwrap();
    let vocab = tok["model"]["vocab"].as_object().unwrap().len();
    assert_eq!(
        vocab, 30522,
        "expected BERT uncased's 30,522-token vocabulary"
    );
    for (id, content) in [(30522, "[DEC]"), (30523, "[ENC]")] {
        tok["added_tokens"].as_array_mut().unwrap().push(json!({
            "id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true
        }));
    }
    tok["padding"] = Value::Null;
    tok["truncation"] = Value::Null;
    tok
}

/// Writes the tiny model for `seed` into `dir` (created).
pub fn write(dir: &Path, seed: u64, bert_tokenizer_json: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config()).unwrap(),
    )
    .unwrap();
    candle_core::safetensors::save(&weights(seed), dir.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.join("tokenizer.json"),
        serde_json::to_string(&tokenizer(bert_tokenizer_json)).unwrap(),
    )
    .unwrap();
}

/// The test images: deterministic patterns the Python reference reads too.
pub fn test_image(which: usize, width: u32, height: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        match which {
            // Gradients under a checkerboard.
            0 => image::Rgb([
                (fx * 255.0) as u8,
                (fy * 255.0) as u8,
                if ((x / 32) + (y / 32)) % 2 == 0 {
                    220
                } else {
                    30
                },
            ]),
            // A bright disc on a dark blue ground.
            1 => {
                let d = ((fx - 0.5).powi(2) + (fy - 0.5).powi(2)).sqrt();
                if d < 0.3 {
                    image::Rgb([250, 200, 40])
                } else {
                    image::Rgb([10, 20, 90])
                }
            }
            // Diagonal stripes.
            _ => {
                if ((x + y) / 24) % 2 == 0 {
                    image::Rgb([200, 30, 30])
                } else {
                    image::Rgb([240, 240, 240])
                }
            }
        }
    })
}
