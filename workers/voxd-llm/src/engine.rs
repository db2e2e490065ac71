//! The llama.cpp side of the worker: it runs on one thread of its own,
//! takes jobs in order, loads the model a job names (keeping it loaded while
//! jobs name the same one), and writes reply frames to `out`. It owns the
//! model, its context and the record of what the KV cache holds.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::ChatTemplateError;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use voxd_proto::{kind, Frame};

use crate::persist;
use crate::stop::{Step, StopFilter};

/// The model a job runs on, and how to run it (from `engines.llm`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    pub path: PathBuf,
    pub threads: u32,
    pub context: u32,
    pub batch: u32,
    #[serde(default)]
    pub gpu_layers: u32,
    /// A llama.cpp template name (`chatml`, `gemma`, ...) or template text
    /// for models whose file has none; `None` uses the file's own.
    #[serde(default)]
    pub chat_template: Option<String>,
    /// A folder where the KV cache outlives the worker (see `persist`);
    /// `None` keeps nothing on disk.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
}

/// What a generation continues.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Prompt {
    Completion(String),
    Chat(Vec<ChatMessage>),
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadJob {
    pub model: ModelParams,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateJob {
    pub model: ModelParams,
    pub prompt: Prompt,
    pub max_tokens: u32,
    #[serde(default)]
    pub temperature: f32,
    #[serde(default = "one")]
    pub top_p: f32,
    #[serde(default)]
    pub stop: Vec<String>,
    #[serde(default)]
    pub seed: u32,
    #[serde(default)]
    pub session: Option<String>,
}

fn one() -> f32 {
    1.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchJob {
    pub model: ModelParams,
    pub n_prompt: u32,
    pub n_gen: u32,
    #[serde(default = "three")]
    pub repetitions: u32,
}

fn three() -> u32 {
    3
}

/// One request for the engine thread.
#[derive(Debug)]
pub enum Job {
    Load(LoadJob),
    Generate(GenerateJob),
    Bench(BenchJob),
}

impl Job {
    /// The job a request frame asks for; `Err` is the text of a `bad_request`.
    pub fn parse(frame: &Frame) -> Result<Job, String> {
        fn data<T: for<'de> Deserialize<'de>>(frame: &Frame) -> Result<T, String> {
            serde_json::from_value(frame.data.clone())
                .map_err(|e| format!("invalid `{}` request: {e}", frame.kind))
        }
        match frame.kind.as_str() {
            "load" => data(frame).map(Job::Load),
            "generate" => data(frame).map(Job::Generate),
            "bench" => data(frame).map(Job::Bench),
            other => Err(format!(
                "voxd-llm does not know request type `{other}`; it serves load, generate and bench"
            )),
        }
    }

    fn model(&self) -> &ModelParams {
        match self {
            Job::Load(j) => &j.model,
            Job::Generate(j) => &j.model,
            Job::Bench(j) => &j.model,
        }
    }
}

/// Where frames go; the worker's writer task sends them to stdout.
pub type Out = UnboundedSender<Frame>;

/// A job's failure: an `error{code, text}` frame.
struct Failure {
    code: &'static str,
    text: String,
}

impl Failure {
    fn new(code: &'static str, text: impl Into<String>) -> Failure {
        Failure {
            code,
            text: text.into(),
        }
    }
}

/// Runs jobs until the channel closes.
pub fn run(backend: LlamaBackend, jobs: Receiver<Job>, out: Out, cancel: &AtomicBool) {
    let mut next = None;
    loop {
        let Some(job) = next.take().or_else(|| jobs.recv().ok()) else {
            return;
        };
        let params = job.model().clone();
        let model = match load_model(&backend, &params) {
            Ok(model) => model,
            Err(f) => {
                let _ = out.send(Frame::error(f.code, f.text));
                continue;
            }
        };
        let mut loaded = match Loaded::new(&backend, &model, &params) {
            Ok(loaded) => loaded,
            Err(f) => {
                let _ = out.send(Frame::error(f.code, f.text));
                continue;
            }
        };
        let mut job = job;
        loop {
            let terminal = match loaded.serve(job, &out, cancel) {
                Ok(done) => done,
                Err(f) => Frame::error(f.code, f.text),
            };
            if out.send(terminal).is_err() {
                return;
            }
            match jobs.recv() {
                Ok(j) if *j.model() == params => job = j,
                Ok(j) => {
                    next = Some(j);
                    break; // another model: drop this one, load that
                }
                Err(_) => return,
            }
        }
    }
}

fn load_model(backend: &LlamaBackend, params: &ModelParams) -> Result<LlamaModel, Failure> {
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

/// A loaded model with its context and the tokens its KV cache holds.
struct Loaded<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    params: ModelParams,
    template: Option<LlamaChatTemplate>,
    /// The tokens of sequence 0 in the KV cache, in order.
    cached: Vec<LlamaToken>,
    /// Where the cache is kept across restarts, and the tokens read from there.
    kept: Option<(PathBuf, Vec<LlamaToken>)>,
    info: Value,
}

impl<'m> Loaded<'m> {
    fn new(
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
        let (template, source) = chat_template(model, params)?;
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
        let info = json!({
            "name": name,
            "path": params.path,
            "quantization": quantization,
            "parameters": model.n_params(),
            "context": ctx.n_ctx(),
            "prompt_format": if template.is_some() { "chat_template" } else { "completion" },
            "chat_template": source,
        });
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

    fn serve(&mut self, job: Job, out: &Out, cancel: &AtomicBool) -> Result<Frame, Failure> {
        match job {
            Job::Load(_) => Ok(Frame::new(kind::DONE).with_data(self.info.clone())),
            Job::Generate(job) => self.generate(job, out, cancel),
            Job::Bench(job) => self.bench(&job, cancel),
        }
    }

    fn render(&self, prompt: &Prompt) -> Result<(String, bool), Failure> {
        match prompt {
            Prompt::Completion(text) => Ok((text.clone(), false)),
            Prompt::Chat(messages) => {
                let Some(template) = &self.template else {
                    return Err(Failure::new(
                        "no_chat_template",
                        format!(
                            "the model {} ({}) has no chat template; send a completion prompt, or name a template in engines.llm.chat_template",
                            self.info["name"].as_str().unwrap_or("?"),
                            self.params.path.display()
                        ),
                    ));
                };
                let chat = messages
                    .iter()
                    .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.clone()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        Failure::new("bad_request", format!("invalid chat message: {e}"))
                    })?;
                let text = self
                    .model
                    .apply_chat_template(template, &chat, true)
                    .map_err(|e| {
                        Failure::new(
                            "bad_request",
                            format!("the chat template could not render these messages: {e}"),
                        )
                    })?;
                Ok((text, true))
            }
        }
    }

    fn generate(
        &mut self,
        job: GenerateJob,
        out: &Out,
        cancel: &AtomicBool,
    ) -> Result<Frame, Failure> {
        let started = Instant::now();
        let (text, special) = self.render(&job.prompt)?;
        let model = self.model;
        let vocab = model.vocab();
        let prompt = vocab.tokenize(text.as_bytes(), true, special);
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
        let budget = (job.max_tokens as usize).min(n_ctx - prompt.len());
        let cached = self.reuse_prefix(&prompt);
        let mut batch = LlamaBatch::new(self.params.batch.max(1) as usize, 1);
        self.decode_tokens(&prompt[cached..], &mut batch, cancel)?;
        let mut logits_at = batch.n_tokens() - 1;

        // Greedy decoding is the argmax of the logits, read in place: the
        // greedy sampler would first copy every logit into a candidate list
        // (262,144 of them for Gemma 3), which cost ~9 % of generation speed.
        let mut sampler = (job.temperature > 0.0).then(|| {
            LlamaSampler::chain_simple([
                LlamaSampler::top_p(job.top_p.clamp(0.0, 1.0), 1),
                LlamaSampler::temp(job.temperature),
                LlamaSampler::dist(job.seed),
            ])
        });
        let mut filter = StopFilter::new(&job.stop);
        let mut generated = 0usize;
        let mut first_token = None;
        let mut finish = "length";
        let mut hit_stop_string = false;
        while generated < budget {
            if cancel.load(Ordering::SeqCst) {
                return Err(cancelled());
            }
            let token = match sampler.as_mut() {
                Some(sampler) => sampler.sample(&self.ctx, logits_at),
                None => argmax(self.ctx.get_logits_ith(logits_at)),
            };
            let now = Instant::now();
            first_token.get_or_insert(now);
            if vocab.is_eog(token) {
                finish = "stop";
                break;
            }
            generated += 1;
            let piece = vocab.token_to_piece(token, false, None);
            match filter.push(&piece) {
                Step::Emit(text) => send_text(out, text)?,
                Step::Stop(text) => {
                    send_text(out, text)?;
                    finish = "stop";
                    hit_stop_string = true;
                    break;
                }
            }
            if generated == budget {
                break;
            }
            batch.clear();
            let pos = self.cached.len() as i32;
            batch
                .add(token, pos, &[0], true)
                .map_err(|e| Failure::new("decode_failed", e.to_string()))?;
            self.ctx
                .decode(&mut batch)
                .map_err(|e| Failure::new("decode_failed", format!("llama.cpp decode: {e}")))?;
            self.cached.push(token);
            logits_at = 0;
        }
        if !hit_stop_string {
            // No stop string came: release what was held back for one.
            send_text(out, filter.finish())?;
        }
        let end = Instant::now();
        let first_token_ms = first_token
            .map(|t| (t - started).as_secs_f64() * 1e3)
            .unwrap_or(0.0);
        // Tokens after the first each cost one decode.
        let tokens_per_sec = match first_token {
            Some(t) if generated > 1 && end > t => (generated - 1) as f64 / (end - t).as_secs_f64(),
            _ => 0.0,
        };
        if let Some(session) = &job.session {
            eprintln!(
                "voxd-llm: session {session}: {} prompt tokens, {cached} from the cache, {generated} generated",
                prompt.len()
            );
        }
        Ok(Frame::new(kind::DONE).with_data(json!({
            "prompt_tokens": prompt.len(),
            "cached_tokens": cached,
            "generated_tokens": generated,
            "first_token_ms": first_token_ms,
            "tokens_per_sec": tokens_per_sec,
            "finish": finish,
        })))
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
                return Err(cancelled());
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
        let mean = |v: &[f64]| {
            if v.is_empty() {
                Value::Null
            } else {
                json!(v.iter().sum::<f64>() / v.len() as f64)
            }
        };
        Ok(Frame::new(kind::DONE).with_data(json!({
            "n_prompt": job.n_prompt,
            "n_gen": job.n_gen,
            "threads": self.params.threads,
            "batch": self.params.batch,
            "pp_tokens_per_sec": mean(&pp),
            "tg_tokens_per_sec": mean(&tg),
        })))
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

fn cancelled() -> Failure {
    Failure::new("cancelled", "generation cancelled")
}

fn send_text(out: &Out, text: String) -> Result<(), Failure> {
    if text.is_empty() {
        return Ok(());
    }
    out.send(Frame::new("token").with_data(json!({ "text": text })))
        .map_err(|_| Failure::new("cancelled", "the output closed"))
}

/// The chat template to use and where it came from (`config`, `model`).
fn chat_template(
    model: &LlamaModel,
    params: &ModelParams,
) -> Result<(Option<LlamaChatTemplate>, Option<&'static str>), Failure> {
    let (template, source) = match params.chat_template.as_deref().filter(|t| !t.is_empty()) {
        Some(named) => {
            let template = LlamaChatTemplate::new(named).map_err(|e| {
                Failure::new(
                    "load_failed",
                    format!("engines.llm.chat_template is not a valid template: {e}"),
                )
            })?;
            (template, "config")
        }
        None => match model.chat_template(None) {
            Ok(template) => (template, "model"),
            Err(ChatTemplateError::MissingTemplate) => return Ok((None, None)),
            Err(e) => {
                return Err(Failure::new(
                    "load_failed",
                    format!(
                        "cannot read the chat template of {}: {e}",
                        params.path.display()
                    ),
                ))
            }
        },
    };
    // llama.cpp renders only the template families it knows: check now,
    // so that a template it cannot use is reported at load, not per request.
    let probe = [LlamaChatMessage::new("user".into(), "hi".into())
        .map_err(|e| Failure::new("load_failed", e.to_string()))?];
    if let Err(e) = model.apply_chat_template(&template, &probe, true) {
        return Err(Failure::new(
            "load_failed",
            format!(
                "the chat template of {} (from the {source}) is not one llama.cpp can render ({e}); name a known one in engines.llm.chat_template, e.g. \"chatml\"",
                params.path.display()
            ),
        ));
    }
    Ok((Some(template), Some(source)))
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
