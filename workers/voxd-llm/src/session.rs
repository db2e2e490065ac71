//! A loaded model at work: [`Loaded`] owns its llama.cpp context, its chat
//! template and the record of what the KV cache holds, and serves jobs on
//! them: `generate` (reusing the cached prompt prefix, then sampling and
//! streaming tokens) and `bench`. The cache is kept on disk when the model
//! is let go (see `persist`).

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use voxd_proto::llm::{
    BenchJob, BenchStats, Finish, GenerateJob, GenerateStats, ModelInfo, ModelParams, Prompt, Token,
};
use voxd_proto::{kind, Frame};

use crate::jobs::{reply, Failure, Job, Out};
use crate::model;
use crate::persist;
use crate::stop::{Step, StopFilter};
use crate::template::{self, ChatTemplate};

/// A loaded model with its context and the tokens its KV cache holds.
pub struct Loaded<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    params: ModelParams,
    template: Option<ChatTemplate>,
    /// The tokens of sequence 0 in the KV cache, in order.
    cached: Vec<LlamaToken>,
    /// Where the cache is kept across restarts, and the tokens read from there.
    kept: Option<(PathBuf, Vec<LlamaToken>)>,
    info: ModelInfo,
}

/// How the sampling of a generation went.
struct Generation {
    generated: usize,
    first_token: Option<Instant>,
    finish: Finish,
}

impl<'m> Loaded<'m> {
    /// A context for `model` as `params` set it, with the KV cache kept
    /// from an earlier worker, if any.
    pub fn new(
        backend: &LlamaBackend,
        model: &'m LlamaModel,
        params: &ModelParams,
    ) -> Result<Loaded<'m>, Failure> {
        let threads = params.threads.max(1) as i32;
        let batch = params.batch.max(1);
        let ctx_params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(params.context))
            .with_n_batch(batch)
            .with_n_ubatch(batch)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            // Sliding-window models (Gemma 3) keep only the window in the
            // KV cache otherwise, and then no prompt prefix can be reused.
            .with_swa_full(true);
        let mut ctx = model.new_context(backend, ctx_params).map_err(|e| {
            Failure::new(
                "load_failed",
                format!(
                    "cannot create a llama.cpp context of {} tokens for {}: {e}",
                    params.context,
                    params.path.display()
                ),
            )
        })?;
        let template = ChatTemplate::load(model, params)?;
        let info = model::info(
            model,
            params,
            ctx.n_ctx(),
            template.as_ref().map(|t| t.source),
        );
        let kept = persist::file(params).map(|file| {
            let tokens = persist::restore(&mut ctx, &file);
            (file, tokens)
        });
        Ok(Loaded {
            model,
            ctx,
            params: params.clone(),
            template,
            cached: kept.as_ref().map(|(_, t)| t.clone()).unwrap_or_default(),
            kept,
            info,
        })
    }

    /// Runs `job` (on this model), streaming its reply frames to `out`;
    /// returns its `done` frame.
    pub fn serve(&mut self, job: Job, out: &Out, cancel: &AtomicBool) -> Result<Frame, Failure> {
        match job {
            Job::Load(_) => Ok(reply(kind::DONE, &self.info)),
            Job::Generate(job) => self.generate(job, out, cancel),
            Job::Bench(job) => self.bench(&job, cancel),
        }
    }

    fn generate(
        &mut self,
        job: GenerateJob,
        out: &Out,
        cancel: &AtomicBool,
    ) -> Result<Frame, Failure> {
        let started = Instant::now();
        let prompt = self.tokenize(&job.prompt)?;
        let budget = (job.max_tokens as usize).min(self.ctx.n_ctx() as usize - prompt.len());
        let cached = self.reuse_prefix(&prompt);
        let mut batch = LlamaBatch::new(self.params.batch.max(1) as usize, 1);
        self.decode_tokens(&prompt[cached..], &mut batch, cancel)?;
        let generation = self.sample_reply(&job, budget, &mut batch, out, cancel)?;
        let stats = generation.stats(started, prompt.len(), cached);
        if let Some(session) = &job.session {
            eprintln!(
                "voxd-llm: session {session}: {} prompt tokens, {cached} from the cache, {} generated",
                prompt.len(),
                generation.generated
            );
        }
        Ok(reply(kind::DONE, &stats))
    }

    /// The tokens of `prompt`, which must be some and leave the context
    /// room for at least one more.
    fn tokenize(&self, prompt: &Prompt) -> Result<Vec<LlamaToken>, Failure> {
        let (text, special) =
            template::render(self.model, self.template.as_ref(), &self.info, prompt)?;
        let prompt = self.model.vocab().tokenize(text.as_bytes(), true, special);
        let n_ctx = self.ctx.n_ctx() as usize;
        if prompt.is_empty() {
            return Err(Failure::new("bad_request", "the prompt is empty"));
        }
        if prompt.len() >= n_ctx {
            return Err(Failure::new(
                "prompt_too_long",
                format!(
                    "the prompt has {} tokens but the context holds {n_ctx}; shorten it or raise engines.llm.context",
                    prompt.len()
                ),
            ));
        }
        Ok(prompt)
    }

    /// Samples up to `budget` tokens after the decoded prompt (its logits
    /// are the last of `batch`'s), streaming their text to `out` up to the
    /// first stop string.
    fn sample_reply(
        &mut self,
        job: &GenerateJob,
        budget: usize,
        batch: &mut LlamaBatch,
        out: &Out,
        cancel: &AtomicBool,
    ) -> Result<Generation, Failure> {
        let model = self.model;
        let vocab = model.vocab();
        let mut logits_at = batch.n_tokens() - 1;
        let mut sampler = sampler(job);
        let mut filter = StopFilter::new(&job.stop);
        let mut generation = Generation {
            generated: 0,
            first_token: None,
            finish: Finish::Length,
        };
        let mut hit_stop_string = false;
        while generation.generated < budget {
            if cancel.load(Ordering::SeqCst) {
                return Err(Failure::cancelled());
            }
            let token = match sampler.as_mut() {
                Some(sampler) => sampler.sample(&self.ctx, logits_at),
                None => argmax(self.ctx.get_logits_ith(logits_at)),
            };
            let now = Instant::now();
            generation.first_token.get_or_insert(now);
            if vocab.is_eog(token) {
                generation.finish = Finish::Stop;
                break;
            }
            generation.generated += 1;
            let piece = vocab.token_to_piece(token, false, None);
            match filter.push(&piece) {
                Step::Emit(text) => send_text(out, text)?,
                Step::Stop(text) => {
                    send_text(out, text)?;
                    generation.finish = Finish::Stop;
                    hit_stop_string = true;
                    break;
                }
            }
            if generation.generated == budget {
                break;
            }
            self.decode_next(token, batch)?;
            logits_at = 0;
        }
        if !hit_stop_string {
            // No stop string came: release what was held back for one.
            send_text(out, filter.finish())?;
        }
        Ok(generation)
    }

    /// Keeps the longest prefix of `prompt` already in the KV cache (all but
    /// its last token, whose logits are needed again) and drops the rest;
    /// returns how many tokens are kept.
    fn reuse_prefix(&mut self, prompt: &[LlamaToken]) -> usize {
        let common = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt.len() - 1);
        if common < self.cached.len() {
            let removed = self
                .ctx
                .clear_kv_cache_seq(Some(0), Some(common as u32), None)
                .unwrap_or(false);
            if removed {
                self.cached.truncate(common);
            } else {
                // This cache cannot drop a tail (e.g. a sliding window
                // without swa_full): start over.
                self.ctx.clear_kv_cache();
                self.cached.clear();
            }
        }
        self.cached.len()
    }

    /// Decodes `tokens` after the cached ones, in batches; logits for the last.
    fn decode_tokens(
        &mut self,
        tokens: &[LlamaToken],
        batch: &mut LlamaBatch,
        cancel: &AtomicBool,
    ) -> Result<(), Failure> {
        let size = self.params.batch.max(1) as usize;
        let chunks = tokens.chunks(size).count();
        for (i, chunk) in tokens.chunks(size).enumerate() {
            if cancel.load(Ordering::SeqCst) {
                return Err(Failure::cancelled());
            }
            batch.clear();
            let base = self.cached.len();
            for (j, &token) in chunk.iter().enumerate() {
                let last = i + 1 == chunks && j + 1 == chunk.len();
                batch
                    .add(token, (base + j) as i32, &[0], last)
                    .map_err(|e| Failure::new("decode_failed", e.to_string()))?;
            }
            if let Err(e) = self.ctx.decode(batch) {
                // What this batch wrote is unknown: forget the cache.
                self.ctx.clear_kv_cache();
                self.cached.clear();
                return Err(Failure::new(
                    "decode_failed",
                    format!("llama.cpp decode: {e}"),
                ));
            }
            self.cached.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// Decodes one sampled `token` after the cached ones, for its logits.
    fn decode_next(&mut self, token: LlamaToken, batch: &mut LlamaBatch) -> Result<(), Failure> {
        batch.clear();
        let pos = self.cached.len() as i32;
        batch
            .add(token, pos, &[0], true)
            .map_err(|e| Failure::new("decode_failed", e.to_string()))?;
        self.ctx
            .decode(batch)
            .map_err(|e| Failure::new("decode_failed", format!("llama.cpp decode: {e}")))?;
        self.cached.push(token);
        Ok(())
    }

    /// llama-bench's pp and tg tests on this context: `n_prompt` random
    /// tokens decoded in batches, then `n_gen` tokens decoded one by one,
    /// each after a warm-up run, `repetitions` times; mean tokens/s.
    fn bench(&mut self, job: &BenchJob, cancel: &AtomicBool) -> Result<Frame, Failure> {
        let n_vocab = self.model.n_vocab().max(1) as u32;
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut random_token = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            LlamaToken::new((rng % u64::from(n_vocab)) as i32)
        };
        let bos = self.model.vocab().bos();
        let mut batch = LlamaBatch::new(self.params.batch.max(1) as usize, 1);
        let mut pp = Vec::new();
        let mut tg = Vec::new();
        for rep in 0..=job.repetitions {
            if job.n_prompt > 0 {
                let tokens: Vec<_> = std::iter::once(bos)
                    .chain((1..job.n_prompt).map(|_| random_token()))
                    .collect();
                self.ctx.clear_kv_cache();
                self.cached.clear();
                let t = Instant::now();
                self.decode_tokens(&tokens, &mut batch, cancel)?;
                if rep > 0 {
                    pp.push(f64::from(job.n_prompt) / t.elapsed().as_secs_f64());
                }
            }
            if job.n_gen > 0 {
                self.ctx.clear_kv_cache();
                self.cached.clear();
                let mut token = bos;
                let t = Instant::now();
                for _ in 0..job.n_gen {
                    self.decode_tokens(&[token], &mut batch, cancel)?;
                    token = random_token();
                }
                if rep > 0 {
                    tg.push(f64::from(job.n_gen) / t.elapsed().as_secs_f64());
                }
            }
        }
        self.ctx.clear_kv_cache();
        self.cached.clear();
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        Ok(reply(
            kind::DONE,
            &BenchStats {
                n_prompt: job.n_prompt,
                n_gen: job.n_gen,
                threads: self.params.threads,
                batch: self.params.batch,
                pp_tokens_per_sec: mean(&pp),
                tg_tokens_per_sec: mean(&tg),
            },
        ))
    }
}

/// However the worker lets go of a model (it stops, its stdout closes, or
/// a request names another model), its KV cache is kept on disk for the
/// next worker, if it holds anything not already there.
impl Drop for Loaded<'_> {
    fn drop(&mut self) {
        let Some((file, kept)) = &self.kept else {
            return;
        };
        if self.cached.is_empty() || self.cached == *kept {
            return;
        }
        match persist::save(&self.ctx, file, &self.cached) {
            Ok(()) => eprintln!(
                "voxd-llm: kept the KV cache of {} tokens in {}",
                self.cached.len(),
                file.display()
            ),
            Err(e) => eprintln!("voxd-llm: could not keep the KV cache: {e}"),
        }
    }
}

impl Generation {
    /// The figures of this generation for a prompt of `prompt_tokens`, `cached`
    /// of them from the cache, that arrived at `started`.
    fn stats(&self, started: Instant, prompt_tokens: usize, cached: usize) -> GenerateStats {
        let end = Instant::now();
        let first_token_ms = self
            .first_token
            .map(|t| (t - started).as_secs_f64() * 1e3)
            .unwrap_or(0.0);
        // Tokens after the first each cost one decode.
        let tokens_per_sec = match self.first_token {
            Some(t) if self.generated > 1 && end > t => {
                (self.generated - 1) as f64 / (end - t).as_secs_f64()
            }
            _ => 0.0,
        };
        // All three are below the context size, a u32.
        GenerateStats {
            prompt_tokens: prompt_tokens as u32,
            cached_tokens: cached as u32,
            generated_tokens: self.generated as u32,
            first_token_ms,
            tokens_per_sec,
            finish: self.finish,
        }
    }
}

/// The sampler `job` asks for; `None` is greedy decoding.
fn sampler(job: &GenerateJob) -> Option<LlamaSampler> {
    // Greedy decoding is the argmax of the logits, read in place: the
    // greedy sampler would first copy every logit into a candidate list
    // (262,144 of them for Gemma 3), which cost ~9 % of generation speed.
    (job.temperature > 0.0).then(|| {
        LlamaSampler::chain_simple([
            LlamaSampler::top_p(job.top_p.clamp(0.0, 1.0), 1),
            LlamaSampler::temp(job.temperature),
            LlamaSampler::dist(job.seed),
        ])
    })
}

/// The token with the highest logit (the first of equals).
fn argmax(logits: &[f32]) -> LlamaToken {
    let mut best = 0;
    for (i, &logit) in logits.iter().enumerate() {
        if logit > logits[best] {
            best = i;
        }
    }
    LlamaToken::new(best as i32)
}

/// Streams a piece of generated text (nothing if empty).
fn send_text(out: &Out, text: String) -> Result<(), Failure> {
    if text.is_empty() {
        return Ok(());
    }
    out.send(reply(Token::KIND, &Token { text }))
        .map_err(|_| Failure::new("cancelled", "the output closed"))
}
