//! The engine thread's jobs: a [`Job`] is parsed from a request frame, jobs
//! run in order on one thread of their own, and each ends with a `done`
//! frame or a [`Failure`]. The thread keeps a model loaded while jobs name
//! the same one and loads another when a job names it; reply frames go to
//! [`Out`].

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;

use llama_cpp_2::llama_backend::LlamaBackend;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use voxd_proto::llm::{BenchJob, GenerateJob, LoadJob, ModelParams};
use voxd_proto::Frame;

use crate::model;
use crate::session::Loaded;

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
        fn data<T: DeserializeOwned>(frame: &Frame) -> Result<T, String> {
            serde_json::from_value(frame.data.clone())
                .map_err(|e| format!("invalid `{}` request: {e}", frame.kind))
        }
        match frame.kind.as_str() {
            LoadJob::KIND => data(frame).map(Job::Load),
            GenerateJob::KIND => data(frame).map(Job::Generate),
            BenchJob::KIND => data(frame).map(Job::Bench),
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
pub struct Failure {
    code: &'static str,
    text: String,
}

impl Failure {
    pub fn new(code: &'static str, text: impl Into<String>) -> Failure {
        Failure {
            code,
            text: text.into(),
        }
    }

    /// The job saw the cancel flag.
    pub fn cancelled() -> Failure {
        Failure::new("cancelled", "generation cancelled")
    }

    fn frame(self) -> Frame {
        Frame::error(self.code, self.text)
    }
}

/// A reply frame of type `kind` carrying `data`, one of the reply types of
/// `voxd_proto::llm` (plain JSON, whose serialisation cannot fail).
pub fn reply(kind: &str, data: &impl Serialize) -> Frame {
    let data = serde_json::to_value(data).expect("llm reply types serialise to JSON");
    Frame::new(kind).with_data(data)
}

/// Runs jobs until the channel closes.
pub fn run(backend: LlamaBackend, jobs: Receiver<Job>, out: Out, cancel: &AtomicBool) {
    let mut next = None;
    loop {
        let Some(job) = next.take().or_else(|| jobs.recv().ok()) else {
            return;
        };
        let params = job.model().clone();
        let model = match model::load(&backend, &params) {
            Ok(model) => model,
            Err(f) => {
                let _ = out.send(f.frame());
                continue;
            }
        };
        let mut loaded = match Loaded::new(&backend, &model, &params) {
            Ok(loaded) => loaded,
            Err(f) => {
                let _ = out.send(f.frame());
                continue;
            }
        };
        let mut job = job;
        loop {
            let terminal = loaded
                .serve(job, &out, cancel)
                .unwrap_or_else(Failure::frame);
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
