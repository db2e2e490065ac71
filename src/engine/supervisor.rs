//! One engine's supervision: its state machine, the worker it runs now,
//! start-up, crash handling with backoff, health checks and idle stop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use voxd_proto::kind;

use super::rss::{mib_ceil, RssProbe};
use super::sizes::{Measured, SizeBook, Workload};
use super::worker::{resolve_command, EndReason, Worker};
use super::{EngineError, EngineEvent, EngineState, EngineStatus};
use crate::config::{EnginesConfig, WorkerConfig};
use crate::events::Events;

/// How long a worker may take from spawn to its `info` frame (model loading).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a worker gets to exit after `stop` before it is killed.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long a worker that closed its stdout gets to exit before it is killed.
pub(crate) const EXIT_GRACE: Duration = Duration::from_secs(2);
/// Failed starts in a row after which an engine is `failed`.
pub(crate) const MAX_START_FAILURES: u32 = 5;

/// Timing and budget settings shared by all engines.
#[derive(Debug)]
pub(crate) struct Settings {
    pub budget_mb: u64,
    pub idle: Option<Duration>,
    pub health_interval: Option<Duration>,
    pub health_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Settings {
    pub(crate) fn from_config(cfg: &EnginesConfig) -> Settings {
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        Settings {
            budget_mb: cfg.memory_budget_mb,
            idle: secs(cfg.idle_unload_secs),
            health_interval: secs(cfg.health_interval_secs),
            health_timeout: Duration::from_secs(cfg.health_timeout_secs.max(1)),
            backoff_initial: Duration::from_millis(cfg.restart_backoff_initial_ms),
            backoff_max: Duration::from_millis(
                cfg.restart_backoff_max_ms
                    .max(cfg.restart_backoff_initial_ms),
            ),
        }
    }

    /// The wait before restart number `failures` (1 = first crash in a row).
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.backoff_initial
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max)
    }
}

/// How a worker's start-up ended.
enum StartOutcome {
    Ready(voxd_proto::Frame),
    /// It closed its stdout: it died, or is dying, by itself.
    Died,
    Fault(String),
}

/// What an engine needs before it can serve a request.
pub(crate) enum Readiness {
    Ready(Arc<Worker>),
    /// In backoff until then.
    Wait(Instant),
    Spawn,
    Failed(String),
}

struct Slot {
    state: EngineState,
    worker: Option<Arc<Worker>>,
    /// Counts spawns, so a late exit of an old worker is not mistaken for the current one's.
    generation: u64,
    restarts: u32,
    /// Crashes in a row; drives the backoff.
    failures: u32,
    /// Failed starts in a row; drives `failed`.
    start_failures: u32,
    last_error: Option<String>,
    last_used: Instant,
    retry_at: Option<Instant>,
    /// The next spawn is a restart after a crash.
    crashed: bool,
}

/// One engine: its configuration, its request turn and its current worker.
pub(crate) struct Supervisor {
    pub(crate) name: String,
    pub(crate) cfg: WorkerConfig,
    settings: Arc<Settings>,
    events: Events,
    /// Held by whoever talks to the worker: one request at a time, FIFO.
    pub(crate) turn: Arc<tokio::sync::Mutex<()>>,
    queued: AtomicUsize,
    /// What the workers run now, and the largest peak RSS measured of them
    /// on it; see [`Supervisor::need_mb`].
    current: Mutex<Measured>,
    /// Sizes measured per workload, also in earlier runs.
    sizes: Arc<SizeBook>,
    slot: Mutex<Slot>,
    /// Wakes the health/idle monitor on every state change.
    state_tx: watch::Sender<EngineState>,
}

/// Counts a request waiting for the turn while it lives.
pub(crate) struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Supervisor {
    pub(crate) fn new(
        name: &str,
        cfg: WorkerConfig,
        settings: Arc<Settings>,
        events: Events,
        sizes: Arc<SizeBook>,
    ) -> Supervisor {
        let current = sizes
            .last(name)
            .unwrap_or_else(|| Measured::unmeasured(Workload::of(serde_json::Value::Null)));
        Supervisor {
            name: name.to_owned(),
            cfg,
            settings,
            events,
            turn: Arc::new(tokio::sync::Mutex::new(())),
            queued: AtomicUsize::new(0),
            current: Mutex::new(current),
            sizes,
            state_tx: watch::Sender::new(EngineState::Stopped),
            slot: Mutex::new(Slot {
                state: EngineState::Stopped,
                worker: None,
                generation: 0,
                restarts: 0,
                failures: 0,
                start_failures: 0,
                last_error: None,
                last_used: Instant::now(),
                retry_at: None,
                crashed: false,
            }),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a request as queued until the returned guard is dropped.
    pub(crate) fn enqueue(&self) -> Queued<'_> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        Queued(&self.queued)
    }

    fn set_state(&self, slot: &mut Slot, state: EngineState, error: Option<&str>) {
        if slot.state == state && error.is_none() {
            return;
        }
        slot.state = state;
        self.state_tx.send_replace(state);
        let pid = slot.worker.as_ref().map(|w| w.pid());
        tracing::info!(engine = %self.name, ?state, ?pid, error, "engine state");
        self.events.publish(EngineEvent::State {
            engine: self.name.clone(),
            state,
            pid,
            error: error.map(str::to_string),
        });
    }

    /// What must happen before the engine can serve (caller holds the turn).
    pub(crate) fn readiness(&self) -> Readiness {
        let slot = self.slot();
        match (&slot.worker, slot.state) {
            (Some(w), EngineState::Ready | EngineState::Busy) => Readiness::Ready(w.clone()),
            (_, EngineState::Failed) => {
                Readiness::Failed(slot.last_error.clone().unwrap_or_default())
            }
            (_, EngineState::Backoff) => match slot.retry_at {
                Some(at) if at > Instant::now() => Readiness::Wait(at),
                _ => Readiness::Spawn,
            },
            _ => Readiness::Spawn,
        }
    }

    /// Clears a `failed` or `backoff` state so the engine may start again.
    pub(crate) fn reset_failures(&self) {
        let mut slot = self.slot();
        if matches!(slot.state, EngineState::Failed | EngineState::Backoff) && slot.worker.is_none()
        {
            slot.start_failures = 0;
            slot.retry_at = None;
            self.set_state(&mut slot, EngineState::Stopped, None);
        }
    }

    /// Spawns a worker (caller holds the turn and the budget's admission).
    pub(crate) fn spawn(self: &Arc<Self>) -> Result<Arc<Worker>, EngineError> {
        let program = match resolve_command(&self.name, &self.cfg) {
            Ok(p) => p,
            Err(e) => {
                let mut slot = self.slot();
                slot.last_error = Some(e.to_string());
                let state = slot.state;
                self.set_state(&mut slot, state, Some(&e.to_string()));
                return Err(e);
            }
        };
        let mut slot = self.slot();
        slot.generation += 1;
        let generation = slot.generation;
        let weak: Weak<Supervisor> = Arc::downgrade(self);
        let on_exit = Box::new(move |status: &str| {
            if let Some(sup) = weak.upgrade() {
                sup.on_exit(generation, status);
            }
        });
        let worker = match Worker::spawn(&self.name, &program, &self.cfg.args, on_exit) {
            Ok(w) => Arc::new(w),
            Err(e) => {
                slot.last_error = Some(e.to_string());
                let state = slot.state;
                self.set_state(&mut slot, state, Some(&e.to_string()));
                return Err(e);
            }
        };
        tracing::info!(engine = %self.name, pid = worker.pid(), program = %program.display(), "worker spawned");
        if slot.crashed {
            slot.crashed = false;
            slot.restarts += 1;
        }
        slot.worker = Some(worker.clone());
        self.set_state(&mut slot, EngineState::Starting, None);
        Ok(worker)
    }

    /// Waits for a fresh worker's `info` frame; on failure the worker is
    /// gone and the engine is in `backoff` or `failed` when this returns.
    pub(crate) async fn await_ready(
        self: &Arc<Self>,
        worker: &Arc<Worker>,
    ) -> Result<(), EngineError> {
        let outcome = match worker.take_inbox() {
            None => StartOutcome::Fault("worker inbox unavailable".to_owned()),
            Some(mut inbox) => {
                let wait_info = async {
                    while let Some(frame) = inbox.recv().await {
                        match frame.kind.as_str() {
                            kind::INFO => return StartOutcome::Ready(frame),
                            kind::ERROR => {
                                return StartOutcome::Fault(format!(
                                    "answered `error` before it was ready: {}",
                                    frame.str_field("text").unwrap_or("(no text)")
                                ))
                            }
                            other => {
                                tracing::debug!(engine = %self.name, kind = other, "frame before `info` ignored")
                            }
                        }
                    }
                    StartOutcome::Died
                };
                let outcome = tokio::time::timeout(START_TIMEOUT, wait_info)
                    .await
                    .unwrap_or_else(|_| {
                        StartOutcome::Fault(format!("sent no `info` within {START_TIMEOUT:?}"))
                    });
                if matches!(outcome, StartOutcome::Ready(_)) {
                    worker.return_inbox(inbox);
                }
                outcome
            }
        };
        match outcome {
            StartOutcome::Ready(info) => {
                tracing::debug!(engine = %self.name, info = %info.data, "worker ready");
                let mut slot = self.slot();
                if !slot.worker.as_ref().is_some_and(|w| Arc::ptr_eq(w, worker)) {
                    return Err(self.start_error(&slot));
                }
                slot.start_failures = 0;
                slot.retry_at = None;
                slot.last_used = Instant::now();
                self.set_state(&mut slot, EngineState::Ready, None);
                drop(slot);
                self.spawn_monitor(worker.clone());
                Ok(())
            }
            StartOutcome::Died => {
                worker
                    .wait_exit_or_kill(EXIT_GRACE, "closed its stdout before it was ready")
                    .await;
                Err(self.start_error(&self.slot()))
            }
            StartOutcome::Fault(why) => {
                worker.kill(EndReason::Faulty(why));
                worker.wait_exit().await;
                Err(self.start_error(&self.slot()))
            }
        }
    }

    fn start_error(&self, slot: &Slot) -> EngineError {
        EngineError::StartFailed {
            engine: self.name.clone(),
            reason: slot
                .last_error
                .clone()
                .unwrap_or_else(|| "the worker ended before it was ready".to_owned()),
        }
    }

    /// Handles the end of worker `generation` (runs in its waiter task).
    fn on_exit(&self, generation: u64, status: &str) {
        let mut slot = self.slot();
        if slot.generation != generation {
            return;
        }
        let Some(worker) = slot.worker.clone() else {
            return;
        };
        let reason = worker.end_reason();
        if reason == Some(EndReason::Stopped) {
            tracing::info!(engine = %self.name, pid = worker.pid(), %status, "worker stopped");
            slot.retry_at = None;
            self.set_state(&mut slot, EngineState::Stopped, None);
            slot.worker = None;
            return;
        }
        let mut what = match reason {
            Some(EndReason::Unresponsive { timeout }) => format!(
                "did not answer a ping within {} s and was killed ({status})",
                timeout.as_secs()
            ),
            Some(EndReason::Faulty(why)) => format!("{why}; killed ({status})"),
            Some(EndReason::Stopped) | None => format!("exited unexpectedly ({status})"),
        };
        let tail = worker.stderr_tail();
        if !tail.is_empty() {
            what.push_str("; stderr: ");
            what.push_str(&tail);
        }
        let starting = slot.state == EngineState::Starting;
        if starting {
            slot.start_failures += 1;
            what = format!("failed to start: {what}");
        } else if worker.uptime() >= self.settings.backoff_max {
            // It had been healthy for a while: start the backoff afresh.
            slot.failures = 0;
        }
        slot.failures += 1;
        slot.crashed = true;
        tracing::warn!(engine = %self.name, pid = worker.pid(), error = %what, "worker crashed");
        slot.last_error = Some(what.clone());
        if slot.start_failures >= MAX_START_FAILURES {
            slot.retry_at = None;
            self.set_state(&mut slot, EngineState::Failed, Some(&what));
        } else {
            slot.retry_at = Some(Instant::now() + self.settings.backoff(slot.failures));
            self.set_state(&mut slot, EngineState::Backoff, Some(&what));
        }
        slot.worker = None;
    }

    /// Marks the start of a request on `worker`.
    pub(crate) fn begin_request(&self, worker: &Arc<Worker>) {
        let mut slot = self.slot();
        if slot.worker.as_ref().is_some_and(|w| Arc::ptr_eq(w, worker)) {
            self.set_state(&mut slot, EngineState::Busy, None);
        }
    }

    /// Marks the end of a request on `worker`; `healthy` when it ended with
    /// a terminal frame.
    /// A healthy end also measures the worker's peak RSS (its model loaded
    /// and a request served), which the budget counts from then on.
    pub(crate) fn end_request(&self, worker: &Arc<Worker>, healthy: bool) {
        if healthy {
            if let Some(peak) = super::rss::peak_rss_bytes(worker.pid()).map(mib_ceil) {
                let mut current = self.current();
                if peak > current.mb {
                    current.mb = peak;
                    self.sizes.record(&self.name, &current.workload, peak);
                }
            }
        }
        let mut slot = self.slot();
        if slot.worker.as_ref().is_some_and(|w| Arc::ptr_eq(w, worker)) {
            slot.last_used = Instant::now();
            if healthy {
                slot.failures = 0;
            }
            if slot.state == EngineState::Busy {
                self.set_state(&mut slot, EngineState::Ready, None);
            }
        }
    }

    fn current(&self) -> MutexGuard<'_, Measured> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes what the next request runs (its `data.model`): from a
    /// workload to another, the budget counts the size measured on the new
    /// one, now or in an earlier run, else the estimate.
    pub(crate) fn set_workload(&self, model: Option<&serde_json::Value>) {
        let model = model.cloned().unwrap_or_default();
        let mut current = self.current();
        if current.workload.model != model {
            let workload = Workload::of(model);
            let mb = self.sizes.switch_to(&self.name, &workload);
            *current = Measured { workload, mb };
        }
    }

    /// What the budget counts this engine as, in MiB: the largest peak RSS
    /// measured of its workers on what they run now (in this run, or
    /// remembered from an earlier one), else the configured `memory_mb` (an
    /// estimate; where no peak can be read, it stays the figure).
    pub(crate) fn need_mb(&self) -> u64 {
        self.measured_mb().unwrap_or(self.cfg.memory_mb)
    }

    /// The largest peak RSS measured of this engine's workers on their
    /// current workload, if any.
    fn measured_mb(&self) -> Option<u64> {
        Some(self.current().mb).filter(|&mb| mb > 0)
    }

    /// The current worker, if any.
    pub(crate) fn worker(&self) -> Option<Arc<Worker>> {
        self.slot().worker.clone()
    }

    /// Pid and last use of the current worker, if one is resident.
    pub(crate) fn resident(&self) -> Option<(u32, Instant)> {
        let slot = self.slot();
        slot.worker.as_ref().map(|w| (w.pid(), slot.last_used))
    }

    /// Since when the worker has been idle, if it is `worker` and `ready`.
    fn idle_since(&self, worker: &Arc<Worker>) -> Option<Instant> {
        let slot = self.slot();
        let current = slot.worker.as_ref().is_some_and(|w| Arc::ptr_eq(w, worker));
        (current && slot.state == EngineState::Ready).then_some(slot.last_used)
    }

    /// Stops the current worker on purpose, if there is one.
    pub(crate) async fn stop_worker(&self) {
        if let Some(worker) = self.worker() {
            tracing::info!(engine = %self.name, pid = worker.pid(), "stopping worker");
            worker.stop(STOP_GRACE).await;
        }
    }

    /// A snapshot for `status`.
    pub(crate) fn status(&self, rss: &RssProbe) -> EngineStatus {
        let slot = self.slot();
        let pid = slot.worker.as_ref().map(|w| w.pid());
        EngineStatus {
            name: self.name.clone(),
            state: slot.state,
            pid,
            rss_bytes: pid.and_then(|p| rss.rss_bytes(p)),
            memory_mb: self.cfg.memory_mb,
            measured_mb: self.measured_mb(),
            restarts: slot.restarts,
            last_error: slot.last_error.clone(),
            queued: self.queued.load(Ordering::SeqCst),
            idle_secs: (slot.state == EngineState::Ready)
                .then(|| slot.last_used.elapsed().as_secs()),
        }
    }

    /// Health checks and idle stop for `worker`, until it ends.
    fn spawn_monitor(self: &Arc<Self>, worker: Arc<Worker>) {
        let weak = Arc::downgrade(self);
        let settings = self.settings.clone();
        let mut state_rx = self.state_tx.subscribe();
        tokio::spawn(async move {
            let mut next_ping = settings.health_interval.map(|i| Instant::now() + i);
            loop {
                let Some(sup) = weak.upgrade() else { return };
                let idle_at = settings
                    .idle
                    .and_then(|idle| sup.idle_since(&worker).map(|t| t + idle));
                drop(sup);
                let wake = [next_ping, idle_at].into_iter().flatten().min();
                let sleep = async {
                    match wake {
                        Some(t) => tokio::time::sleep_until(t.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = worker.wait_exit() => return,
                    changed = state_rx.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        // Recompute the deadlines (e.g. the idle one after a request).
                        continue;
                    }
                    () = sleep => {}
                }
                let Some(sup) = weak.upgrade() else { return };
                if let (Some(at), Some(interval)) = (next_ping, settings.health_interval) {
                    if Instant::now() >= at {
                        if !worker.ping(settings.health_timeout).await {
                            tracing::warn!(engine = %sup.name, pid = worker.pid(), "no pong within {:?}; killing the worker", settings.health_timeout);
                            worker.kill(EndReason::Unresponsive {
                                timeout: settings.health_timeout,
                            });
                            return;
                        }
                        next_ping = Some(Instant::now() + interval);
                    }
                }
                if let Some(idle) = settings.idle {
                    let idle_enough =
                        |s: &Supervisor| s.idle_since(&worker).is_some_and(|t| t.elapsed() >= idle);
                    if idle_enough(&sup) {
                        if let Ok(_turn) = sup.turn.clone().try_lock_owned() {
                            if idle_enough(&sup) {
                                tracing::info!(engine = %sup.name, "idle for {idle:?}; stopping the worker");
                                worker.stop(STOP_GRACE).await;
                                super::rss::release_free_heap();
                                return;
                            }
                        }
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = Settings {
            budget_mb: 0,
            idle: None,
            health_interval: None,
            health_timeout: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_millis(1500),
        };
        let ms = |n| s.backoff(n).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(4), ms(100)],
            [250, 500, 1000, 1500, 1500]
        );
    }
}
