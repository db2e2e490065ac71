//! The reply stream of one request, and what happens when it is dropped early.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedMutexGuard};
use voxd_proto::{kind, Frame, ProtoError};

use super::supervisor::{Supervisor, EXIT_GRACE};
use super::worker::{EndReason, Worker};
use super::EngineError;

/// The frames a worker sends in reply to one request.
///
/// It holds the engine's turn: the next request to the engine waits until
/// this reply has ended or the stream is dropped. Dropping it before the end
/// sends `cancel` and discards the rest of the reply in the background (a
/// worker that does not end the reply within the health timeout is killed).
pub struct ReplyStream {
    engine: String,
    sup: Arc<Supervisor>,
    worker: Arc<Worker>,
    inbox: Option<mpsc::UnboundedReceiver<Frame>>,
    turn: Option<OwnedMutexGuard<()>>,
    cancel_timeout: Duration,
    done: Option<Frame>,
}

/// The error for a request whose worker ended under it.
pub(crate) async fn ended_error(engine: &str, worker: &Worker) -> EngineError {
    let status = worker
        .wait_exit_or_kill(EXIT_GRACE, "closed its stdout while still running")
        .await;
    let engine = engine.to_owned();
    match worker.end_reason() {
        Some(EndReason::Stopped) => EngineError::Stopped { engine },
        Some(EndReason::Unresponsive { timeout }) => EngineError::Unresponsive {
            engine,
            timeout_secs: timeout.as_secs(),
        },
        Some(EndReason::Faulty(reason)) => EngineError::Faulty { engine, reason },
        None => EngineError::WorkerCrashed {
            engine,
            status,
            stderr: worker.stderr_tail(),
        },
    }
}

impl ReplyStream {
    pub(crate) fn new(
        sup: Arc<Supervisor>,
        worker: Arc<Worker>,
        inbox: mpsc::UnboundedReceiver<Frame>,
        turn: OwnedMutexGuard<()>,
        cancel_timeout: Duration,
    ) -> ReplyStream {
        ReplyStream {
            engine: sup.name.clone(),
            sup,
            worker,
            inbox: Some(inbox),
            turn: Some(turn),
            cancel_timeout,
            done: None,
        }
    }

    /// The engine answering.
    pub fn engine(&self) -> &str {
        &self.engine
    }

    /// The pid of the worker answering.
    pub fn pid(&self) -> u32 {
        self.worker.pid()
    }

    /// The next reply frame; `None` once the reply has ended (after `done`,
    /// an error, or the worker's end). A worker's `error` frame comes as
    /// [`EngineError::Worker`]; a worker that dies or hangs as the error
    /// saying so, never as a hang.
    pub async fn next(&mut self) -> Option<Result<Frame, EngineError>> {
        let inbox = self.inbox.as_mut()?;
        loop {
            match inbox.recv().await {
                Some(frame) if frame.kind == kind::DONE => {
                    self.finish();
                    self.done = Some(frame);
                    return None;
                }
                Some(frame) if frame.kind == kind::ERROR => {
                    self.finish();
                    return Some(Err(EngineError::Worker {
                        engine: self.engine.clone(),
                        code: frame.str_field("code").unwrap_or("unknown").to_owned(),
                        text: frame.str_field("text").unwrap_or("").to_owned(),
                    }));
                }
                Some(frame) if frame.kind == kind::INFO => {
                    tracing::debug!(engine = %self.engine, "unsolicited `info` ignored");
                }
                Some(frame) => return Some(Ok(frame)),
                None => {
                    self.inbox = None;
                    let err = ended_error(&self.engine, &self.worker).await;
                    self.turn = None;
                    return Some(Err(err));
                }
            }
        }
    }

    /// Sends a follow-up frame of this request, such as the `audio-chunk`s
    /// and `audio-stop` that follow a `transcribe`. If the worker is gone,
    /// the error says why (as [`ReplyStream::next`] would).
    pub async fn send(&mut self, frame: &Frame) -> Result<(), EngineError> {
        if self.inbox.is_none() {
            return Err(EngineError::Stopped {
                engine: self.engine.clone(),
            });
        }
        match self.worker.send(frame).await {
            Ok(()) => Ok(()),
            Err(ProtoError::Io(e)) => {
                tracing::debug!(engine = %self.engine, error = %e, "follow-up frame could not be written");
                // The worker is ending: its reply (or its death) says why.
                while let Some(next) = self.next().await {
                    next?;
                }
                Err(EngineError::Stopped {
                    engine: self.engine.clone(),
                })
            }
            Err(source) => Err(EngineError::InvalidRequest {
                engine: self.engine.clone(),
                source,
            }),
        }
    }

    /// Reads the whole reply: its frames, or the first error.
    pub async fn collect(mut self) -> Result<Vec<Frame>, EngineError> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next().await {
            frames.push(frame?);
        }
        Ok(frames)
    }

    /// The `done` frame that ended the reply, once it has.
    pub fn done(&self) -> Option<&Frame> {
        self.done.as_ref()
    }

    fn finish(&mut self) {
        if let Some(inbox) = self.inbox.take() {
            self.worker.return_inbox(inbox);
        }
        self.sup.end_request(&self.worker, true);
        self.turn = None;
    }
}

impl Drop for ReplyStream {
    fn drop(&mut self) {
        let Some(mut inbox) = self.inbox.take() else {
            return;
        };
        let turn = self.turn.take();
        let worker = self.worker.clone();
        let sup = self.sup.clone();
        let timeout = self.cancel_timeout;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            worker.kill(EndReason::Faulty(
                "its reply was dropped outside a runtime".to_owned(),
            ));
            return;
        };
        tracing::debug!(engine = %sup.name, "reply dropped early; cancelling");
        runtime.spawn(async move {
            let _turn = turn;
            let drain = async {
                worker.send(&Frame::new(kind::CANCEL)).await.ok()?;
                while let Some(frame) = inbox.recv().await {
                    if frame.is_terminal() {
                        return Some(inbox);
                    }
                }
                None
            };
            match tokio::time::timeout(timeout, drain).await {
                Ok(Some(inbox)) => {
                    worker.return_inbox(inbox);
                    sup.end_request(&worker, true);
                }
                // It ended meanwhile; its exit handling did the rest.
                Ok(None) => {
                    worker
                        .wait_exit_or_kill(EXIT_GRACE, "closed its stdout")
                        .await;
                }
                Err(_) => {
                    worker.kill(EndReason::Faulty(format!(
                        "did not end its reply within {} s of `cancel`",
                        timeout.as_secs()
                    )));
                    worker.wait_exit().await;
                }
            }
        });
    }
}
