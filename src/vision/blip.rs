//! BLIP image captioning on candle-transformers' `blip` model, loaded from a
//! Hugging Face directory: `config.json` (missing keys take transformers'
//! `BlipConfig` defaults, as `from_pretrained` does), `model.safetensors`
//! and `tokenizer.json` (BERT WordPiece with BLIP's `[DEC]` start token).
//! Generation is greedy, as `BlipForConditionalGeneration.generate` is by
//! default: start from `[DEC]` (+ the prompt's tokens), stop at `[SEP]` or
//! after `max_length` tokens in all.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{blip as model, blip_text};
use serde::Deserialize;
use tokenizers::Tokenizer;

use super::{preprocess, CaptionError, Captioner};

/// transformers' default `max_length` for generation: tokens in all,
/// the start token and the prompt included.
pub const DEFAULT_MAX_LENGTH: usize = 20;

/// A BLIP captioning model, ready to caption.
pub struct Blip {
    model: model::BlipForConditionalGeneration,
    tokenizer: Tokenizer,
    name: String,
    image_size: u32,
    bos: u32,
    sep: u32,
    max_length: usize,
    device: Device,
}

impl Blip {
    /// Loads the model in `dir`; `max_length` caps the tokens of a caption.
    pub fn load(dir: &Path, max_length: usize) -> Result<Blip, CaptionError> {
        let fail = |reason: String| CaptionError::Load {
            dir: dir.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| fail(format!("config.json: {e}")))?;
        let config: HfConfig =
            serde_json::from_str(&text).map_err(|e| fail(format!("config.json: {e}")))?;
        let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| fail(format!("tokenizer.json: {e}")))?;
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(fail("model.safetensors is missing".into()));
        }
        let device = Device::Cpu;
        // SAFETY: the weights are memory-mapped read-only; files in the model
        // store are installed atomically and never rewritten in place.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &device) }
            .map_err(|e| fail(format!("model.safetensors: {e}")))?;
        let model = model::BlipForConditionalGeneration::new(&config.candle(), vb)
            .map_err(|e| fail(format!("model.safetensors: {e}")))?;
        Ok(Blip {
            model,
            tokenizer,
            name: dir.display().to_string(),
            image_size: config.vision_config.image_size as u32,
            bos: config.text_config.bos_token_id,
            sep: config.text_config.sep_token_id,
            max_length: max_length.max(2),
            device,
        })
    }

    /// The token ids of a caption (without the start token), greedy.
    pub fn generate(
        &mut self,
        image: &image::RgbImage,
        prompt: Option<&str>,
    ) -> Result<Vec<u32>, CaptionError> {
        let pixels = preprocess::to_tensor(image, self.image_size, &self.device)?;
        let image_embeds = self.model.vision_model().forward(&pixels)?;
        let mut tokens = vec![self.bos];
        if let Some(prompt) = prompt.filter(|p| !p.trim().is_empty()) {
            let encoding = self
                .tokenizer
                .encode(prompt, false)
                .map_err(|e| CaptionError::Tokenizer(e.to_string()))?;
            tokens.extend_from_slice(encoding.get_ids());
        }
        self.model.reset_kv_cache();
        let mut fresh = tokens.clone();
        while tokens.len() < self.max_length {
            let input = Tensor::new(fresh.as_slice(), &self.device)?.unsqueeze(0)?;
            let logits = self
                .model
                .text_decoder()
                .forward(&input, &image_embeds)?
                .squeeze(0)?;
            let last = logits.get(logits.dim(0)? - 1)?;
            let next = last.argmax(0)?.to_scalar::<u32>()?;
            if next == self.sep {
                break;
            }
            tokens.push(next);
            fresh = vec![next];
        }
        self.model.reset_kv_cache();
        tokens.remove(0);
        Ok(tokens)
    }
}

impl Captioner for Blip {
    fn caption(
        &mut self,
        image: &image::RgbImage,
        prompt: Option<&str>,
    ) -> Result<String, CaptionError> {
        let ids = self.generate(image, prompt)?;
        let text = self
            .tokenizer
            .decode(&ids, true)
            .map_err(|e| CaptionError::Tokenizer(e.to_string()))?;
        Ok(text.trim().to_string())
    }

    fn model_name(&self) -> &str {
        &self.name
    }
}

/// `config.json` of `BlipForConditionalGeneration`, with transformers'
/// defaults for the keys a saved config leaves out.
#[derive(Debug, Deserialize)]
struct HfConfig {
    #[serde(default)]
    text_config: TextConfig,
    #[serde(default)]
    vision_config: VisionConfig,
    #[serde(default = "d512")]
    projection_dim: usize,
    #[serde(default = "d256")]
    image_text_hidden_size: usize,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct TextConfig {
    vocab_size: usize,
    hidden_size: usize,
    encoder_hidden_size: usize,
    intermediate_size: usize,
    projection_dim: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    max_position_embeddings: usize,
    hidden_act: candle_nn::Activation,
    layer_norm_eps: f64,
    is_decoder: bool,
    bos_token_id: u32,
    sep_token_id: u32,
}

impl Default for TextConfig {
    fn default() -> TextConfig {
        TextConfig {
            vocab_size: 30524,
            hidden_size: 768,
            encoder_hidden_size: 768,
            intermediate_size: 3072,
            projection_dim: 768,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 512,
            hidden_act: candle_nn::Activation::Gelu,
            layer_norm_eps: 1e-12,
            is_decoder: true,
            bos_token_id: 30522,
            sep_token_id: 102,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct VisionConfig {
    hidden_size: usize,
    intermediate_size: usize,
    projection_dim: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    image_size: usize,
    patch_size: usize,
    hidden_act: candle_nn::Activation,
    layer_norm_eps: f64,
}

impl Default for VisionConfig {
    fn default() -> VisionConfig {
        VisionConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            projection_dim: 512,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            image_size: 384,
            patch_size: 16,
            hidden_act: candle_nn::Activation::Gelu,
            layer_norm_eps: 1e-5,
        }
    }
}

fn d512() -> usize {
    512
}

fn d256() -> usize {
    256
}

impl HfConfig {
    fn candle(&self) -> model::Config {
        let t = &self.text_config;
        let v = &self.vision_config;
        model::Config {
            text_config: blip_text::Config {
                vocab_size: t.vocab_size,
                hidden_size: t.hidden_size,
                encoder_hidden_size: t.encoder_hidden_size,
                intermediate_size: t.intermediate_size,
                projection_dim: t.projection_dim,
                num_hidden_layers: t.num_hidden_layers,
                num_attention_heads: t.num_attention_heads,
                max_position_embeddings: t.max_position_embeddings,
                hidden_act: t.hidden_act,
                layer_norm_eps: t.layer_norm_eps,
                is_decoder: t.is_decoder,
            },
            vision_config: model::VisionConfig {
                hidden_size: v.hidden_size,
                intermediate_size: v.intermediate_size,
                projection_dim: v.projection_dim,
                num_hidden_layers: v.num_hidden_layers,
                num_attention_heads: v.num_attention_heads,
                image_size: v.image_size,
                patch_size: v.patch_size,
                hidden_act: v.hidden_act,
                layer_norm_eps: v.layer_norm_eps,
            },
            projection_dim: self.projection_dim,
            image_text_hidden_size: self.image_text_hidden_size,
        }
    }
}
