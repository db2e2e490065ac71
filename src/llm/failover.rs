//! [`Failover`]: an [`Llm`] over an ordered list of backends
//! (`engines.llm.backend`, then `engines.llm.fallback`). Each request goes
//! to the first backend that is not resting after a failure. A backend
//! that cannot be reached, errors, or sends no first token in time is
//! rested (`engines.llm.retry_secs`, doubling with each failure in a row
//! up to `MAX_REST`) and the request moves on to the next, as long as no
//! text of it has reached the caller: text already streamed cannot be
//! taken back, so a failure mid-answer is the request's error (which `ask`
//! in `auto` mode answers extractively) and the next request goes on to
//! the next backend. Failures that are the request's own (a prompt too
//! long, a cancelled request) rest nothing and go straight back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::mpsc;

use super::{GenerateRequest, GenerateStats, Llm, LlmError, LlmStatus, ModelInfo, PIECES};

/// The longest a failed backend rests.
const MAX_REST: Duration = Duration::from_secs(600);

/// One backend, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendStatus {
    /// `local`, `openai` or `ollama`.
    pub name: String,
    /// A remote backend's base URL.
    pub url: Option<String>,
    /// `up` (its last request worked), `down` (resting after a failure)
    /// or `unknown` (not tried yet).
    pub state: &'static str,
    /// While down: seconds until it is tried again.
    pub retry_in_secs: Option<u64>,
    /// Time to the first token of its last answer.
    pub first_token_ms: Option<f64>,
    pub last_error: Option<String>,
    pub requests: u64,
    pub failures: u64,
    /// Requests that went on to a later backend after this one failed.
    pub fallbacks: u64,
}

/// A backend in the list.
pub struct Backend {
    name: String,
    url: Option<String>,
    llm: Arc<dyn Llm>,
    health: Mutex<Health>,
}

impl Backend {
    pub fn new(name: &str, url: Option<String>, llm: Arc<dyn Llm>) -> Backend {
        Backend {
            name: name.to_string(),
            url,
            llm,
            health: Mutex::new(Health::default()),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct Health {
    /// Failures in a row.
    streak: u32,
    resting_until: Option<Instant>,
    last_error: Option<String>,
    first_token_ms: Option<f64>,
    answered: bool,
    requests: u64,
    failures: u64,
    fallbacks: u64,
}

/// The language model on the first backend that works.
pub struct Failover {
    backends: Vec<Backend>,
    retry: Duration,
    /// The backend that answered last (for `status`).
    last: Mutex<Option<usize>>,
}

/// Whether `e` says the backend is unusable now (rest it, try the next),
/// as opposed to a failure of the request itself.
fn is_outage(e: &LlmError) -> bool {
    matches!(
        e,
        LlmError::Unreachable { .. }
            | LlmError::Remote(_)
            | LlmError::Engine(_)
            | LlmError::Load(_)
            | LlmError::NoModel
    )
}

impl Failover {
    /// `backends` in the order they are tried; `retry` is the first rest.
    pub fn new(backends: Vec<Backend>, retry: Duration) -> Failover {
        Failover {
            backends,
            retry: retry.max(Duration::from_secs(1)),
            last: Mutex::new(None),
        }
    }

    /// The indices of the backends not resting now, in order.
    fn ready(&self) -> Vec<usize> {
        let now = Instant::now();
        (0..self.backends.len())
            .filter(|&i| {
                self.backends[i]
                    .health()
                    .resting_until
                    .is_none_or(|until| until <= now)
            })
            .collect()
    }

    fn failed(&self, i: usize, e: &LlmError) {
        let backend = &self.backends[i];
        let mut h = backend.health();
        h.failures += 1;
        h.last_error = Some(e.to_string());
        if !is_outage(e) {
            return;
        }
        h.streak += 1;
        let rest = self
            .retry
            .saturating_mul(1 << (h.streak - 1).min(16))
            .min(MAX_REST);
        h.resting_until = Some(Instant::now() + rest);
        tracing::warn!(backend = %backend.name, error = %e, rest_secs = rest.as_secs(), "the language model backend failed; using the next one meanwhile");
    }

    fn worked(&self, i: usize, first_token_ms: Option<f64>) {
        let backend = &self.backends[i];
        let mut h = backend.health();
        if h.streak > 0 {
            tracing::info!(backend = %backend.name, "the language model backend is back");
        }
        h.streak = 0;
        h.resting_until = None;
        h.answered = true;
        if first_token_ms.is_some() {
            h.first_token_ms = first_token_ms;
        }
    }

    /// Every backend is resting: the error says when each is tried again.
    fn all_down(&self) -> LlmError {
        let why: Vec<String> = self
            .backends
            .iter()
            .map(|b| {
                let h = b.health();
                format!(
                    "{} ({})",
                    b.name,
                    h.last_error.as_deref().unwrap_or("not tried")
                )
            })
            .collect();
        LlmError::Unavailable(why.join("; "))
    }

    /// Runs `request` on backend `i`, relaying its text to `tokens`.
    /// Returns the result and whether any text reached the caller.
    async fn relay(
        &self,
        i: usize,
        request: GenerateRequest,
        tokens: &mpsc::Sender<String>,
    ) -> (Result<GenerateStats, LlmError>, bool) {
        let (tx, mut rx) = mpsc::channel::<String>(PIECES);
        let generation = self.backends[i].llm.generate(request, tx);
        tokio::pin!(generation);
        let mut sent = false;
        loop {
            tokio::select! {
                biased;
                Some(piece) = rx.recv() => {
                    sent = true;
                    if tokens.send(piece).await.is_err() {
                        return (Err(LlmError::Cancelled), sent);
                    }
                }
                result = &mut generation => {
                    while let Ok(piece) = rx.try_recv() {
                        sent = true;
                        if tokens.send(piece).await.is_err() {
                            return (Err(LlmError::Cancelled), sent);
                        }
                    }
                    return (result, sent);
                }
            }
        }
    }
}

#[async_trait]
impl Llm for Failover {
    async fn info(&self) -> Result<ModelInfo, LlmError> {
        for i in self.ready() {
            match self.backends[i].llm.info().await {
                Ok(info) => return Ok(info),
                Err(e) if is_outage(&e) => self.failed(i, &e),
                Err(e) => return Err(e),
            }
        }
        Err(self.all_down())
    }

    async fn reload(&self, model: Option<std::path::PathBuf>) -> Result<ModelInfo, LlmError> {
        let mut first = None;
        for (i, backend) in self.backends.iter().enumerate() {
            let result = backend.llm.reload(model.clone()).await;
            match &result {
                Ok(_) => self.worked(i, None),
                Err(e) => self.failed(i, e),
            }
            first.get_or_insert(result);
        }
        first.unwrap_or_else(|| Err(self.all_down()))
    }

    fn status(&self) -> LlmStatus {
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        let shown = last.or_else(|| self.ready().first().copied()).unwrap_or(0);
        let mut status = self
            .backends
            .get(shown)
            .map(|b| b.llm.status())
            .unwrap_or_default();
        let now = Instant::now();
        status.backends = self
            .backends
            .iter()
            .map(|b| {
                let h = b.health();
                let resting = h.resting_until.filter(|&until| until > now);
                BackendStatus {
                    name: b.name.clone(),
                    url: b.url.clone(),
                    state: match (resting, h.answered) {
                        (Some(_), _) => "down",
                        (None, true) => "up",
                        (None, false) => "unknown",
                    },
                    retry_in_secs: resting.map(|until| (until - now).as_secs() + 1),
                    first_token_ms: h.first_token_ms,
                    last_error: h.last_error.clone(),
                    requests: h.requests,
                    failures: h.failures,
                    fallbacks: h.fallbacks,
                }
            })
            .collect();
        status
    }

    async fn warm(&self) -> Result<(), LlmError> {
        match self.ready().first() {
            Some(&i) => self.backends[i].llm.warm().await,
            None => Ok(()),
        }
    }

    async fn generate(
        &self,
        request: GenerateRequest,
        tokens: mpsc::Sender<String>,
    ) -> Result<GenerateStats, LlmError> {
        let mut tried: Vec<usize> = Vec::new();
        let mut last_error = None;
        for i in self.ready() {
            self.backends[i].health().requests += 1;
            let (result, sent) = self.relay(i, request.clone(), &tokens).await;
            match result {
                Ok(stats) => {
                    self.worked(i, Some(stats.first_token_ms));
                    for &j in &tried {
                        self.backends[j].health().fallbacks += 1;
                    }
                    *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(i);
                    return Ok(stats);
                }
                Err(LlmError::Cancelled) => return Err(LlmError::Cancelled),
                Err(e) => {
                    self.failed(i, &e);
                    // A chat prompt to a model without a template: the
                    // next backend may take it.
                    let next = is_outage(&e) || matches!(e, LlmError::NoChatTemplate { .. });
                    if sent || !next {
                        return Err(e);
                    }
                    tried.push(i);
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| self.all_down()))
    }
}
