//! The engine host: supervises the engine worker processes (`voxd-stt`,
//! `voxd-llm`, ...) that run the heavy native engines outside the daemon.
//!
//! It owns the worker child processes and may touch only them: it spawns
//! them, talks to them over stdio with the framed protocol of `voxd-proto`,
//! reads their RSS, and stops or kills them. It reads [`EnginesConfig`] and
//! publishes `engine.state` events (`{engine, state, pid, error?}`) on the
//! daemon's [`Events`] bus on every state change.
//!
//! # Life of an engine
//!
//! `stopped` → `starting` (spawned, waiting for its `info` frame) → `ready`
//! ⇄ `busy` (one request at a time; others queue in order) → `stopped`
//! (on [`Host::stop`], after `idle_unload_secs` without requests, to make
//! room in the memory budget, or on [`Host::shutdown`]).
//!
//! - **Spawn on demand**: [`Host::request`] starts a stopped engine.
//! - **Health**: a running worker is pinged every `health_interval_secs`
//!   (0 = never), also while busy — workers must answer `ping` at any time.
//!   No `pong` within `health_timeout_secs` → the worker is killed; a request
//!   in flight gets [`EngineError::Unresponsive`].
//! - **Crashes**: a request in flight gets [`EngineError::WorkerCrashed`]
//!   (exit status and stderr tail). The engine goes to `backoff`. A crashed
//!   worker is **not** restarted eagerly: the next request (or
//!   [`Host::start`]) restarts it, waiting out the rest of its backoff first.
//!   The backoff doubles from `restart_backoff_initial_ms` up to
//!   `restart_backoff_max_ms`, and starts afresh after a successful request
//!   or once a worker has lived longer than the maximum backoff. Restarts
//!   are counted in [`EngineStatus::restarts`].
//! - **Failed starts**: a worker that dies (or answers `error`) before its
//!   `info` fails the request with [`EngineError::StartFailed`]; after five
//!   failed starts in a row the engine is `failed` and refuses requests
//!   ([`EngineError::Failed`]) until [`Host::start`] is called explicitly.
//! - **Memory budget** (`memory_budget_mb`, 0 = none): the daemon's own RSS
//!   plus every resident worker must fit. A worker counts as the larger of
//!   its RSS now and its engine's need: the largest peak RSS measured of its
//!   workers on what they run (the `model` a request names), else the
//!   configured `memory_mb`, an estimate. So engines whose real sizes fit
//!   stay resident together, where the estimates alone would take turns.
//!   Measured sizes are remembered per model across restarts (`sizes.rs`),
//!   so the first question after a start is budgeted as well as the next.
//!   Before an engine starts, idle resident engines are stopped, least
//!   recently used first; busy ones are waited for (their queued requests
//!   first), then stopped. An engine that cannot fit even alone fails with
//!   [`EngineError::TooBigForBudget`]. [`Host::all_fit`] tells a caller
//!   whether starting an engine early (warming it) can never cost another
//!   its place.
//! - **Shutdown**: [`Host::shutdown`] sends `stop` to every worker, closes
//!   its stdin, waits two seconds, then kills it, and reaps it. Children are
//!   also spawned with `kill_on_drop` and in their own process group.

mod budget;
mod events;
mod reply;
mod rss;
mod sizes;
mod supervisor;
mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;
use voxd_proto::{kind, Frame, ProtoError};

use crate::config::EnginesConfig;
use crate::error::{ErrorKind, Kind};
use crate::events::Events;
pub use events::EngineEvent;
pub use reply::ReplyStream;
pub(crate) use rss::release_free_heap;
use rss::{mib_ceil, RssProbe};
use supervisor::{Readiness, Settings, Supervisor};
use worker::{EndReason, Worker};

/// Frame types the host itself uses with workers; not valid as requests.
const RESERVED_KINDS: [&str; 4] = [kind::PING, kind::DESCRIBE, kind::CANCEL, kind::STOP];

/// Where an engine is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineState {
    /// No worker process.
    Stopped,
    /// Spawned, waiting for its `info` frame.
    Starting,
    /// Running and idle.
    Ready,
    /// Running a request.
    Busy,
    /// Crashed; restarted on demand once the backoff has passed.
    Backoff,
    /// Failed to start too often; restarted only by [`Host::start`].
    Failed,
}

/// One engine in [`Host::status`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineStatus {
    /// Engine name, as in the config (`stt`, `llm`).
    pub name: String,
    /// Where it is in its life.
    pub state: EngineState,
    /// Pid of the worker process, while there is one.
    pub pid: Option<u32>,
    /// Measured resident memory of the worker, when readable.
    pub rss_bytes: Option<u64>,
    /// Configured memory need: what the budget counts until `measured_mb`.
    pub memory_mb: u64,
    /// The largest peak RSS measured of this engine's workers after a
    /// request on the model they run now (in this run or an earlier one),
    /// in MiB: what the budget counts once known (Linux).
    pub measured_mb: Option<u64>,
    /// Restarts after crashes since the daemon started.
    pub restarts: u32,
    /// The last crash or start failure, with the worker's stderr tail.
    pub last_error: Option<String>,
    /// Requests waiting for their turn.
    pub queued: usize,
    /// Seconds since the last request ended, while `ready`.
    pub idle_secs: Option<u64>,
}

/// The memory budget as [`Host::budget`] reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetStatus {
    /// The budget in MiB; 0 means none.
    pub budget_mb: u64,
    /// The daemon's own measured RSS in MiB.
    pub daemon_mb: u64,
    /// The daemon plus every resident engine, as the budget counts them.
    pub used_mb: u64,
    /// Engines with a worker process now.
    pub resident: Vec<String>,
}

/// Why an engine could not serve.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no engine named `{engine}`")]
    UnknownEngine { engine: String },
    #[error("engine `{engine}`: worker binary {binary} not found beside {} or on PATH; set engines.{engine}.command", exe.display())]
    WorkerNotFound {
        engine: String,
        binary: String,
        exe: PathBuf,
    },
    #[error("engine `{engine}`: cannot run {}: {source}", command.display())]
    Spawn {
        engine: String,
        command: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("engine `{engine}` {reason}")]
    StartFailed { engine: String, reason: String },
    #[error("engine `{engine}` failed to start {} times in a row and stays down until started explicitly; last error: {last_error}", supervisor::MAX_START_FAILURES)]
    Failed { engine: String, last_error: String },
    #[error(
        "engine `{engine}` crashed during the request ({status}){}",
        stderr_suffix(stderr)
    )]
    WorkerCrashed {
        engine: String,
        status: String,
        stderr: String,
    },
    #[error(
        "engine `{engine}` did not answer a health check within {timeout_secs} s and was killed"
    )]
    Unresponsive { engine: String, timeout_secs: u64 },
    #[error("engine `{engine}` was killed: {reason}")]
    Faulty { engine: String, reason: String },
    #[error("engine `{engine}` was stopped during the request")]
    Stopped { engine: String },
    #[error("the engine host is shutting down")]
    ShuttingDown,
    #[error("engine `{engine}` answered with error `{code}`: {text}")]
    Worker {
        engine: String,
        code: String,
        text: String,
    },
    #[error("engine `{engine}`: invalid request: {source}")]
    InvalidRequest {
        engine: String,
        #[source]
        source: ProtoError,
    },
    #[error("`{kind}` is reserved for the engine host and cannot be sent as a request")]
    ReservedKind { kind: String },
    #[error("engine `{engine}` needs {memory_mb} MiB but the memory budget is {budget_mb} MiB ({daemon_mb} MiB of it used by the daemon itself); raise engines.memory_budget_mb or lower engines.{engine}.memory_mb")]
    TooBigForBudget {
        engine: String,
        memory_mb: u64,
        budget_mb: u64,
        daemon_mb: u64,
    },
}

impl Kind for EngineError {
    fn kind(&self) -> ErrorKind {
        match self {
            EngineError::UnknownEngine { .. } => ErrorKind::InvalidParams,
            EngineError::ShuttingDown => ErrorKind::ShuttingDown,
            _ => ErrorKind::EngineFailed,
        }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; stderr: {stderr}")
    }
}

/// Supervises the engine workers; cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

struct Inner {
    engines: Vec<Arc<Supervisor>>,
    settings: Arc<Settings>,
    /// Held while deciding whether an engine fits and spawning it.
    admission: tokio::sync::Mutex<()>,
    rss: RssProbe,
    shutting_down: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Safety net for a host dropped without `shutdown`.
        for engine in &self.engines {
            if let Some(worker) = engine.worker() {
                worker.kill(EndReason::Stopped);
            }
        }
    }
}

impl Host {
    /// A host for the engines in `cfg`; no worker starts until needed.
    /// Engine sizes measured are remembered in the file `sizes` (else for
    /// the host's life only); see [`Host::sizes_file`].
    pub fn new(cfg: &EnginesConfig, events: Events, sizes: Option<PathBuf>) -> Host {
        let settings = Arc::new(Settings::from_config(cfg));
        let sizes = Arc::new(sizes::SizeBook::open(sizes));
        let engines = cfg
            .workers()
            .into_iter()
            .map(|(name, worker)| {
                Arc::new(Supervisor::new(
                    name,
                    worker,
                    settings.clone(),
                    events.clone(),
                    sizes.clone(),
                ))
            })
            .collect();
        Host {
            inner: Arc::new(Inner {
                engines,
                settings,
                admission: tokio::sync::Mutex::new(()),
                rss: RssProbe::new(),
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    /// Where the daemon remembers engine sizes:
    /// `$XDG_CACHE_HOME/voxd/engine-sizes.json`.
    pub fn sizes_file() -> Option<PathBuf> {
        crate::models::xdg_dir("XDG_CACHE_HOME", ".cache").map(|c| c.join("voxd/engine-sizes.json"))
    }

    fn engine(&self, name: &str) -> Result<Arc<Supervisor>, EngineError> {
        self.inner
            .engines
            .iter()
            .find(|e| e.name == name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownEngine {
                engine: name.to_owned(),
            })
    }

    fn check_running(&self) -> Result<(), EngineError> {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        Ok(())
    }

    /// Starts engine `name` now if it is not running, and waits until it is
    /// ready. Also clears a `failed` or `backoff` state.
    pub async fn start(&self, name: &str) -> Result<(), EngineError> {
        let sup = self.engine(name)?;
        self.check_running()?;
        let _turn = sup.turn.clone().lock_owned().await;
        sup.reset_failures();
        self.ensure_ready(&sup).await.map(|_| ())
    }

    /// Stops engine `name` after its request in flight (if any) and clears
    /// a `failed` or `backoff` state.
    pub async fn stop(&self, name: &str) -> Result<(), EngineError> {
        let sup = self.engine(name)?;
        let _turn = sup.turn.clone().lock_owned().await;
        sup.stop_worker().await;
        sup.reset_failures();
        release_free_heap();
        Ok(())
    }

    /// Sends `request` to engine `name`, starting it if needed, after the
    /// requests queued before it. The reply ends with the stream.
    pub async fn request(&self, name: &str, request: Frame) -> Result<ReplyStream, EngineError> {
        if RESERVED_KINDS.contains(&request.kind.as_str()) || request.is_terminal() {
            return Err(EngineError::ReservedKind { kind: request.kind });
        }
        let sup = self.engine(name)?;
        self.check_running()?;
        let turn = {
            let _queued = sup.enqueue();
            sup.turn.clone().lock_owned().await
        };
        self.check_running()?;
        sup.set_workload(request.data.get("model"));
        let worker = self.ensure_ready(&sup).await?;
        let Some(mut inbox) = worker.take_inbox() else {
            return Err(reply::ended_error(name, &worker).await);
        };
        while let Ok(stale) = inbox.try_recv() {
            tracing::debug!(engine = name, kind = %stale.kind, "stale frame discarded");
        }
        sup.begin_request(&worker);
        match worker.send(&request).await {
            Ok(()) => {}
            Err(ProtoError::Io(e)) => {
                tracing::debug!(engine = name, error = %e, "request could not be written");
                return Err(reply::ended_error(name, &worker).await);
            }
            Err(source) => {
                worker.return_inbox(inbox);
                sup.end_request(&worker, true);
                return Err(EngineError::InvalidRequest {
                    engine: name.to_owned(),
                    source,
                });
            }
        }
        let cancel_timeout = self.inner.settings.health_timeout;
        Ok(ReplyStream::new(sup, worker, inbox, turn, cancel_timeout))
    }

    /// Makes `sup` ready to serve (the caller holds its turn).
    async fn ensure_ready(&self, sup: &Arc<Supervisor>) -> Result<Arc<Worker>, EngineError> {
        loop {
            match sup.readiness() {
                Readiness::Ready(worker) => return Ok(worker),
                Readiness::Failed(last_error) => {
                    return Err(EngineError::Failed {
                        engine: sup.name.clone(),
                        last_error,
                    })
                }
                Readiness::Wait(until) => {
                    tracing::debug!(engine = %sup.name, "waiting out the restart backoff");
                    tokio::time::sleep_until(until.into()).await;
                    self.check_running()?;
                }
                Readiness::Spawn => {
                    let worker = self.admit_and_spawn(sup).await?;
                    return match sup.await_ready(&worker).await {
                        Ok(()) => Ok(worker),
                        Err(_) if self.inner.shutting_down.load(Ordering::SeqCst) => {
                            Err(EngineError::ShuttingDown)
                        }
                        Err(e) => Err(e),
                    };
                }
            }
        }
    }

    /// Spawns `sup`'s worker once it fits in the memory budget, stopping
    /// other engines as needed.
    async fn admit_and_spawn(&self, sup: &Arc<Supervisor>) -> Result<Arc<Worker>, EngineError> {
        let inner = &self.inner;
        'admission: loop {
            let admission = inner.admission.lock().await;
            self.check_running()?;
            let daemon_mb = mib_ceil(inner.rss.own_rss_bytes());
            let residents = self.residents(Some(sup));
            let need = sup.need_mb();
            match budget::plan(inner.settings.budget_mb, daemon_mb, need, &residents) {
                budget::Plan::Fits => {
                    let worker = sup.spawn()?;
                    drop(admission);
                    return Ok(worker);
                }
                budget::Plan::TooBig => {
                    return Err(EngineError::TooBigForBudget {
                        engine: sup.name.clone(),
                        memory_mb: need,
                        budget_mb: inner.settings.budget_mb,
                        daemon_mb,
                    })
                }
                budget::Plan::Evict(lru) => {
                    for &index in &lru {
                        let victim = &inner.engines[index];
                        if let Ok(_turn) = victim.turn.clone().try_lock_owned() {
                            tracing::info!(engine = %victim.name, for_engine = %sup.name, "stopping idle engine to fit the memory budget");
                            victim.stop_worker().await;
                            continue 'admission;
                        }
                    }
                    drop(admission);
                    if let Some(victim) = lru.first().map(|&i| &inner.engines[i]) {
                        tracing::info!(engine = %victim.name, for_engine = %sup.name, "waiting for busy engine to make room in the memory budget");
                        let _turn = victim.turn.clone().lock_owned().await;
                        victim.stop_worker().await;
                    }
                }
            }
        }
    }

    /// Resident engines other than `except`, as the budget counts them.
    fn residents(&self, except: Option<&Arc<Supervisor>>) -> Vec<budget::Resident> {
        let inner = &self.inner;
        inner
            .engines
            .iter()
            .enumerate()
            .filter(|(_, e)| except.is_none_or(|x| !Arc::ptr_eq(x, e)))
            .filter_map(|(index, e)| {
                let (pid, last_used) = e.resident()?;
                let rss_mb = inner.rss.rss_bytes(pid).map(mib_ceil).unwrap_or(0);
                Some(budget::Resident {
                    index,
                    used_mb: e.need_mb().max(rss_mb),
                    last_used,
                })
            })
            .collect()
    }

    /// Whether every engine could be resident at once within the memory
    /// budget, beside the daemon: each counts as its need (the configured
    /// `memory_mb` until measured), or its RSS now where larger. Starting an
    /// engine early (warming it) is safe only then: it will never have to
    /// be stopped to make room for another. Always true without a budget.
    pub fn all_fit(&self) -> bool {
        let inner = &self.inner;
        if inner.settings.budget_mb == 0 {
            return true;
        }
        let residents = self.residents(None);
        let engines: u64 = inner
            .engines
            .iter()
            .enumerate()
            .map(|(index, e)| {
                residents
                    .iter()
                    .find(|r| r.index == index)
                    .map_or(e.need_mb(), |r| r.used_mb)
            })
            .sum();
        mib_ceil(inner.rss.own_rss_bytes()) + engines <= inner.settings.budget_mb
    }

    /// Whether engine `name` has a worker process now.
    pub fn is_resident(&self, name: &str) -> bool {
        self.engine(name).is_ok_and(|sup| sup.resident().is_some())
    }

    /// Every engine's state, pid, RSS, restarts, last error and queue.
    pub fn status(&self) -> Vec<EngineStatus> {
        let inner = &self.inner;
        inner.engines.iter().map(|e| e.status(&inner.rss)).collect()
    }

    /// The daemon's own resident memory, in bytes (0 if unknown).
    pub fn daemon_rss_bytes(&self) -> u64 {
        self.inner.rss.own_rss_bytes()
    }

    /// The memory budget and what counts against it now.
    pub fn budget(&self) -> BudgetStatus {
        let inner = &self.inner;
        let daemon_mb = mib_ceil(inner.rss.own_rss_bytes());
        let residents = self.residents(None);
        BudgetStatus {
            budget_mb: inner.settings.budget_mb,
            daemon_mb,
            used_mb: daemon_mb + residents.iter().map(|r| r.used_mb).sum::<u64>(),
            resident: residents
                .iter()
                .map(|r| inner.engines[r.index].name.clone())
                .collect(),
        }
    }

    /// Stops every worker (`stop`, stdin closed, a grace period, then kill)
    /// and refuses further requests. Requests in flight end with
    /// [`EngineError::Stopped`]. Returns once every worker has been reaped.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.shutting_down.store(true, Ordering::SeqCst);
        // Let a spawn in progress register its worker, so it is stopped too.
        drop(inner.admission.lock().await);
        let stops = inner.engines.iter().map(|e| e.stop_worker());
        futures::future::join_all(stops).await;
        tracing::info!("engine host shut down");
    }
}
