//! A real llama-server (built by `scripts/llama-server.sh` on the llama.cpp
//! voxd-llm runs; the bootstrap exports its path as
//! `$VOXD_TEST_LLAMA_SERVER`) serving the test store's Gemma on loopback.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::{http, scaled_secs, test_model, wait_until_within};

/// The test store's base Gemma GGUF (no chat template).
pub fn gguf() -> PathBuf {
    test_model("gemma3-270m-base").join("gemma-3-270m-q4_k_m.gguf")
}

fn binary() -> PathBuf {
    std::env::var_os("VOXD_TEST_LLAMA_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "VOXD_TEST_LLAMA_SERVER is not set: run `bash scripts/bootstrap.sh test` \
                 (it builds llama-server with scripts/llama-server.sh)"
            )
        })
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running llama-server; killed when dropped.
pub struct LlamaServer {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl LlamaServer {
    /// Starts llama-server on a free port (one thread, 2048 tokens of
    /// context, one slot, as the local worker in the tests) and waits until
    /// it listens. Another test's server may take the port first: then it
    /// tries another.
    pub fn start(log: PathBuf) -> LlamaServer {
        for _ in 0..5 {
            if let Some(server) = LlamaServer::try_start(free_port(), log.clone()) {
                return server;
            }
        }
        panic!(
            "llama-server found no free port:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// [`LlamaServer::start`] on `port`, which must be free.
    pub fn start_on(port: u16, log: PathBuf) -> LlamaServer {
        LlamaServer::try_start(port, log.clone()).unwrap_or_else(|| {
            panic!(
                "llama-server could not listen on port {port}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
    }

    /// `None` when it exits before it listens (the port was taken).
    fn try_start(port: u16, log: PathBuf) -> Option<LlamaServer> {
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary())
            .args(["-m", &gguf().display().to_string()])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-t", "1", "-c", "2048", "-np", "1"])
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("llama-server starts");
        let mut server = LlamaServer { child, port, log };
        // Its own "listening" line: a server of another test on the same
        // port would answer /health too.
        let listening = format!("listening on http://127.0.0.1:{port}");
        let mut exited = false;
        wait_until_within("llama-server listens", scaled_secs(120), || {
            exited = server.child.try_wait().unwrap().is_some();
            exited
                || (server.log().contains(&listening)
                    && http(&server.addr(), "GET", "/health").0 == 200)
        });
        (!exited).then_some(server)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The OpenAI base URL.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr())
    }

    /// Whether a slot is generating now (`GET /slots`).
    pub fn busy(&self) -> bool {
        let (status, _, body) = http(&self.addr(), "GET", "/slots");
        assert_eq!(status, 200, "{body}");
        let slots: Value = serde_json::from_str(&body).unwrap();
        slots
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["is_processing"] == Value::Bool(true))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}
