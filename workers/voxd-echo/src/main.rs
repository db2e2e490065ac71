//! `voxd-echo`: a **test-only** engine worker for the engine host's tests.
//!
//! It speaks the `voxd-proto` vocabulary over stdio and misbehaves on demand.
//!
//! Flags:
//! - `--name NAME`: the name in its `info` frame (default `echo`);
//! - `--startup-delay-ms N`: wait before announcing `info` (model loading);
//! - `--crash-on-start`: write a line to stderr and exit with code 3;
//! - `--ignore-pings`: never answer `ping`;
//! - `--alloc-mb N`: allocate and touch N MiB so its RSS is measurable.
//!
//! Requests (each reply ends with `done`, or `error` on failure):
//! - `echo{repeat?, delay_ms?}`: `repeat` (default 1) `echo` frames carrying
//!   the request's data and payload, `delay_ms` apart; `cancel` ends it early
//!   with `error{code:"cancelled"}`;
//! - `fail{text?}`: replies `error{code:"failed", text}`;
//! - `crash`: aborts the process at once;
//! - `hang`: stops reading and answering anything, pings included;
//! - `garbage`: writes a line that is not a frame header to stdout;
//! - `describe` → `info`, `ping` → `pong`, `stop` or end of stdin → exit 0.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncWriteExt, BufReader, Stdout};
use tokio::sync::{mpsc, Mutex};
use voxd_proto::{kind, read_frame, write_frame, Frame};

struct Options {
    name: String,
    startup_delay_ms: u64,
    crash_on_start: bool,
    ignore_pings: bool,
    alloc_mb: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        name: "echo".to_owned(),
        startup_delay_ms: 0,
        crash_on_start: false,
        ignore_pings: false,
        alloc_mb: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--name" => opts.name = value("--name")?,
            "--startup-delay-ms" => {
                opts.startup_delay_ms = value("--startup-delay-ms")?
                    .parse()
                    .map_err(|e| format!("--startup-delay-ms: {e}"))?
            }
            "--alloc-mb" => {
                opts.alloc_mb = value("--alloc-mb")?
                    .parse()
                    .map_err(|e| format!("--alloc-mb: {e}"))?
            }
            "--crash-on-start" => opts.crash_on_start = true,
            "--ignore-pings" => opts.ignore_pings = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

type Out = Arc<Mutex<Stdout>>;

async fn send(out: &Out, frame: Frame) {
    let mut out = out.lock().await;
    if let Err(e) = write_frame(&mut *out, &frame).await {
        eprintln!("voxd-echo: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

fn info(name: &str) -> Frame {
    Frame::new(kind::INFO).with_data(json!({
        "name": name,
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("voxd-echo: {e}");
            return ExitCode::from(2);
        }
    };
    if opts.crash_on_start {
        eprintln!("voxd-echo: crashing on start as asked (--crash-on-start)");
        return ExitCode::from(3);
    }
    // Touch every page so the memory is resident, and keep it until exit.
    let ballast: Vec<u8> = std::hint::black_box(vec![1u8; opts.alloc_mb * 1024 * 1024]);
    tokio::time::sleep(Duration::from_millis(opts.startup_delay_ms)).await;

    let out: Out = Arc::new(Mutex::new(tokio::io::stdout()));
    send(&out, info(&opts.name)).await;

    // Requests run one at a time on their own task, so that pings and
    // `cancel` are read and answered while a reply is streaming.
    let cancelled = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::unbounded_channel::<Frame>();
    tokio::spawn(serve_requests(rx, out.clone(), cancelled.clone()));

    let mut stdin = BufReader::new(tokio::io::stdin());
    loop {
        let frame = match read_frame(&mut stdin).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                eprintln!("voxd-echo: bad frame: {e}");
                return ExitCode::from(1);
            }
        };
        match frame.kind.as_str() {
            kind::PING if opts.ignore_pings => {}
            kind::PING => send(&out, Frame::new(kind::PONG)).await,
            kind::DESCRIBE => send(&out, info(&opts.name)).await,
            kind::CANCEL => cancelled.store(true, Ordering::SeqCst),
            kind::STOP => break,
            "crash" => std::process::abort(),
            "garbage" => {
                let mut out = out.lock().await;
                let _ = out.write_all(b"this is not a frame\n").await;
                let _ = out.flush().await;
            }
            "hang" => {
                eprintln!("voxd-echo: hanging as asked");
                // Stop everything, pings included, holding stdout so the
                // request task cannot answer either.
                let _held = out.lock().await;
                std::future::pending::<()>().await;
            }
            _ => {
                cancelled.store(false, Ordering::SeqCst);
                if tx.send(frame).is_err() {
                    break;
                }
            }
        }
    }
    drop(ballast);
    ExitCode::SUCCESS
}

async fn serve_requests(
    mut rx: mpsc::UnboundedReceiver<Frame>,
    out: Out,
    cancelled: Arc<AtomicBool>,
) {
    while let Some(req) = rx.recv().await {
        match req.kind.as_str() {
            "echo" => {
                let repeat = req.data.get("repeat").and_then(Value::as_u64).unwrap_or(1);
                let delay = req
                    .data
                    .get("delay_ms")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let mut finished = true;
                for i in 0..repeat {
                    if i > 0 && delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    if cancelled.load(Ordering::SeqCst) {
                        finished = false;
                        break;
                    }
                    let reply = Frame::new("echo")
                        .with_data(req.data.clone())
                        .with_payload(req.payload.clone());
                    send(&out, reply).await;
                }
                if finished {
                    send(
                        &out,
                        Frame::new(kind::DONE).with_data(json!({ "frames": repeat })),
                    )
                    .await;
                } else {
                    send(&out, Frame::error("cancelled", "request cancelled")).await;
                }
            }
            "fail" => {
                let text = req
                    .str_field("text")
                    .unwrap_or("failed as asked")
                    .to_owned();
                send(&out, Frame::error("failed", text)).await;
            }
            other => {
                let text = format!("voxd-echo does not know request type `{other}`");
                send(&out, Frame::error("unknown-request", text)).await;
            }
        }
    }
}
