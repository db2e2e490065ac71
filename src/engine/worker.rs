//! One worker child process: spawning it, its framed stdio, its stderr tail,
//! and its end. Knows nothing of states, budgets or restarts.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::{mpsc, watch, Notify};
use voxd_proto::{kind, read_frame, write_frame, Frame, ProtoError};

use super::EngineError;
use crate::config::WorkerConfig;

/// Lines of a worker's stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 20;
/// How long the exit handling waits for the last stderr lines of a dead worker.
const STDERR_DRAIN: Duration = Duration::from_millis(500);

/// Why the host ended a worker; `None` on a [`Worker`] means it died by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndReason {
    /// Stopped on purpose (stop, idle, budget, shutdown): not a crash.
    Stopped,
    /// Killed because it did not answer a ping in time.
    Unresponsive { timeout: Duration },
    /// Killed because it broke the protocol or failed to start.
    Faulty(String),
}

/// A running worker process.
pub(crate) struct Worker {
    pid: u32,
    started: Instant,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    /// Frames other than `pong`; `None` while a request (or start) holds it.
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Frame>>>,
    pongs: watch::Receiver<u64>,
    exit: watch::Receiver<Option<String>>,
    kill: Arc<Notify>,
    reason: Arc<Mutex<Option<EndReason>>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

/// The program to run for engine `name`: the configured command, or
/// `voxd-<name>` beside the current executable, else on `$PATH`.
pub(crate) fn resolve_command(name: &str, cfg: &WorkerConfig) -> Result<PathBuf, EngineError> {
    if !cfg.command.as_os_str().is_empty() {
        return Ok(cfg.command.clone());
    }
    let binary = format!("voxd-{name}{}", std::env::consts::EXE_SUFFIX);
    let exe = std::env::current_exe().unwrap_or_default();
    if let Some(dir) = exe.parent() {
        let beside = dir.join(&binary);
        if beside.is_file() {
            return Ok(beside);
        }
    }
    let on_path = std::env::var_os("PATH").map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(&binary))
            .find(|c| c.is_file())
    });
    on_path
        .flatten()
        .ok_or_else(|| EngineError::WorkerNotFound {
            engine: name.to_owned(),
            binary,
            exe,
        })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Worker {
    /// Starts `program` with piped stdio. `on_exit` runs once with the exit
    /// status text after the process has ended (and its stderr is drained),
    /// before [`Worker::wait_exit`] returns to anyone.
    pub(crate) fn spawn(
        engine: &str,
        program: &Path,
        args: &[String],
        on_exit: Box<dyn FnOnce(&str) + Send>,
    ) -> Result<Worker, EngineError> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // stdout carries the frames. ggml (llama.cpp, whisper.cpp) answers
            // a failed assertion by attaching gdb, whose backtrace would go to
            // stdout and garble them; the assertion itself still goes to stderr.
            .env("GGML_NO_BACKTRACE", "1")
            .kill_on_drop(true);
        // Own process group: a Ctrl-C meant for the daemon's terminal must not
        // kill the workers behind the daemon's back.
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|source| EngineError::Spawn {
            engine: engine.to_owned(),
            command: program.to_path_buf(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take();
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(EngineError::Spawn {
                engine: engine.to_owned(),
                command: program.to_path_buf(),
                source: std::io::Error::other("child has no piped stdout/stderr"),
            });
        };

        let kill = Arc::new(Notify::new());
        let (inbox_tx, inbox_rx) = mpsc::unbounded_channel();
        let (pong_tx, pong_rx) = watch::channel(0u64);
        let (exit_tx, exit_rx) = watch::channel(None);
        let (stderr_done_tx, mut stderr_done_rx) = watch::channel(false);
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));

        // stdout: frames.
        let engine_name = engine.to_owned();
        let reader_kill = kill.clone();
        let reason = Arc::new(Mutex::new(None));
        let reader_reason = reason.clone();
        tokio::spawn(async move {
            let mut stdout = BufReader::new(stdout);
            loop {
                match read_frame(&mut stdout).await {
                    Ok(Some(frame)) if frame.kind == kind::PONG => {
                        pong_tx.send_modify(|n| *n += 1);
                    }
                    Ok(Some(frame)) => {
                        tracing::trace!(engine = %engine_name, kind = %frame.kind, "frame from worker");
                        // A closed inbox only means nobody listens any more.
                        let _ = inbox_tx.send(frame);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(engine = %engine_name, error = %e, "worker broke the protocol; killing it");
                        lock(&reader_reason)
                            .get_or_insert(EndReason::Faulty(format!("protocol error: {e}")));
                        reader_kill.notify_one();
                        break;
                    }
                }
            }
        });

        // stderr: logged, and the tail kept for error messages.
        let engine_name = engine.to_owned();
        let tail = stderr_tail.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(engine = %engine_name, "worker stderr: {line}");
                let mut tail = lock(&tail);
                if tail.len() == STDERR_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            let _ = stderr_done_tx.send(true);
        });

        let worker = Worker {
            pid,
            started: Instant::now(),
            stdin: tokio::sync::Mutex::new(stdin),
            inbox: Mutex::new(Some(inbox_rx)),
            pongs: pong_rx,
            exit: exit_rx,
            kill: kill.clone(),
            reason,
            stderr_tail,
        };

        // The waiter owns the child: it reaps it, or kills it when told.
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                () = kill.notified() => {
                    if let Err(e) = child.start_kill() {
                        tracing::debug!(pid, error = %e, "kill failed (already gone?)");
                    }
                    child.wait().await
                }
            };
            let status = match status {
                Ok(s) => s.to_string(),
                Err(e) => format!("unknown status (wait failed: {e})"),
            };
            let _ = tokio::time::timeout(STDERR_DRAIN, stderr_done_rx.wait_for(|done| *done)).await;
            on_exit(&status);
            let _ = exit_tx.send(Some(status));
        });
        Ok(worker)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Writes one frame to the worker's stdin.
    pub(crate) async fn send(&self, frame: &Frame) -> Result<(), ProtoError> {
        let mut stdin = self.stdin.lock().await;
        match stdin.as_mut() {
            Some(w) => write_frame(w, frame).await,
            None => Err(ProtoError::Io(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "worker stdin already closed",
            ))),
        }
    }

    /// Pings and waits for the `pong`; `false` if none came within `timeout`.
    pub(crate) async fn ping(&self, timeout: Duration) -> bool {
        let mut pongs = self.pongs.clone();
        pongs.mark_unchanged();
        let exchange = async {
            self.send(&Frame::new(kind::PING)).await.is_ok() && pongs.changed().await.is_ok()
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(false)
    }

    /// Takes the frame inbox (the caller has the engine's turn).
    pub(crate) fn take_inbox(&self) -> Option<mpsc::UnboundedReceiver<Frame>> {
        lock(&self.inbox).take()
    }

    /// Gives the inbox back after a completed exchange.
    pub(crate) fn return_inbox(&self, inbox: mpsc::UnboundedReceiver<Frame>) {
        *lock(&self.inbox) = Some(inbox);
    }

    /// Kills the worker, remembering why (the first reason wins).
    pub(crate) fn kill(&self, reason: EndReason) {
        lock(&self.reason).get_or_insert(reason);
        self.kill.notify_one();
    }

    /// Why the host ended it, if it did.
    pub(crate) fn end_reason(&self) -> Option<EndReason> {
        lock(&self.reason).clone()
    }

    /// Waits until the process has ended and its exit has been handled.
    pub(crate) async fn wait_exit(&self) -> String {
        let mut exit = self.exit.clone();
        let status = match exit.wait_for(Option::is_some).await {
            Ok(status) => status.clone().unwrap_or_default(),
            // The waiter task is gone (runtime shutting down): the child was
            // killed on drop.
            Err(_) => "killed".to_owned(),
        };
        status
    }

    /// Like [`Worker::wait_exit`], but kills the worker (as faulty, with
    /// `why`) if it has not ended within `grace`.
    pub(crate) async fn wait_exit_or_kill(&self, grace: Duration, why: &str) -> String {
        if let Ok(status) = tokio::time::timeout(grace, self.wait_exit()).await {
            return status;
        }
        self.kill(EndReason::Faulty(why.to_owned()));
        self.wait_exit().await
    }

    /// Stops it on purpose: `stop` frame, stdin closed, `grace` to exit,
    /// then killed. Returns the exit status text.
    pub(crate) async fn stop(&self, grace: Duration) -> String {
        lock(&self.reason).get_or_insert(EndReason::Stopped);
        let deadline = tokio::time::Instant::now() + grace;
        let polite = async {
            let mut stdin = self.stdin.lock().await;
            if let Some(w) = stdin.as_mut() {
                let _ = write_frame(w, &Frame::new(kind::STOP)).await;
            }
            *stdin = None;
        };
        // A hung worker with a full pipe must not block the stop.
        let _ = tokio::time::timeout_at(deadline, polite).await;
        if let Ok(status) = tokio::time::timeout_at(deadline, self.wait_exit()).await {
            return status;
        }
        tracing::warn!(
            pid = self.pid,
            "worker did not exit within {grace:?} of `stop`; killing it"
        );
        self.kill.notify_one();
        self.wait_exit().await
    }

    /// The last lines the worker wrote to stderr, joined by ` | `.
    pub(crate) fn stderr_tail(&self) -> String {
        let tail = lock(&self.stderr_tail);
        tail.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" | ")
    }
}
