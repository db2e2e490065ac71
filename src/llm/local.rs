//! [`LocalLlm`]: the [`Llm`] backed by llama.cpp in the `voxd-llm` worker,
//! reached through the engine host (engine `llm`). It finds the model (the
//! `engines.llm.model` file, else the model store's `llm` role), sends it
//! with every request (the worker loads it on first use, and again after a
//! restart) together with the folder where its KV cache outlives it
//! (`engines.llm.persist_cache`), caps replies at `engines.llm.max_tokens`,
//! and keeps the model info and the last reply's figures for `status`. The
//! worker's frames are documented in `workers/voxd-llm/src/main.rs`.

use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use voxd_proto::llm::{GenerateJob, LoadJob, ModelParams, Token};
use voxd_proto::Frame;

use super::{GenerateRequest, GenerateStats, Llm, LlmError, LlmStatus, ModelInfo};
use crate::config::{Config, LlmEngineConfig, ModelsConfig};
use crate::engine::{EngineError, Host};
use crate::models::{self, xdg_dir, Manifest, Role, Store};

/// The engine name of the worker in the engine host.
const ENGINE: &str = "llm";

/// llama.cpp in the `voxd-llm` worker.
pub struct LocalLlm {
    engines: Host,
    cfg: LlmEngineConfig,
    models: ModelsConfig,
    choice: tokio::sync::Mutex<Choice>,
    status: Mutex<LlmStatus>,
}

/// Which model requests run on.
#[derive(Default)]
struct Choice {
    /// A GGUF named by `reload`, over the configured one.
    chosen: Option<PathBuf>,
    /// The `model` object sent to the worker, once resolved.
    params: Option<ModelParams>,
}

fn store(config: &ModelsConfig) -> Result<(Manifest, Store), LlmError> {
    let manifest = Manifest::load(config).map_err(|e| LlmError::Model(e.to_string()))?;
    let store = Store::from_config(config).map_err(|e| LlmError::Model(e.to_string()))?;
    Ok((manifest, store))
}

/// The name clients know the language model by (the HTTP API's raw
/// model): the stem of `engines.llm.model`, else the id of the model
/// store's installed `llm` model; `None` when there is none. Blocking: it
/// reads the model store.
pub fn model_id(config: &Config) -> Option<String> {
    let file = &config.engines.llm.model;
    if !file.as_os_str().is_empty() {
        return file.file_stem().map(|s| s.to_string_lossy().into_owned());
    }
    let (manifest, store) = store(&config.models).ok()?;
    models::resolve(Role::Llm, &config.models, &manifest, &store)
}

impl LocalLlm {
    pub fn new(engines: Host, config: &Config) -> LocalLlm {
        LocalLlm {
            engines,
            cfg: config.engines.llm.clone(),
            models: config.models.clone(),
            choice: tokio::sync::Mutex::new(Choice::default()),
            status: Mutex::new(LlmStatus::default()),
        }
    }

    /// The worker's `model` object, resolving the model file if needed.
    async fn params(&self, choice: &mut Choice) -> Result<ModelParams, LlmError> {
        if let Some(params) = &choice.params {
            return Ok(params.clone());
        }
        let path = match &choice.chosen {
            Some(path) => path.clone(),
            None if !self.cfg.model.as_os_str().is_empty() => self.cfg.model.clone(),
            None => self.installed_model().await?,
        };
        let template = Some(self.cfg.chat_template.clone()).filter(|t| !t.is_empty());
        let cache_dir = self
            .cfg
            .persist_cache
            .then(|| xdg_dir("XDG_CACHE_HOME", ".cache"))
            .flatten()
            .map(|cache| cache.join("voxd/llm"));
        let params = ModelParams {
            path,
            threads: self.cfg.threads,
            context: self.cfg.context,
            batch: self.cfg.batch,
            gpu_layers: self.cfg.gpu_layers,
            chat_template: template,
            cache_dir,
        };
        choice.params = Some(params.clone());
        Ok(params)
    }

    /// The GGUF of the first installed model of the `llm` role.
    async fn installed_model(&self) -> Result<PathBuf, LlmError> {
        let config = self.models.clone();
        tokio::task::spawn_blocking(move || {
            let (manifest, store) = store(&config)?;
            let id =
                models::resolve(Role::Llm, &config, &manifest, &store).ok_or(LlmError::NoModel)?;
            let spec = manifest
                .get(&id)
                .map_err(|e| LlmError::Model(e.to_string()))?;
            let file = spec
                .files
                .iter()
                .find(|f| f.name.ends_with(".gguf"))
                .ok_or_else(|| LlmError::Model(format!("model {id} has no .gguf file")))?;
            Ok(store.model_dir(&id).join(&file.name))
        })
        .await
        .map_err(|e| LlmError::Model(format!("model lookup failed: {e}")))?
    }

    /// Loads the model in the worker (if not yet) and records its info.
    async fn load(&self, params: &ModelParams) -> Result<ModelInfo, LlmError> {
        let job = LoadJob {
            model: params.clone(),
        };
        let frame = request_frame(LoadJob::KIND, &job)?;
        let mut reply = self.engines.request(ENGINE, frame).await?;
        while let Some(frame) = reply.next().await {
            frame.map_err(|e| self.worker_error(e, params))?;
        }
        let done = reply
            .done()
            .ok_or_else(|| LlmError::Model("the worker ended `load` without `done`".into()))?;
        let info: ModelInfo = serde_json::from_value(done.data.clone())
            .map_err(|e| LlmError::Model(format!("invalid model info from the worker: {e}")))?;
        self.lock_status().model = Some(info.clone());
        Ok(info)
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, LlmStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn worker_error(&self, e: EngineError, params: &ModelParams) -> LlmError {
        let EngineError::Worker { code, text, .. } = e else {
            return LlmError::Engine(e);
        };
        match code.as_str() {
            "no_chat_template" => {
                let path = params.path.display().to_string();
                let model = match &self.lock_status().model {
                    Some(info) => format!("{} ({path})", info.name),
                    None => path,
                };
                LlmError::NoChatTemplate { model }
            }
            "load_failed" => {
                self.lock_status().model = None;
                LlmError::Load(text)
            }
            "cancelled" => LlmError::Cancelled,
            _ => LlmError::Model(text),
        }
    }
}

#[async_trait]
impl Llm for LocalLlm {
    async fn info(&self) -> Result<ModelInfo, LlmError> {
        let params = self.params(&mut *self.choice.lock().await).await?;
        self.load(&params).await
    }

    async fn reload(&self, model: Option<PathBuf>) -> Result<ModelInfo, LlmError> {
        // Held throughout: requests wait for the new model.
        let mut choice = self.choice.lock().await;
        let previous = (choice.chosen.clone(), choice.params.take());
        if model.is_some() {
            choice.chosen = model;
        }
        self.lock_status().model = None;
        self.engines.stop(ENGINE).await?;
        let loaded = match self.params(&mut choice).await {
            Ok(params) => self.load(&params).await,
            Err(e) => Err(e),
        };
        let Err(e) = loaded else { return loaded };
        // A model that does not load leaves the one before it in place.
        if let (chosen, Some(params)) = previous {
            tracing::warn!(error = %e, model = %params.path.display(), "reload failed; the previous model stays");
            choice.chosen = chosen;
            choice.params = Some(params.clone());
            if let Err(again) = self.load(&params).await {
                tracing::warn!(error = %again, "the previous model did not load again either");
            }
        }
        Err(e)
    }

    fn status(&self) -> LlmStatus {
        self.lock_status().clone()
    }

    /// Loads the model unless its worker is already up, but only where the
    /// memory budget holds every engine at once: a model warmed beside a
    /// budget that cannot also hold Whisper would be stopped again to
    /// transcribe the very question it was warmed for.
    async fn warm(&self) -> Result<(), LlmError> {
        if self.engines.is_resident(ENGINE) || !self.engines.all_fit() {
            return Ok(());
        }
        self.info().await.map(|_| ())
    }

    async fn generate(
        &self,
        request: GenerateRequest,
        tokens: mpsc::Sender<String>,
    ) -> Result<GenerateStats, LlmError> {
        let params = {
            let mut choice = self.choice.lock().await;
            self.params(&mut choice).await?
        };
        if self.lock_status().model.is_none() {
            self.load(&params).await?;
        }
        let job = GenerateJob {
            model: params.clone(),
            prompt: request.prompt,
            max_tokens: request.max_tokens.min(self.cfg.max_tokens),
            temperature: request.temperature,
            top_p: request.top_p,
            stop: request.stop,
            seed: request.seed,
            session: request.session,
        };
        let frame = request_frame(GenerateJob::KIND, &job)?;
        // Dropping `reply` (an early return, or this future being dropped)
        // sends `cancel` to the worker.
        let mut reply = self.engines.request(ENGINE, frame).await?;
        while let Some(frame) = reply.next().await {
            let frame = frame.map_err(|e| self.worker_error(e, &params))?;
            if frame.kind == Token::KIND {
                let text = Token::deserialize(&frame.data)
                    .map(|token| token.text)
                    .unwrap_or_default();
                if tokens.send(text).await.is_err() {
                    return Err(LlmError::Cancelled);
                }
            }
        }
        let done = reply
            .done()
            .ok_or_else(|| LlmError::Model("the worker ended `generate` without `done`".into()))?;
        let stats: GenerateStats = serde_json::from_value(done.data.clone())
            .map_err(|e| LlmError::Model(format!("invalid figures from the worker: {e}")))?;
        self.lock_status().last_reply = Some(stats.clone());
        Ok(stats)
    }
}

/// A request frame of type `kind` for the worker carrying `job`.
fn request_frame(kind: &str, job: &impl Serialize) -> Result<Frame, LlmError> {
    let data = serde_json::to_value(job)
        .map_err(|e| LlmError::Model(format!("cannot encode the `{kind}` request: {e}")))?;
    Ok(Frame::new(kind).with_data(data))
}
