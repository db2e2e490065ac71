//! The language model end to end: a real `voxd serve`, the real `voxd-llm`
//! worker and the real Gemma 3 270M base GGUF from the test model store,
//! driven through the control socket. Assertions are on mechanics
//! (streaming, stop strings, caps, cancellation, cache reuse, templates,
//! crashes, bad files), never on what the base model happens to answer.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::voice::engine;
use support::{llm_config, test_model, wait_until, Conn, Daemon, Home};

const MODEL_ID: &str = "gemma3-270m-base";
const GGUF: &str = "gemma-3-270m-q4_k_m.gguf";

fn gguf() -> PathBuf {
    test_model(MODEL_ID).join(GGUF)
}

/// A daemon whose `llm` role is the test store's Gemma; `extra` goes into
/// `[engines.llm]`.
fn config(extra: &str) -> String {
    llm_config(64, 2048, extra)
}

/// One `generate` request: its `llm.token` texts and its final reply.
fn generate(conn: &mut Conn, args: Value) -> (Vec<String>, Value) {
    let (events, reply) = conn.stream("generate", args);
    let pieces = events
        .iter()
        .map(|msg| {
            assert_eq!(msg["event"], "llm.token", "unexpected event {msg}");
            msg["data"]["text"].as_str().expect("text").to_owned()
        })
        .collect();
    (pieces, reply)
}

/// The result of a `generate` that must succeed.
fn generated(conn: &mut Conn, args: Value) -> Value {
    let (pieces, reply) = generate(conn, args);
    assert_eq!(reply["ok"], json!(true), "generate failed: {reply}");
    let result = reply["result"].clone();
    assert_eq!(
        pieces.concat(),
        result["text"].as_str().expect("text"),
        "the streamed pieces make up the reply's text"
    );
    result
}

fn llm_pid(conn: &mut Conn) -> Value {
    engine(&conn.ok("status", json!({})), "llm")["pid"].clone()
}

const LIST: &str = "Shopping list:\n1. apples\n2. bread\n3. milk\n4.";
const STORY: &str = "Once upon a time, in a small village by the sea, there lived";

#[test]
fn tokens_stream_before_the_reply_and_status_shows_the_model() {
    let daemon = Daemon::start(&config(""));
    let mut conn = daemon.connect();
    let before = conn.ok("status", json!({}));
    assert_eq!(before["llm"]["model"], Value::Null, "nothing loaded yet");

    let (pieces, reply) = generate(&mut conn, json!({ "prompt": STORY, "max_tokens": 12 }));
    assert_eq!(reply["ok"], json!(true), "{reply}");
    assert!(
        pieces.len() >= 2,
        "several token events come before the reply: {pieces:?}"
    );
    let stats = &reply["result"]["stats"];
    assert!(stats["prompt_tokens"].as_u64().unwrap() > 5, "{stats}");
    assert_eq!(
        stats["cached_tokens"],
        json!(0),
        "a fresh worker has no cache"
    );
    let n = stats["generated_tokens"].as_u64().unwrap();
    assert!((1..=12).contains(&n), "{stats}");

    let status = conn.ok("status", json!({}));
    let model = &status["llm"]["model"];
    assert_eq!(model["prompt_format"], "completion", "{model}");
    assert_eq!(model["chat_template"], Value::Null);
    assert_eq!(model["quantization"], "Q4_K_M");
    assert_eq!(model["context"], json!(2048));
    assert_eq!(model["path"], json!(gguf()));
    assert_eq!(status["llm"]["last_reply"], *stats);

    // The CLI streams the same greedy text to stdout as a socket request
    // made in the same cache state (all but the prompt's last token cached;
    // llama.cpp's numbers, and so greedy choices, may differ slightly
    // between a cold and a warm prompt).
    let (ok, stdout, stderr) = daemon.home.run(&["generate", STORY, "--max-tokens", "12"]);
    assert!(ok, "voxd generate failed: {stderr}");
    let again = generated(&mut conn, json!({ "prompt": STORY, "max_tokens": 12 }));
    assert_eq!(
        stdout.strip_suffix('\n').unwrap_or(&stdout),
        again["text"].as_str().unwrap()
    );
    let (ok, stdout, _) = daemon.home.run(&["status"]);
    assert!(ok);
    assert!(stdout.contains("prompt format completion"), "{stdout}");
}

#[test]
fn greedy_generation_is_deterministic() {
    let daemon = Daemon::start(&config("persist_cache = false"));
    let mut conn = daemon.connect();
    let args = json!({ "prompt": STORY, "max_tokens": 24 });
    let first = generated(&mut conn, args.clone());
    // A fresh worker that keeps nothing on disk, so the second run starts
    // from the same (empty) cache.
    conn.ok("engine", json!({ "name": "llm", "action": "stop" }));
    let second = generated(&mut conn, args);
    assert_eq!(first["text"], second["text"]);
    assert_eq!(second["stats"]["cached_tokens"], json!(0));
    assert!(!first["text"].as_str().unwrap().is_empty());
    assert!(!daemon.home.path().join("cache/voxd/llm").exists());
}

/// The files in the folder where the worker keeps its KV cache.
fn kept_caches(home: &Home) -> Vec<PathBuf> {
    let dir = home.path().join("cache/voxd/llm");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn a_restarted_worker_resumes_from_the_kv_cache_it_kept_and_refuses_a_damaged_one() {
    use std::os::unix::fs::PermissionsExt;
    let daemon = Daemon::start(&config(""));
    let mut conn = daemon.connect();
    let args = json!({ "prompt": STORY, "max_tokens": 12 });
    let cold = generated(&mut conn, args.clone());
    assert_eq!(cold["stats"]["cached_tokens"], json!(0));
    assert!(kept_caches(&daemon.home).is_empty(), "kept only on stop");

    // Stopping the worker (as idle unload and the memory budget do) keeps
    // its cache in one private file...
    conn.ok("engine", json!({ "name": "llm", "action": "stop" }));
    let kept = kept_caches(&daemon.home);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&kept[0]), 0o600);
    assert_eq!(mode(kept[0].parent().unwrap()), 0o700);
    assert!(kept[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("gemma-3-270m-q4_k_m-"));

    // ...which the next worker reads back: only the prompt's last token is
    // decoded, as in a worker that never stopped.
    let restored = generated(&mut conn, args.clone());
    let prompt = restored["stats"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(restored["stats"]["cached_tokens"], json!(prompt - 1));
    let warm = generated(&mut conn, args.clone());
    assert_eq!(warm["stats"]["cached_tokens"], json!(prompt - 1));
    assert_eq!(restored["text"], warm["text"]);

    // A damaged file is refused and deleted: the next worker starts cold
    // and answers as the first did.
    conn.ok("engine", json!({ "name": "llm", "action": "stop" }));
    let kept = kept_caches(&daemon.home);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let bytes = std::fs::read(&kept[0]).unwrap();
    std::fs::write(&kept[0], &bytes[..bytes.len() / 2]).unwrap();
    let again = generated(&mut conn, args);
    assert_eq!(again["stats"]["cached_tokens"], json!(0));
    assert_eq!(again["text"], cold["text"]);
    assert!(kept_caches(&daemon.home).is_empty());
}

#[test]
fn generation_stops_before_a_stop_string_and_never_returns_part_of_it() {
    let daemon = Daemon::start(&config(""));
    let mut conn = daemon.connect();
    // Every run below then starts from the same cache state (the prompt
    // but its last token), so greedy decoding gives the same tokens.
    generated(&mut conn, json!({ "prompt": LIST, "max_tokens": 1 }));
    let free = generated(&mut conn, json!({ "prompt": LIST, "max_tokens": 40 }));
    let text = free["text"].as_str().unwrap().to_owned();
    let Some(at) = text.find('\n') else {
        panic!("the list continuation has no line break to stop at: {text:?}");
    };
    // A multi-character stop string that starts mid-token and spans tokens.
    let stop: String = text[at..].chars().take(3).collect();

    let stopped = generated(
        &mut conn,
        json!({ "prompt": LIST, "max_tokens": 40, "stop": ["never-appears", stop] }),
    );
    assert_eq!(
        stopped["text"],
        json!(text[..at]),
        "text up to the stop string"
    );
    assert_eq!(stopped["stats"]["finish"], "stop");

    let line = generated(
        &mut conn,
        json!({ "prompt": LIST, "max_tokens": 40, "stop": ["\n"] }),
    );
    assert_eq!(line["text"], json!(text[..at]));
    assert!(!line["text"].as_str().unwrap().contains('\n'));
}

#[test]
fn replies_are_capped_by_the_request_and_by_the_profile() {
    let daemon = Daemon::start(&config(""));
    let mut conn = daemon.connect();
    let five = generated(&mut conn, json!({ "prompt": STORY, "max_tokens": 5 }));
    assert_eq!(five["stats"]["generated_tokens"], json!(5), "{five}");
    assert_eq!(five["stats"]["finish"], "length");

    // engines.llm.max_tokens = 64 caps a request for more.
    let capped = generated(&mut conn, json!({ "prompt": LIST, "max_tokens": 100000 }));
    let stats = &capped["stats"];
    if stats["finish"] == "length" {
        assert_eq!(stats["generated_tokens"], json!(64), "{stats}");
    } else {
        assert!(stats["generated_tokens"].as_u64().unwrap() < 64, "{stats}");
    }
    let default = generated(&mut conn, json!({ "prompt": STORY }));
    assert!(default["stats"]["generated_tokens"].as_u64().unwrap() <= 64);
}

#[test]
fn closing_the_connection_cancels_generation_at_once() {
    // Uncancelled, this reply would run for thousands of tokens.
    let daemon = Daemon::start(&llm_config(1_000_000, 8192, ""));
    let mut watcher = daemon.connect();
    let mut conn = daemon.connect();
    let id = conn.send("generate", json!({ "prompt": LIST, "stop": [] }));
    conn.wait_tokens(&id, 3);
    let pid = llm_pid(&mut watcher);
    drop(conn);

    // The worker ends the cancelled reply (else the host would kill it after
    // health_timeout_secs and a new pid would answer) and serves the next.
    let next = generated(&mut watcher, json!({ "prompt": STORY, "max_tokens": 4 }));
    assert_eq!(next["stats"]["generated_tokens"], json!(4));
    assert_eq!(llm_pid(&mut watcher), pid, "the same worker, not killed");
    let status = watcher.ok("status", json!({}));
    let llm = engine(&status, "llm");
    assert_eq!(llm["restarts"], json!(0), "{llm}");
}

#[test]
fn a_shared_prompt_prefix_is_served_from_the_kv_cache() {
    let daemon = Daemon::start(&config(""));
    let mut conn = daemon.connect();
    let notes = "Notes. ".to_owned()
        + &"The blue door on the north side of the old mill opens only in winter. ".repeat(12);
    let base = generated(&mut conn, json!({ "prompt": notes, "max_tokens": 1 }));
    let prefix = base["stats"]["prompt_tokens"].as_u64().unwrap();
    assert!(prefix > 150, "a long prefix: {prefix} tokens");
    assert_eq!(base["stats"]["cached_tokens"], json!(0));

    let first = format!("{notes}Question: which door opens in winter? Answer:");
    let one = generated(&mut conn, json!({ "prompt": first, "max_tokens": 6 }));
    let cached = one["stats"]["cached_tokens"].as_u64().unwrap();
    assert!(
        cached + 1 >= prefix,
        "the shared prefix ({prefix} tokens) is reused: {}",
        one["stats"]
    );

    // A follow-up turn: the previous prompt and reply are reused entirely.
    let follow = format!(
        "{first}{}\nQuestion: when does it open? Answer:",
        one["text"].as_str().unwrap()
    );
    let two = generated(&mut conn, json!({ "prompt": follow, "max_tokens": 4 }));
    let reused = two["stats"]["cached_tokens"].as_u64().unwrap();
    let earlier = one["stats"]["prompt_tokens"].as_u64().unwrap();
    assert!(
        reused >= earlier,
        "the earlier turn ({earlier} tokens) is reused: {}",
        two["stats"]
    );

    // Nothing in common (after the BOS token): nothing reused.
    let other = generated(&mut conn, json!({ "prompt": STORY, "max_tokens": 1 }));
    assert!(other["stats"]["cached_tokens"].as_u64().unwrap() <= 1);
}

#[test]
fn chat_prompts_are_refused_for_a_model_without_a_template() {
    let daemon = Daemon::start(&config(""));
    let mut conn = daemon.connect();
    let (_, reply) = generate(
        &mut conn,
        json!({ "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4 }),
    );
    assert_eq!(reply["ok"], json!(false), "{reply}");
    assert_eq!(reply["error"]["code"], "no_chat_template");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains(GGUF), "names the model: {message}");
    assert!(message.contains("chat template"), "{message}");
    let status = conn.ok("status", json!({}));
    assert_eq!(status["llm"]["model"]["prompt_format"], "completion");
}

/// A copy of the test GGUF with a Gemma-style chat template added, made with
/// the `gguf` package's own tool (installed by scripts/bootstrap.sh in the
/// tests' Python environment, `$VOXD_TEST_PYTHON`).
fn gguf_with_template(dir: &Path) -> PathBuf {
    let out = dir.join("gemma-with-template.gguf");
    let template = "{% for message in messages %}<start_of_turn>{{ message['role'] }}\n\
                    {{ message['content'] }}<end_of_turn>\n{% endfor %}\
                    {% if add_generation_prompt %}<start_of_turn>model\n{% endif %}";
    let python = std::env::var("VOXD_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("VOXD_TEST_PYTHON is not set: run `bash scripts/bootstrap.sh test`")
    });
    let status = Command::new(python)
        .args([
            "-m",
            "gguf.scripts.gguf_new_metadata",
            "--chat-template",
            template,
        ])
        .arg(gguf())
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("$VOXD_TEST_PYTHON runs");
    assert!(
        status.success(),
        "gguf_new_metadata failed: run scripts/bootstrap.sh test (it installs the gguf package)"
    );
    out
}

#[test]
fn reload_swaps_to_a_gguf_with_a_chat_template() {
    let daemon = Daemon::start(&config(""));
    let mut conn = daemon.connect();
    let plain = generated(&mut conn, json!({ "prompt": "Hello", "max_tokens": 2 }));
    let pid = llm_pid(&mut conn);
    let templated = gguf_with_template(daemon.home.path());

    let reloaded = conn.ok("reload", json!({ "model": templated }));
    assert_eq!(
        reloaded["model"]["prompt_format"], "chat_template",
        "{reloaded}"
    );
    assert_eq!(reloaded["model"]["chat_template"], "model");
    assert_ne!(
        llm_pid(&mut conn),
        pid,
        "a fresh worker holds the new model"
    );

    let chat = generated(
        &mut conn,
        json!({ "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4 }),
    );
    // The template wraps the message in turn markers: more prompt tokens.
    let chat_tokens = chat["stats"]["prompt_tokens"].as_u64().unwrap();
    let plain_tokens = plain["stats"]["prompt_tokens"].as_u64().unwrap();
    assert!(
        chat_tokens >= plain_tokens + 6,
        "{chat_tokens} vs {plain_tokens}"
    );
    let status = conn.ok("status", json!({}));
    assert_eq!(status["llm"]["model"]["prompt_format"], "chat_template");
    assert_eq!(status["llm"]["model"]["path"], json!(templated));

    // Completion prompts still work on a chat model.
    generated(&mut conn, json!({ "prompt": "Hello", "max_tokens": 2 }));
}

#[test]
fn a_template_named_in_the_config_serves_chat_on_a_model_without_one() {
    let daemon = Daemon::start(&config("chat_template = \"gemma\"\n"));
    let mut conn = daemon.connect();
    let chat = generated(
        &mut conn,
        json!({ "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 2 }),
    );
    assert!(
        chat["stats"]["prompt_tokens"].as_u64().unwrap() >= 8,
        "{chat}"
    );
    let status = conn.ok("status", json!({}));
    assert_eq!(status["llm"]["model"]["prompt_format"], "chat_template");
    assert_eq!(status["llm"]["model"]["chat_template"], "config");
}

#[test]
fn a_killed_worker_fails_the_reply_and_the_next_request_restarts_it() {
    let daemon = Daemon::start(&llm_config(100_000, 8192, ""));
    let mut watcher = daemon.connect();
    let mut conn = daemon.connect();
    let id = conn.send("generate", json!({ "prompt": LIST }));
    conn.wait_tokens(&id, 2);
    let pid = llm_pid(&mut watcher);
    let pid_num = pid.as_u64().expect("a worker pid");
    let killed = Command::new("kill")
        .args(["-KILL", &pid_num.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let reply = loop {
        let msg = conn.read().expect("a reply");
        if msg.get("event").is_none() {
            break msg;
        }
    };
    assert_eq!(reply["id"], id);
    assert_eq!(reply["ok"], json!(false), "{reply}");
    assert_eq!(reply["error"]["code"], "engine_failed");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("crashed"),
        "{reply}"
    );

    let next = generated(&mut conn, json!({ "prompt": STORY, "max_tokens": 3 }));
    assert_eq!(next["stats"]["generated_tokens"], json!(3));
    assert_ne!(llm_pid(&mut watcher), pid, "a restarted worker");
}

#[test]
fn bad_model_files_give_clear_errors_naming_the_file() {
    let home = Home::new("");
    let text_file = home.path().join("notes.gguf");
    std::fs::write(&text_file, "this is not a model\n").unwrap();
    let truncated = home.path().join("truncated.gguf");
    let bytes = std::fs::read(gguf()).unwrap();
    std::fs::write(&truncated, &bytes[..1 << 20]).unwrap();
    drop(bytes);
    let missing = home.path().join("missing.gguf");

    std::fs::write(
        home.path().join("voxd.toml"),
        config(&format!("model = \"{}\"\n", text_file.display())),
    )
    .unwrap();
    let daemon = Daemon::start_in(home);
    let mut conn = daemon.connect();
    let (_, reply) = generate(&mut conn, json!({ "prompt": "Hi", "max_tokens": 2 }));
    assert_eq!(reply["error"]["code"], "model_load_failed", "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains(&*text_file.to_string_lossy()), "{message}");
    assert!(message.contains("not a GGUF file"), "{message}");

    for (path, says) in [(&truncated, "could not load"), (&missing, "cannot open")] {
        let reply = conn.request("reload", json!({ "model": path }));
        assert_eq!(reply["error"]["code"], "model_load_failed", "{reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains(&*path.to_string_lossy()), "{message}");
        assert!(message.contains(says), "{message}");
    }
    let status = conn.ok("status", json!({}));
    assert_eq!(status["llm"]["model"], Value::Null);

    // The worker survived all that and serves a good model.
    let good = conn.ok("reload", json!({ "model": gguf() }));
    assert_eq!(good["model"]["prompt_format"], "completion");
    generated(&mut conn, json!({ "prompt": "Hi", "max_tokens": 2 }));
}

// --- `ask` on the real model: the generative path of RAG ------------------

/// A daemon with a copy of the fixture notes and the test model.
fn ask_daemon() -> (Daemon, PathBuf) {
    let (home, notes) = support::notes_and_model_home("debounce_ms = 200\n");
    let daemon = Daemon::start_indexed(home, 5);
    (daemon, notes)
}

/// One `ask`: the text its `ask.token` events leave (after the last
/// `ask.reset`), the resets, and the reply.
fn ask(conn: &mut Conn, args: Value) -> (String, Vec<Value>, Value) {
    let id = conn.send("ask", args);
    let (mut text, mut resets) = (String::new(), Vec::new());
    loop {
        let msg = conn.read().expect("voxd closed the connection");
        if msg["id"] != id {
            continue;
        }
        match msg["event"].as_str() {
            Some("ask.token") => text.push_str(msg["data"]["text"].as_str().unwrap()),
            Some("ask.reset") => {
                text.clear();
                resets.push(msg["data"].clone());
            }
            Some(other) => panic!("unexpected event {other}: {msg}"),
            None => return (text, resets, msg),
        }
    }
}

/// Every citation points at lines of a note that hold its snippet.
fn assert_citations_from_the_notes(answer: &Value, notes: &Path) {
    for c in answer["citations"].as_array().expect("citations") {
        let path = PathBuf::from(c["path"].as_str().unwrap());
        assert!(path.starts_with(notes), "{c}");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let (start, end) = (
            c["line_start"].as_u64().unwrap() as usize,
            c["line_end"].as_u64().unwrap() as usize,
        );
        let span = lines[start - 1..end].join(" ");
        let snippet = c["snippet"].as_str().unwrap();
        let first_words: String = snippet
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(span.contains(&first_words), "{c} not in {span:?}");
    }
}

#[test]
fn ask_answers_generatively_checks_the_answer_and_reuses_the_prompt_prefix() {
    let (daemon, notes) = ask_daemon();
    let mut conn = daemon.connect().with_timeout(120);

    let question = "What is the wifi password?";
    let (streamed, resets, reply) = ask(
        &mut conn,
        json!({ "question": question, "mode": "generative", "session": "s1" }),
    );
    assert_eq!(reply["ok"], json!(true), "{reply}");
    let answer = &reply["result"];
    // What was streamed is the answer, less whitespace at its end (the
    // reply's text is trimmed; a streamed token cannot know it is last).
    assert_eq!(
        streamed.trim_end(),
        answer["text"].as_str().unwrap(),
        "{answer:#}"
    );
    let llm = &answer["llm"];
    assert_eq!(llm["cached_tokens"], json!(0), "a fresh worker: {llm}");
    let first_prompt = llm["prompt_tokens"].as_u64().unwrap();
    assert!(first_prompt > 150, "sources and examples: {llm}");
    assert!(llm["generated_tokens"].as_u64().unwrap() <= 96, "{llm}");
    // The model's own answer stands: supported by the sources, so neither
    // flagged nor withdrawn (greedy decoding on one thread: the same text
    // every run). An unsupported answer replaced by the extractive one is
    // driven exactly in tests/ask_core.rs.
    assert_eq!(answer["mode"], "generative", "{answer:#}");
    assert!(resets.is_empty(), "{resets:?}");
    assert!(answer["flags"].as_array().unwrap().is_empty(), "{answer:#}");
    // The right fact: the door code's note, which the model once answered
    // from, scores too far below the wifi note to be in the prompt
    // (rag.prompt_relative_score).
    assert!(
        answer["text"].as_str().unwrap().contains("kettle-47-moon"),
        "{answer:#}"
    );
    assert_citations_from_the_notes(answer, &notes);
    let status = conn.ok("status", json!({}));
    assert_eq!(status["llm"]["model"]["prompt_format"], "completion");
    assert_eq!(status["llm"]["last_reply"], *llm);

    // A follow-up in the same session: the instructions and worked examples
    // that open every completion prompt come from the KV cache, and the
    // earlier turn is in the prompt.
    let (_, _, reply) = ask(
        &mut conn,
        json!({ "question": "And when is Maria's birthday?", "mode": "generative", "session": "s1" }),
    );
    assert_eq!(reply["ok"], json!(true), "{reply}");
    let llm = &reply["result"]["llm"];
    let cached = llm["cached_tokens"].as_u64().unwrap();
    assert!(cached >= 100, "the shared prompt prefix is reused: {llm}");
    assert!(cached < llm["prompt_tokens"].as_u64().unwrap(), "{llm}");
    assert_citations_from_the_notes(&reply["result"], &notes);
    let turns = conn.ok("history", json!({ "session": "s1" }))["turns"].clone();
    assert_eq!(turns.as_array().unwrap().len(), 2, "{turns:#}");
    assert_eq!(turns[0]["question"], question);
    assert_eq!(turns[0]["answer"], answer["text"]);

    // auto uses the model too (nothing failed).
    let (_, _, reply) = ask(&mut conn, json!({ "question": question, "mode": "auto" }));
    let auto = &reply["result"];
    assert!(auto["llm"]["prompt_tokens"].as_u64().is_some(), "{auto:#}");
    assert!(!auto["flags"]
        .as_array()
        .unwrap()
        .contains(&json!("llm_unavailable")));
}

#[test]
fn auto_answers_extractively_when_the_worker_dies_and_the_next_ask_restarts_it() {
    let (daemon, notes) = ask_daemon();
    let mut conn = daemon.connect().with_timeout(120);
    let mut watcher = daemon.connect().with_timeout(120);
    let question = "What is the front door code?";
    let (_, _, warm) = ask(
        &mut conn,
        json!({ "question": question, "mode": "generative" }),
    );
    assert_eq!(warm["ok"], json!(true), "{warm}");
    let pid = llm_pid(&mut watcher).as_u64().expect("a worker pid");

    // Freeze the worker, ask, and kill it once the ask is at the worker.
    signal(pid, "-STOP");
    let id = conn.send("ask", json!({ "question": question, "mode": "auto" }));
    wait_until("the ask reaches the worker", || {
        engine(&watcher.ok("status", json!({})), "llm")["state"] == "busy"
    });
    signal(pid, "-KILL");
    let reply = loop {
        let msg = conn.read().expect("a reply");
        if msg["id"] == id && msg.get("event").is_none() {
            break msg;
        }
    };
    assert_eq!(reply["ok"], json!(true), "{reply}");
    let answer = &reply["result"];
    assert_eq!(answer["mode"], "extractive", "{answer:#}");
    assert_eq!(answer["flags"], json!(["llm_unavailable"]));
    assert!(answer["text"]
        .as_str()
        .unwrap()
        .starts_with("From home.md: "));
    assert!(answer["text"].as_str().unwrap().contains("4417"));
    assert_citations_from_the_notes(answer, &notes);
    assert!(answer.get("llm").is_none(), "{answer:#}");

    // The next ask restarts the worker and uses the model again.
    let (_, _, reply) = ask(
        &mut conn,
        json!({ "question": question, "mode": "generative" }),
    );
    assert_eq!(reply["ok"], json!(true), "{reply}");
    assert!(
        reply["result"]["llm"]["generated_tokens"].is_u64(),
        "{reply}"
    );
    assert_ne!(llm_pid(&mut watcher), json!(pid), "a restarted worker");
}

fn signal(pid: u64, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}
