//! Sentence embeddings in-process: all-MiniLM-L6-v2 (a BERT encoder) run
//! with candle on the CPU, mean-pooled over real tokens and L2-normalised,
//! so a dot product is the cosine similarity. [`Embedder`] is synchronous;
//! [`Pool`] runs it on tokio's blocking threads, at most `embed_workers`
//! calls at once. Owns the model files it was given; touches nothing else.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};
use tokio::sync::Semaphore;

/// Longest input in word pieces (sentence-transformers' `max_seq_length`
/// for all-MiniLM-L6-v2).
pub const MAX_TOKENS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a BERT config: {source}")]
    Config {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot load the tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("cannot load the embedding model {path}: {source}")]
    Weights {
        path: PathBuf,
        source: candle_core::Error,
    },
    #[error("embedding failed: {0}")]
    Run(String),
}

impl From<candle_core::Error> for EmbedError {
    fn from(e: candle_core::Error) -> EmbedError {
        EmbedError::Run(e.to_string())
    }
}

/// A loaded sentence embedder.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
    device: Device,
}

impl Embedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from a
    /// model directory (the store's `all-minilm-l6-v2`).
    pub fn load(dir: &Path) -> Result<Embedder, EmbedError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| EmbedError::Read { path, source })
        };
        let config_path = dir.join("config.json");
        let config: Config =
            serde_json::from_slice(&read("config.json")?).map_err(|source| EmbedError::Config {
                path: config_path,
                source,
            })?;
        let dim = config.hidden_size;
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| EmbedError::Tokenizer {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            })?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Tokenizer {
                path: tokenizer_path,
                message: e.to_string(),
            })?;
        let weights_path = dir.join("model.safetensors");
        let device = Device::Cpu;
        let vb =
            VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DType::F32, &device)
                .map_err(|source| EmbedError::Weights {
                    path: weights_path.clone(),
                    source,
                })?;
        let model = BertModel::load(vb, &config).map_err(|source| EmbedError::Weights {
            path: weights_path,
            source,
        })?;
        Ok(Embedder {
            model,
            tokenizer,
            dim,
            device,
        })
    }

    /// Length of every vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds texts in one forward pass: unit vectors, one per text.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Run(e.to_string()))?;
        let rows = encodings.len();
        let cols = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(rows * cols);
        let mut mask = Vec::with_capacity(rows * cols);
        for e in &encodings {
            ids.extend(e.get_ids().iter().copied());
            mask.extend(e.get_attention_mask().iter().copied());
        }
        let ids = Tensor::from_vec(ids, (rows, cols), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, cols), &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // Mean over real tokens only, then unit length.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let unit = mean.broadcast_div(&norm)?;
        Ok(unit.to_vec2::<f32>()?)
    }
}

/// The embedder on tokio's blocking pool, bounded.
#[derive(Clone)]
pub struct Pool {
    embedder: Arc<Embedder>,
    permits: Arc<Semaphore>,
    batch: usize,
}

impl Pool {
    pub fn new(embedder: Embedder, workers: usize, batch: usize) -> Pool {
        Pool {
            embedder: Arc::new(embedder),
            permits: Arc::new(Semaphore::new(workers.max(1))),
            batch: batch.max(1),
        }
    }

    pub fn dim(&self) -> usize {
        self.embedder.dim()
    }

    /// Embeds `texts` in batches off the async threads.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch) {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|e| EmbedError::Run(e.to_string()))?;
            let embedder = self.embedder.clone();
            let batch = batch.to_vec();
            let vectors = tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
                embedder.embed(&refs)
            })
            .await
            .map_err(|e| EmbedError::Run(e.to_string()))??;
            out.extend(vectors);
        }
        Ok(out)
    }
}

/// Dot product of two unit vectors: their cosine similarity.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    super::rank::dot(a, b)
}
