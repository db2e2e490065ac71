//! The HTTP API (`[http] listen`) with the clients users have: the real
//! `openai` and `ollama` Python packages (tests/http/*.py) against a daemon
//! on the fixture notes and the test store's Gemma 3 270M; then bad input,
//! limits, the token, and a client that goes away mid-stream.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::wer::Wer;
use support::{http_request, Daemon, Home};

/// The raw model's name: the test store's id of Gemma 3 270M.
const RAW: &str = "gemma3-270m-base";

/// A daemon on the fixture notes and the test model (given Gemma's chat
/// template, so that the raw model can chat), with the HTTP API on a free
/// loopback port and `http` added to `[http]`; its address.
fn start(max_tokens: u32, http: &str) -> (Daemon, String) {
    let (home, _) = support::notes_and_model_home_with(
        max_tokens,
        "chat_template = \"gemma\"",
        &format!("\n[http]\nlisten = \"127.0.0.1:0\"\n{http}"),
    );
    let daemon = Daemon::start_indexed(home, 5);
    let addr = daemon.http_address();
    (daemon, addr)
}

/// Runs one of tests/http/*.py with `args` after the daemon's base URL;
/// its JSON summary.
fn client(script: &str, args: &[&str], daemon: &Daemon) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/http")
        .join(script);
    let out = Command::new(support::python())
        .arg(path)
        .arg(format!("http://{}", daemon.http_address()))
        .args(args)
        .output()
        .expect("the test Python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        daemon.log()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{script} printed no summary ({e}):\n{stdout}"))
}

#[test]
fn the_openai_and_ollama_clients_chat_with_citations_and_embed() {
    let (daemon, _) = start(24, "");
    let openai = client("openai_client.py", &[RAW], &daemon);
    eprintln!("openai: {openai}");
    assert_eq!(openai["models"], json!(["voxd", RAW]));
    assert!(openai["answer"].as_str().unwrap().contains("47-moon"));
    let cited = &openai["citation"];
    assert!(
        cited["path"].as_str().unwrap().ends_with("home.md"),
        "{cited}"
    );
    assert!(cited["start_line"].as_u64() > Some(0), "{cited}");
    assert!(
        cited["snippet"].as_str().unwrap().contains("47-moon"),
        "{cited}"
    );

    let ollama = client("ollama_client.py", &[RAW], &daemon);
    eprintln!("ollama: {ollama}");
    assert_eq!(ollama["dimension"], 384);
    assert!(ollama["answer"].as_str().unwrap().contains("47-moon"));

    // Each request was one of the daemon's requests, on the same engines.
    let status = daemon.connect().ok("status", json!({}));
    let llm = status["engines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "llm")
        .unwrap();
    assert_eq!(llm["restarts"], 0, "{llm}");
}

/// Sends a JSON body to `path`: (status, head, body).
fn post(
    addr: &str,
    path: &str,
    content_type: &str,
    body: &str,
    auth: Option<&str>,
) -> (u16, String, String) {
    let auth = auth.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    http_request(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{auth}Connection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn error_of(body: &str) -> Value {
    serde_json::from_str::<Value>(body).unwrap_or_else(|e| panic!("{e}: {body}"))["error"].clone()
}

#[test]
fn bad_requests_get_precise_errors_in_each_dialect_and_the_daemon_serves_on() {
    let (daemon, addr) = start(8, "max_body_bytes = 4096\nmax_connections = 4\n");
    let json = "application/json";
    let chat = "/v1/chat/completions";

    let (status, _, body) = post(&addr, chat, json, "{\"model\": \"voxd\", ", None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_of(&body)["code"], "invalid_json");
    assert!(
        error_of(&body)["message"].as_str().unwrap().contains("EOF"),
        "{body}"
    );

    let (status, _, body) = post(&addr, chat, "text/plain", "{}", None);
    assert_eq!(status, 415, "{body}");
    assert_eq!(error_of(&body)["type"], "invalid_request_error");

    let big = format!(
        "{{\"model\":\"voxd\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "a".repeat(5000)
    );
    let (status, _, body) = post(&addr, chat, json, &big, None);
    assert_eq!(status, 413, "{body}");
    assert_eq!(error_of(&body)["code"], "body_too_large");

    let (status, _, body) = post(
        &addr,
        chat,
        json,
        r#"{"model":"voxd","messages":[{"role":"tool","content":"x"}]}"#,
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        error_of(&body)["message"]
            .as_str()
            .unwrap()
            .contains("\"tool\""),
        "{body}"
    );

    let (status, _, body) = post(
        &addr,
        chat,
        json,
        r#"{"model":"voxd","messages":[{"role":"user","content":"hi"}],"n":3}"#,
        None,
    );
    assert_eq!(status, 400, "{body}");

    let (status, _, body) = post(
        &addr,
        "/v1/embeddings",
        json,
        r#"{"model":"voxd","input":[]}"#,
        None,
    );
    assert_eq!(status, 400, "{body}");

    let (status, _, body) = post(
        &addr,
        "/api/chat",
        json,
        r#"{"model":"mistral","messages":[]}"#,
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert!(
        error_of(&body).as_str().unwrap().contains("voxd"),
        "Ollama's shape: {body}"
    );

    let (status, _, body) = post(
        &addr,
        "/api/generate",
        json,
        r#"{"model":"voxd","prompt":"x"}"#,
        None,
    );
    assert_eq!(status, 400, "{body}");

    let (status, _, body) = support::http(&addr, "GET", "/v2/everything");
    assert_eq!(status, 404, "{body}");

    // The description lists every endpoint, with the request types.
    let (status, _, body) = support::http(&addr, "GET", "/openapi.json");
    assert_eq!(status, 200, "{body}");
    let description: Value = serde_json::from_str(&body).unwrap();
    let mut paths: Vec<&str> = description["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/api/chat",
            "/api/embed",
            "/api/generate",
            "/api/pull",
            "/api/show",
            "/api/tags",
            "/api/version",
            "/health",
            "/metrics",
            "/v1/audio/speech",
            "/v1/audio/transcriptions",
            "/v1/chat/completions",
            "/v1/completions",
            "/v1/embeddings",
            "/v1/models",
            "/v1/voxd/caption",
            "/v1/voxd/events",
            "/v1/voxd/image",
            "/v1/voxd/note",
            "/v1/voxd/{command}",
        ]
    );
    let chat = &description["components"]["schemas"]["ChatCompletion"];
    assert!(chat.to_string().contains("messages"), "{chat}");

    // A slow client (headers never finished) and four idle connections
    // fill http.max_connections: the next is told 503 at once, and once
    // the slow ones go, requests are served again.
    let mut slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (status, _, body) = support::http(&addr, "GET", "/health");
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_of(&body)["code"], "too_many_connections");
    slow.clear();
    support::wait_until("the slow connections are gone", || {
        support::http(&addr, "GET", "/health").0 == 200
    });

    // A slow client is cut off at the header timeout.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
    stalled
        .set_read_timeout(Some(support::scaled_secs(60)))
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(
        started.elapsed() < support::scaled_secs(30),
        "{:?}",
        started.elapsed()
    );

    assert_eq!(daemon.connect().ok("ping", json!({}))["pong"], true);
}

#[test]
fn with_a_token_every_endpoint_but_health_needs_it() {
    let home = Home::new("");
    let (ok, token, err) = home.run(&["http", "token"]);
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    assert_eq!(token.len(), 64);
    let file = home.path().join("config/voxd/http.token");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        home.run(&["http", "token"]).1.trim(),
        token,
        "the same token again"
    );
    std::fs::write(
        home.path().join("voxd.toml"),
        support::echo_engines_config("\n[http]\nlisten = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    let daemon = Daemon::start_in(home);
    let addr = daemon.http_address();

    assert_eq!(support::http(&addr, "GET", "/health").0, 200);
    for path in ["/v1/models", "/api/tags", "/metrics"] {
        let (status, head, body) = http_request(
            &addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(
            support::header(&head, "www-authenticate").as_deref(),
            Some("Bearer")
        );
    }
    let get = |auth: &str| {
        http_request(
            &addr,
            &format!("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"),
        )
        .0
    };
    assert_eq!(get(&format!("Bearer {token}")), 200);
    assert_eq!(get(&format!("Bearer {token}0")), 401);
    assert_eq!(get(&token), 401, "a bare token is not a bearer token");
    let (status, _, body) = post(&addr, "/api/chat", "application/json", "{}", None);
    assert_eq!(status, 401);
    assert!(error_of(&body).is_string(), "Ollama's shape: {body}");
}

/// Starts a streamed raw completion and reads its first three chunks.
fn stream_completion(addr: &str) -> TcpStream {
    let body = json!({
        "model": RAW, "prompt": "1, 2, 3, 4, 5,", "stream": true
    })
    .to_string();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    stream
        .set_read_timeout(Some(support::scaled_secs(120)))
        .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while seen.matches("data: {").count() < 3 {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("text/event-stream"), "{seen}");
    stream
}

#[test]
fn a_client_leaving_mid_stream_cancels_and_shutdown_ends_streams_cleanly() {
    // Uncancelled, this reply would run for thousands of tokens.
    let (mut daemon, addr) = start(1_000_000, "");
    let stream = stream_completion(&addr);
    let mut conn = daemon.connect();
    let busy = |conn: &mut support::Conn| {
        let status = conn.ok("status", json!({}));
        status["engines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "llm" && e["state"] == "busy")
    };
    assert!(busy(&mut conn), "generating while the client reads");
    drop(stream);
    support::wait_until_within("the generation stops", support::scaled_secs(10), || {
        !busy(&mut conn)
    });
    // The same worker serves the next request at once.
    let next = conn.ok("generate", json!({ "prompt": "Hello", "max_tokens": 2 }));
    assert_eq!(next["stats"]["generated_tokens"], 2);
    let status = conn.ok("status", json!({}));
    assert!(
        status["engines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["restarts"] == 0),
        "{status}"
    );

    // A stream still running at shutdown gets the grace period, then ends
    // with an error event and the terminator, not cut off.
    let mut stream = stream_completion(&addr);
    let started = Instant::now();
    conn.ok("shutdown", json!({}));
    let mut rest = String::new();
    let _ = stream.read_to_string(&mut rest);
    assert!(rest.contains("shutting_down"), "{rest}");
    assert!(rest.contains("data: [DONE]"), "{rest}");
    assert!(
        started.elapsed() < support::scaled_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(daemon.wait_exit().success());
}

#[test]
fn transcriptions_and_streamed_speech_through_the_openai_client() {
    let (daemon, _) = start(8, "");
    let clips = support::test_audio().join("piper");
    let out = tempfile::tempdir().unwrap();
    let summary = client(
        "audio_client.py",
        &[clips.to_str().unwrap(), out.path().to_str().unwrap()],
        &daemon,
    );
    eprintln!("audio: {}", summary["speech"]);

    // Whisper over HTTP within tests/stt.rs's bound for these clips.
    let references = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stt/sentences.txt"),
    )
    .unwrap();
    let references: Vec<&str> = references
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let heard = summary["transcripts"].as_array().unwrap();
    assert_eq!(heard.len(), references.len());
    let mut wer = Wer::default();
    for (reference, text) in references.iter().zip(heard) {
        wer.add(reference, text.as_str().unwrap());
    }
    wer.assert_near("over /v1/audio/transcriptions", 0.030, 2.0 / 198.0);

    // The speech, streamed: its first bytes came well before its end.
    let speech = &summary["speech"];
    let (first, total) = (
        speech["first_byte_s"].as_f64().unwrap(),
        speech["total_s"].as_f64().unwrap(),
    );
    assert!(
        first < 0.8 * total,
        "first byte at {first:.2} s of {total:.2} s"
    );

    // What Whisper hears of it is what was said. A streamed WAV's sizes
    // say "unknown"; written down, they are known.
    let path = out.path().join("speech.wav");
    let mut wav = std::fs::read(&path).unwrap();
    let len = wav.len() as u32;
    wav[4..8].copy_from_slice(&(len - 8).to_le_bytes());
    wav[40..44].copy_from_slice(&(len - 44).to_le_bytes());
    std::fs::write(&path, wav).unwrap();
    let text = daemon.connect().ok("transcribe", json!({ "path": path }))["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut wer = Wer::default();
    let said = speech["said"].as_str().unwrap();
    wer.add(said, &text);
    wer.assert_near("of /v1/audio/speech", 0.0, 2.0 / 20.0);
}

#[test]
fn voxd_commands_events_and_a_hundred_chats_at_once() {
    let vision = format!(
        "\n[vision]\nmodel = {:?}\nidle_unload_secs = 0\n",
        support::tiny_blip_model().display().to_string()
    );
    let (daemon, addr) = start(8, &vision);
    let json = "application/json";

    // An uploaded image's caption is the one `caption` gives for its file.
    let mut png = std::io::Cursor::new(Vec::new());
    support::tiny_blip::test_image(0, 96, 64)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let png = png.into_inner();
    let file = daemon.home.path().join("a.png");
    std::fs::write(&file, &png).unwrap();
    let expected = daemon.connect().ok("caption", json!({ "paths": [file] }))["captions"][0]
        ["caption"]
        .clone();
    let upload = |bytes: &[u8]| {
        let mut body = b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n".to_vec();
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n--b0undary--\r\n");
        let head = format!(
            "POST /v1/voxd/caption HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (head.split(' ').nth(1).unwrap().to_owned(), body.to_owned())
    };
    let (status, body) = upload(&png);
    assert_eq!(status, "200", "{body}");
    let captioned: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(captioned["caption"], expected, "{body}");
    assert_eq!(
        (captioned["width"].as_u64(), captioned["format"].as_str()),
        (Some(96), Some("png"))
    );
    let (status, body) = upload(b"GIF89a not really");
    assert_eq!(status, "400", "{body}");
    assert!(body.contains("cannot caption this image"), "{body}");

    // The daemon's events as server-sent events, while a command runs.
    let mut events = TcpStream::connect(&addr).unwrap();
    write!(
        events,
        "GET /v1/voxd/events?events=rag. HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    events
        .set_read_timeout(Some(support::scaled_secs(60)))
        .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("text/event-stream") {
        let n = events.read(&mut buf).unwrap();
        assert!(n > 0, "{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let (status, _, body) = post(&addr, "/v1/voxd/rag", json, r#"{"action":"off"}"#, None);
    assert_eq!(status, 200, "{body}");
    while !seen.contains("event: rag.state") {
        let n = events.read(&mut buf).unwrap();
        assert!(n > 0, "{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains(r#""enabled":false"#), "{seen}");
    drop(events);
    post(&addr, "/v1/voxd/rag", json, r#"{"action":"on"}"#, None);

    let (status, _, body) = support::http(&addr, "GET", "/v1/voxd/status");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["profile"],
        "tiny"
    );
    let search = r#"{"action":"search","query":"wifi password"}"#;
    let (status, _, body) = post(&addr, "/v1/voxd/notes", json, search, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("47-moon"), "{body}");
    let (status, _, body) = post(
        &addr,
        "/v1/voxd/say",
        json,
        r#"{"text":"hi","wav":"/tmp/x.wav"}"#,
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("daemon's machine"), "{body}");
    let (status, _, body) = post(&addr, "/v1/voxd/shutdown", json, "{}", None);
    assert_eq!(status, 404, "{body}");

    // A hundred chats at once: each answered, or refused with 503 past
    // http.max_connections (64); none hangs.
    let chat = json!({
        "model": "voxd",
        "messages": [{"role": "user", "content": "What is the wifi password?"}],
        "voxd": {"mode": "extractive"},
    })
    .to_string();
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..100)
            .map(|_| {
                s.spawn(|| {
                    let (status, _, body) = post(&addr, "/v1/chat/completions", json, &chat, None);
                    (status, body)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let answered = answers.iter().filter(|(s, _)| *s == 200).count();
    for (status, body) in &answers {
        match status {
            200 => assert!(body.contains("47-moon"), "{body}"),
            503 => assert_eq!(error_of(body)["code"], "too_many_connections"),
            other => panic!("{other}: {body}"),
        }
    }
    assert!(answered >= 64, "{answered} of 100 answered");
    eprintln!("{answered} of 100 concurrent chats answered, the rest told 503");
    assert_eq!(daemon.connect().ok("ping", json!({}))["pong"], true);
}
