//! `voxd-llm`: voxd's language model worker. It runs llama.cpp (through
//! `llama-cpp-2`) in its own process, speaking the `voxd-proto` frames on
//! stdio; the daemon's engine host starts it on demand (see `voxd::engine`)
//! and `voxd::llm::LocalLlm` is its client.
//!
//! It announces `info{name, pid, version}` at once: no model is loaded until
//! a request names one. Every request carries the model it runs on, as
//! `model: {path, threads, context, batch, gpu_layers, chat_template?, cache_dir?}`
//! (from `engines.llm`); the worker loads that GGUF (mmap) on first use and
//! keeps it, with its context and KV cache, while requests name the same
//! one. A request naming another model (or other settings) replaces it.
//!
//! # Requests (each reply ends with `done` or `error{code, text}`)
//!
//! | request | reply |
//! |---|---|
//! | `load{model}` | `done{name, path, quantization, parameters, context, prompt_format, chat_template}`: the model's info; `prompt_format` is `chat_template` or `completion`, `chat_template` says where the template came from (`model`, `config`, or null) |
//! | `generate{model, prompt, max_tokens, temperature?, top_p?, stop?, seed?, session?}` | `token{text}` frames as text is produced, then `done{prompt_tokens, cached_tokens, generated_tokens, first_token_ms, tokens_per_sec, finish}` with `finish` = `stop` (end of sequence or a stop string) or `length` (`max_tokens`, or the context is full) |
//! | `bench{model, n_prompt, n_gen, repetitions?}` | `done{pp_tokens_per_sec, tg_tokens_per_sec, ...}`: llama-bench's pp and tg tests on this worker's context |
//!
//! The data of these requests and replies are the types of
//! `voxd_proto::llm`, which the daemon shares.
//!
//! `prompt` is `{"kind":"completion","value":"text"}` (continued as is) or
//! `{"kind":"chat","value":[{"role":"user","content":"..."}]}` (roles
//! `system`, `user`, `assistant`), rendered with the GGUF's chat template
//! or the one `chat_template` names; a model with neither refuses it with
//! `error{code:"no_chat_template"}` (never a silent fallback to some other
//! format). Generation is greedy when `temperature` is 0, else top-p then
//! temperature sampling seeded with `seed`. Text stops
//! before the first stop string, and text that may begin one is held back,
//! so no part of a stop string is ever sent.
//!
//! The KV cache is kept between requests: a prompt that starts like the
//! previous prompt plus its reply reuses that prefix and decodes only the
//! rest (`cached_tokens` in `done`). With `cache_dir` in `model`, it also
//! outlives the worker: written there on `stop` (or when stdin closes) and
//! read back by the next worker on the same model (see `persist`). The
//! context is created with the full-size sliding-window cache (`swa_full`),
//! without which Gemma 3 could reuse nothing.
//!
//! Error codes: `load_failed` (missing, non-GGUF or corrupt model file; the
//! text names the file), `no_chat_template`, `prompt_too_long`,
//! `bad_request`, `decode_failed`, `cancelled`.
//!
//! # Concurrency
//!
//! stdin is read on the async main task, so `ping` is answered and `cancel`
//! seen at any time; llama.cpp runs on a thread of its own and checks the
//! cancel flag before every token (and every prompt batch), so a cancelled
//! generation ends within one token with `error{code:"cancelled"}`.

mod jobs;
mod model;
mod persist;
mod session;
mod stop;
mod template;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use llama_cpp_2::llama_backend::LlamaBackend;
use serde_json::json;
use tokio::io::BufReader;
use tokio::sync::mpsc;
use voxd_proto::{kind, read_frame, write_frame, Frame};

use jobs::Job;

fn info() -> Frame {
    Frame::new(kind::INFO).with_data(json!({
        "name": "llm",
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    if let Some(arg) = std::env::args().nth(1) {
        eprintln!("voxd-llm: unexpected argument {arg:?}; settings come with each request");
        return ExitCode::from(2);
    }
    // llama.cpp logs every load in detail; keep its warnings and errors only.
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VOXD_LLM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let backend = match LlamaBackend::init() {
        Ok(backend) => backend,
        Err(e) => {
            eprintln!("voxd-llm: cannot initialise llama.cpp: {e}");
            return ExitCode::from(1);
        }
    };

    let (out, mut outbox) = mpsc::unbounded_channel::<Frame>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(frame) = outbox.recv().await {
            if let Err(e) = write_frame(&mut stdout, &frame).await {
                eprintln!("voxd-llm: cannot write to stdout: {e}");
                std::process::exit(1);
            }
        }
    });

    let cancel = Arc::new(AtomicBool::new(false));
    let (jobs, job_rx) = std::sync::mpsc::channel::<Job>();
    let engine = {
        let out = out.clone();
        let cancel = cancel.clone();
        std::thread::Builder::new()
            .name("llama".into())
            .spawn(move || jobs::run(backend, job_rx, out, &cancel))
    };
    let engine = match engine {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("voxd-llm: cannot start the engine thread: {e}");
            return ExitCode::from(1);
        }
    };
    let _ = out.send(info());

    let mut stdin = BufReader::new(tokio::io::stdin());
    let code = loop {
        let frame = match read_frame(&mut stdin).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("voxd-llm: bad frame on stdin: {e}");
                break ExitCode::from(1);
            }
        };
        match frame.kind.as_str() {
            kind::PING => {
                let _ = out.send(Frame::new(kind::PONG));
            }
            kind::DESCRIBE => {
                let _ = out.send(info());
            }
            kind::CANCEL => cancel.store(true, Ordering::SeqCst),
            kind::STOP => break ExitCode::SUCCESS,
            _ => match Job::parse(&frame) {
                Ok(job) => {
                    // The host sends a request only after the previous
                    // reply ended, so a `cancel` seen so far is stale.
                    cancel.store(false, Ordering::SeqCst);
                    if jobs.send(job).is_err() {
                        eprintln!("voxd-llm: the engine thread has stopped");
                        break ExitCode::from(1);
                    }
                }
                Err(text) => {
                    let _ = out.send(Frame::error("bad_request", text));
                }
            },
        }
    };
    // A generation in flight ends at its next token; the engine thread
    // then keeps the KV cache on disk (see `persist`) and returns. The host
    // kills a worker that has not exited two seconds after `stop`.
    cancel.store(true, Ordering::SeqCst);
    drop(jobs);
    drop(out);
    let engine = tokio::task::spawn_blocking(move || engine.join());
    let _ = tokio::time::timeout(std::time::Duration::from_millis(1500), engine).await;
    // Pending frames go out before exit.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), writer).await;
    code
}
