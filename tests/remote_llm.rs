//! The language model on another machine's server (`engines.llm.backend`),
//! with a real llama-server built on the llama.cpp voxd-llm runs
//! (tests/support/llama_server.rs), voxd's own Ollama API as the Ollama
//! server, and tests/remote_llm/bad_server.py for the bad answers a server
//! can give. Each test drives a real `voxd serve` over its socket.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};
use support::llama_server::{free_port, LlamaServer};
use support::voice::engine;
use support::{scaled_secs, Conn, Daemon, Home};

/// A home with the fixture notes, the test model for the local worker,
/// and `llm` added to `[engines.llm]` (`rest`: more sections).
fn home(max_tokens: u32, llm: &str, rest: &str) -> (Home, PathBuf) {
    support::notes_and_model_home_with(max_tokens, llm, &format!("debounce_ms = 200\n{rest}"))
}

fn openai(url: &str) -> String {
    format!("backend = \"openai\"\nurl = \"{url}\"\n")
}

/// `status.llm.backends`.
fn backends(conn: &mut Conn) -> Value {
    conn.ok("status", json!({}))["llm"]["backends"].clone()
}

/// One `ask`: the token events' text and the reply.
fn ask(conn: &mut Conn, question: &str, mode: &str) -> (Vec<String>, Value) {
    let (events, reply) = conn.stream("ask", json!({ "question": question, "mode": mode }));
    let pieces = events
        .iter()
        .filter(|e| e["event"] == "ask.token")
        .map(|e| e["data"]["text"].as_str().unwrap().to_owned())
        .collect();
    (pieces, reply)
}

const WIFI: &str = "What is the wifi password?";
/// A prompt the base model goes on continuing.
const COUNT: &str = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,";

#[test]
fn llama_server_answers_from_the_notes_streams_and_stops_when_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(dir.path().join("server.log"));
    let (home, notes) = home(1024, &openai(&server.url()), "");
    let daemon = Daemon::start_indexed(home, 5);
    let mut conn = daemon.connect().with_timeout(120);

    // The generative path on the server: the base model has no chat
    // template (its /props shows llama.cpp's fallback), so voxd sends its
    // completion prompt to /v1/completions.
    let (pieces, reply) = ask(&mut conn, WIFI, "generative");
    assert_eq!(reply["ok"], true, "{reply}\n{}", server.log());
    let answer = &reply["result"];
    assert_eq!(answer["mode"], "generative", "{answer:#}");
    assert!(
        answer["text"].as_str().unwrap().contains("kettle-47-moon"),
        "{answer:#}"
    );
    let cited = answer["citations"][0]["path"].as_str().unwrap();
    assert!(Path::new(cited).starts_with(&notes), "{answer:#}");
    assert!(pieces.len() > 3, "streamed token by token: {pieces:?}");
    assert_eq!(pieces.concat().trim_end(), answer["text"]);
    let status = conn.ok("status", json!({}));
    assert_eq!(status["llm"]["model"]["prompt_format"], "completion");
    let b = &status["llm"]["backends"][0];
    assert_eq!(
        (&b["name"], &b["state"], &b["requests"]),
        (&json!("openai"), &json!("up"), &json!(1)),
        "{status:#}"
    );
    assert!(
        engine(&status, "llm")["pid"].is_null(),
        "no local worker ran"
    );

    // Closing the connection mid-answer closes the HTTP stream, and
    // llama-server stops generating (1,024 tokens would take it seconds).
    let mut client = daemon.connect();
    let id = client.send("generate", json!({ "prompt": COUNT, "stop": [] }));
    client.wait_tokens(&id, 3);
    assert!(server.busy(), "the server is generating");
    drop(client);
    daemon.wait_until("llama-server stops generating", scaled_secs(3), || {
        !server.busy()
    });
    // And serves the next request.
    let (_, next) = conn.stream("generate", json!({ "prompt": COUNT, "max_tokens": 4 }));
    assert_eq!(next["result"]["stats"]["generated_tokens"], 4, "{next}");
}

#[test]
fn the_local_model_answers_while_the_server_is_down_and_the_server_again_after_its_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = LlamaServer::start(dir.path().join("server.log"));
    let port = server.port;
    let llm = format!(
        "{}fallback = [\"local\"]\nretry_secs = {}\n",
        openai(&server.url()),
        scaled_secs(8).as_secs()
    );
    let (home, _) = home(1024, &llm, "");
    let daemon = Daemon::start_indexed(home, 5);
    let mut conn = daemon.connect().with_timeout(120);
    let short = json!({ "prompt": COUNT, "max_tokens": 4 });

    let (_, first) = conn.stream("generate", short.clone());
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(backends(&mut conn)[0]["state"], "up");

    // Killed mid-answer: the text already streamed cannot be taken back,
    // so this request fails clearly.
    let mut client = daemon.connect().with_timeout(120);
    let id = client.send("generate", json!({ "prompt": COUNT, "stop": [] }));
    client.wait_tokens(&id, 2);
    server.kill();
    let reply = loop {
        let msg = client.read().expect("a reply");
        if msg.get("event").is_none() {
            break msg;
        }
    };
    assert_eq!(reply["ok"], false, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("server"), "{reply}");

    // The next goes to the local worker while the server rests (8 s, scaled: more
    // than the local worker's cold start takes on a loaded machine).
    let (_, local) = conn.stream("generate", short.clone());
    assert_eq!(local["ok"], true, "{local}");
    let b = backends(&mut conn);
    assert_eq!(b[0]["state"], "down", "{b:#}");
    assert_eq!(
        (&b[1]["name"], &b[1]["state"]),
        (&json!("local"), &json!("up"))
    );
    assert_eq!(b[0]["fallbacks"], 0, "the killed request did not fall back");
    assert!(!engine(&conn.ok("status", json!({})), "llm")["pid"].is_null());

    // Back after its rest: the server answers again.
    let _server = LlamaServer::start_on(port, dir.path().join("server2.log"));
    daemon.wait_until("the server's rest ends", scaled_secs(60), || {
        backends(&mut conn)[0]["retry_in_secs"].is_null()
    });
    let (_, again) = conn.stream("generate", short);
    assert_eq!(again["ok"], true, "{again}");
    let b = backends(&mut conn);
    assert_eq!(
        (&b[0]["state"], &b[0]["requests"]),
        (&json!("up"), &json!(3)),
        "{b:#}"
    );
    assert_eq!(b[1]["requests"], 1, "{b:#}");
}

/// tests/remote_llm/bad_server.py on a free port; killed when dropped.
struct BadServer {
    child: Child,
    port: u16,
}

impl BadServer {
    fn start() -> BadServer {
        use std::io::BufRead;
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/remote_llm/bad_server.py");
        let mut child = Command::new(support::python())
            .arg(script)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
        BadServer { child, port }
    }

    fn url(&self, mode: &str) -> String {
        format!("http://127.0.0.1:{}/{mode}/v1", self.port)
    }
}

impl Drop for BadServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_server_that_sends_no_first_token_in_time_is_left_for_the_local_model() {
    let bad = BadServer::start();
    let llm = format!(
        "{}fallback = [\"local\"]\nfirst_token_timeout_secs = 2\n",
        openai(&bad.url("stall"))
    );
    let (home, _) = home(64, &llm, "");
    let daemon = Daemon::start_in(home);
    let mut conn = daemon.connect().with_timeout(120);
    let (_, reply) = conn.stream("generate", json!({ "prompt": COUNT, "max_tokens": 4 }));
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["result"]["stats"]["generated_tokens"], 4);
    let b = backends(&mut conn);
    assert_eq!(b[0]["state"], "down", "{b:#}");
    assert_eq!(b[0]["fallbacks"], 1, "{b:#}");
    let error = b[0]["last_error"].as_str().unwrap();
    assert!(error.contains("no first token within 2 s"), "{error}");
    assert_eq!(b[1]["state"], "up", "{b:#}");
    let metrics = conn.ok("metrics", json!({}))["text"]
        .as_str()
        .unwrap()
        .to_owned();
    for line in [
        "voxd_llm_backend_up{backend=\"openai\"} 0",
        "voxd_llm_backend_fallbacks_total{backend=\"openai\"} 1",
        "voxd_llm_backend_requests_total{backend=\"local\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

#[test]
fn bad_answers_from_a_server_are_clear_errors_and_the_daemon_keeps_serving() {
    let bad = BadServer::start();
    let cases = [
        ("ok", ""),
        ("hang", "no answer within 2 s"),
        ("stall", "no first token within 2 s"),
        (
            "http500",
            "HTTP 500 Internal Server Error: {\"error\": {\"message\": \"out of memory\"",
        ),
        ("malformed", "an event that is not JSON"),
        ("truncated", "ended the stream before it said it was done"),
        ("huge", "a line longer than 1024 KiB"),
        ("badutf8", "text that is not UTF-8"),
        ("error", "the server failed mid-answer: the slot crashed"),
    ];
    for (mode, expected) in cases {
        let llm = format!("{}first_token_timeout_secs = 2\n", openai(&bad.url(mode)));
        let (home, _) = home(64, &llm, "");
        let daemon = Daemon::start_in(home);
        let mut conn = daemon.connect().with_timeout(60);
        let (_, reply) = conn.stream("generate", json!({ "prompt": "Hi", "max_tokens": 4 }));
        if mode == "ok" {
            assert_eq!(reply["result"]["text"], "Hello world", "{reply}");
            continue;
        }
        assert_eq!(reply["ok"], false, "{mode}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{mode}: {message}");
        // The daemon keeps serving, and the resting backend is a clear
        // error too, at once.
        let (_, again) = conn.stream("generate", json!({ "prompt": "Hi", "max_tokens": 4 }));
        let message = again["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("no language model backend is available now: openai ("),
            "{mode}: {again}"
        );
        assert_eq!(
            conn.ok("status", json!({}))["llm"]["backends"][0]["state"],
            "down"
        );
    }
}

#[test]
fn the_ollama_dialect_answers_through_voxds_own_ollama_api() {
    // The "server": a voxd running the test model, with its HTTP API.
    let (server_home, _) = home(1024, "", "\n[http]\nlisten = \"127.0.0.1:0\"\n");
    let server = Daemon::start_indexed(server_home, 5);
    let addr = server.http_address();
    // The client: no local model at all, the Ollama backend.
    let llm = format!(
        "backend = \"ollama\"\nurl = \"http://{addr}\"\nremote_model = \"gemma3-270m-base\"\n"
    );
    let (home, notes) = home(1024, &llm, "");
    let daemon = Daemon::start_indexed(home, 5);
    let mut conn = daemon.connect().with_timeout(120);
    let (pieces, reply) = ask(&mut conn, WIFI, "generative");
    assert_eq!(reply["ok"], true, "{reply}\n{}", server.log());
    let answer = &reply["result"];
    assert!(
        answer["text"].as_str().unwrap().contains("kettle-47-moon"),
        "{answer:#}"
    );
    let cited = answer["citations"][0]["path"].as_str().unwrap();
    assert!(Path::new(cited).starts_with(&notes), "{answer:#}");
    assert!(pieces.len() > 3, "streamed: {pieces:?}");
    let status = conn.ok("status", json!({}));
    assert_eq!(status["llm"]["model"]["prompt_format"], "completion");
    assert_eq!(status["llm"]["backends"][0]["name"], "ollama");
    assert_eq!(status["llm"]["backends"][0]["state"], "up");
    // The answer came from the server's worker.
    let served = server.connect().ok("status", json!({}));
    assert!(!engine(&served, "llm")["pid"].is_null(), "{served:#}");
}
