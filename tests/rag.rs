//! RAG end to end through the real daemon: real MiniLM embeddings, real
//! SQLite, real files in a temporary notes folder copied from
//! `tests/fixtures/notes` (facts no model knows), the real watcher.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use support::{scaled_secs, test_model, wait_until_within, Conn, Daemon, Home};

/// (question, file, fact the answer must contain).
const FACTS: &[(&str, &str, &str)] = &[
    ("What is the wifi password?", "home.md", "kettle-47-moon"),
    ("What is the wifi network called?", "home.md", "Heron"),
    ("When is Maria's birthday?", "people.md", "14 March"),
    ("Who planted the apple tree?", "garden.txt", "Bertram"),
    ("What is the car's licence plate?", "car.md", "KX73 ZQP"),
    (
        "How much flour goes into the lemon cake?",
        "recipes/lemon-cake.md",
        "340 grams",
    ),
    ("What instrument does Tomasz play?", "people.md", "bassoon"),
    ("What is the front door code?", "home.md", "4417"),
];

/// Questions the notes do not answer.
const UNKNOWN: &[&str] = &[
    "What is the capital of Peru?",
    "How do I reset my bank card PIN?",
    "Who won the football world cup in 1998?",
    "What is my dentist's phone number?",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes")
}

/// A home whose notes folder is a copy of the fixture (config via `extra`)
/// and whose daemon has no language model (`models.llm = []`, though the test store holds one):
/// these tests pin down what voxd answers without a model; tests/llm.rs
/// runs the generative path.
fn home_with_notes(extra: &str) -> (Home, PathBuf) {
    let store = test_model("all-minilm-l6-v2")
        .parent()
        .unwrap()
        .to_path_buf();
    let home = Home::new("");
    let notes = home.path().join("notes");
    support::copy_dir(&fixtures(), &notes);
    let config = format!(
        "[models]\ndir = {:?}\nsources = [\"pypi\"]\nllm = []\n\n[rag]\nnotes = [{:?}]\ndebounce_ms = 200\n{extra}",
        store.display().to_string(),
        notes.display().to_string()
    );
    fs::write(home.path().join("voxd.toml"), config).unwrap();
    (home, notes)
}

fn wait_indexed(daemon: &Daemon, files: u64) -> Value {
    let mut conn = daemon.connect();
    let mut status = Value::Null;
    daemon.wait_until(
        &format!("{files} files are indexed"),
        scaled_secs(300),
        || {
            status = conn.ok("notes", json!({ "action": "status" }));
            status["files"] == json!(files) && status["indexing"] == json!(false)
        },
    );
    status
}

fn ask(conn: &mut Conn, question: &str, mode: &str) -> Value {
    conn.ok("ask", json!({ "question": question, "mode": mode }))
}

/// The 1-based line of `file` that contains `fact`.
fn line_of(notes: &Path, file: &str, fact: &str) -> u64 {
    let text = fs::read_to_string(notes.join(file)).unwrap();
    text.lines()
        .position(|l| l.contains(fact))
        .unwrap_or_else(|| panic!("{fact} not in {file}")) as u64
        + 1
}

fn assert_cites(answer: &Value, notes: &Path, file: &str, fact: &str) {
    let line = line_of(notes, file, fact);
    let citations = answer["citations"].as_array().expect("citations");
    assert!(
        citations.iter().any(|c| {
            c["path"] == json!(notes.join(file).display().to_string())
                && c["line_start"].as_u64().unwrap() <= line
                && line <= c["line_end"].as_u64().unwrap()
        }),
        "no citation of {file}:{line}: {answer:#}"
    );
}

#[test]
fn every_fact_is_retrieved_cited_and_answered_and_unknowns_abstain() {
    let (home, notes) = home_with_notes("");
    let daemon = Daemon::start_in(home);
    let mut conn = daemon.connect();
    let status = wait_indexed(&daemon, 5);
    assert_eq!(status["embedder"], "all-minilm-l6-v2", "{status:#}");
    assert_eq!(status["chunks"], status["embedded_chunks"]);
    // Every sentence gets its embedding once the files are in, and it is
    // the one the embedder gives the sentence under its heading.
    wait_until_within("every sentence is embedded", scaled_secs(120), || {
        let s = conn.ok("notes", json!({ "action": "status" }));
        s["sentences"].as_u64() > Some(0) && s["sentences"] == s["embedded_sentences"]
    });
    let (heading, text, blob): (String, String, Vec<u8>) = rusqlite::Connection::open(index_file(
        &daemon.home,
    ))
    .unwrap()
    .query_row(
        "SELECT c.heading, s.text, s.vector FROM sentences s JOIN chunks c ON c.id = s.chunk_id
             WHERE s.text LIKE '%kettle-47-moon%'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap();
    let stored: Vec<f32> = blob
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let embedder = voxd::rag::embed::Embedder::load(&test_model("all-minilm-l6-v2")).unwrap();
    let fresh = embedder
        .embed(&[voxd::rag::chunk::sentence_embed_text(&heading, &text).as_str()])
        .unwrap();
    let similarity = voxd::rag::embed::cosine(&stored, &fresh[0]);
    assert!(similarity > 0.9999, "{heading:?} {text:?}: {similarity}");

    for (question, file, fact) in FACTS {
        let hits =
            conn.ok("notes", json!({ "action": "search", "query": question }))["hits"].clone();
        let top = &hits[0];
        assert_eq!(top["name"], json!(file), "{question}: {hits:#}");
        let line = line_of(&notes, file, fact);
        assert!(
            top["line_start"].as_u64().unwrap() <= line
                && line <= top["line_end"].as_u64().unwrap(),
            "{question}: top hit does not span line {line}: {top:#}"
        );

        let answer = ask(&mut conn, question, "extractive");
        assert_eq!(answer["mode"], "extractive", "{answer:#}");
        let text = answer["text"].as_str().unwrap();
        assert!(text.contains(fact), "{question}: {text}");
        assert!(text.starts_with(&format!("From {file}: ")), "{text}");
        assert_cites(&answer, &notes, file, fact);

        // No language model in this daemon: auto answers extractively, flagged.
        let auto = ask(&mut conn, question, "auto");
        assert_eq!(auto["mode"], "extractive");
        assert_eq!(auto["text"], answer["text"]);
        assert!(auto["flags"]
            .as_array()
            .unwrap()
            .contains(&json!("llm_unavailable")));
    }
    for question in UNKNOWN {
        for mode in ["extractive", "auto"] {
            let answer = ask(&mut conn, question, mode);
            assert_eq!(answer["mode"], "abstained", "{question}: {answer:#}");
            assert_eq!(answer["text"], "I don't find that in your notes.");
            assert_eq!(answer["citations"], json!([]));
        }
    }
    // An explicit generative request with no model is a clear error.
    let reply = conn.request(
        "ask",
        json!({ "question": FACTS[0].0, "mode": "generative" }),
    );
    assert_eq!(reply["error"]["code"], "no_model", "{reply}");
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no language model"));
}

#[test]
fn the_cli_streams_the_answer_then_prints_citation_lines() {
    let (home, notes) = home_with_notes("");
    let daemon = Daemon::start_in(home);
    wait_indexed(&daemon, 5);
    let (ok, stdout, stderr) =
        daemon
            .home
            .run(&["ask", "What is the wifi password?", "--mode", "extractive"]);
    assert!(ok, "{stderr}");
    let line = line_of(&notes, "home.md", "kettle-47-moon");
    let path = notes.join("home.md").display().to_string();
    assert_eq!(
        stdout,
        format!(
            "From home.md: \"The wifi password is kettle-47-moon.\"\n\n[1] {path}:{line}-{line}\n"
        )
    );
    let (ok, stdout, _) = daemon.home.run(&["ask", "What is the capital of Peru?"]);
    assert!(ok);
    assert_eq!(stdout, "I don't find that in your notes.\n");

    let (ok, stdout, stderr) = daemon.home.run(&["notes", "search", "lemon cake flour"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "[1] {}:",
            notes.join("recipes/lemon-cake.md").display()
        )),
        "{stdout}"
    );
    let (ok, stdout, _) = daemon.home.run(&["notes", "status"]);
    assert!(ok);
    assert!(stdout.contains("files:       5"), "{stdout}");
    let (ok, stdout, _) = daemon.home.run(&["notes", "reindex"]);
    assert!(ok);
    assert!(
        stdout.starts_with("5 files: 0 indexed (0 chunks), 5 unchanged"),
        "{stdout}"
    );
}

#[test]
fn edits_deletes_renames_and_temp_files_reach_the_index() {
    let (home, notes) = home_with_notes("");
    let daemon = Daemon::start_in(home);
    let mut conn = daemon.connect();
    wait_indexed(&daemon, 5);
    let door = "What is the front door code?";
    assert!(ask(&mut conn, door, "extractive")["text"]
        .as_str()
        .unwrap()
        .contains("4417"));

    // Newer content wins: an update added below the old statement.
    let home_md = notes.join("home.md");
    let mut text = fs::read_to_string(&home_md).unwrap();
    text = text.replace(
        "The spare key hangs",
        "Updated: the front door code is now 5820.\nThe spare key hangs",
    );
    fs::write(&home_md, &text).unwrap();
    let mut answer = Value::Null;
    wait_until_within("the new door code is answered", scaled_secs(60), || {
        answer = ask(&mut conn, door, "extractive");
        answer["text"].as_str().unwrap().contains("5820")
    });
    assert!(
        !answer["text"].as_str().unwrap().contains("4417"),
        "{answer:#}"
    );
    assert_cites(&answer, &notes, "home.md", "5820");
    assert!(answer["flags"]
        .as_array()
        .unwrap()
        .contains(&json!("newer_content_wins")));

    // Deleted: no longer retrieved.
    fs::remove_file(notes.join("garden.txt")).unwrap();
    wait_until_within("garden.txt leaves the index", scaled_secs(60), || {
        let hits = conn.ok(
            "notes",
            json!({ "action": "search", "query": "apple tree Bertram", "limit": 10 }),
        );
        hits["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["name"] != "garden.txt")
    });
    let answer = ask(&mut conn, "Who planted the apple tree?", "extractive");
    assert!(
        !answer["text"].as_str().unwrap().contains("Bertram"),
        "{answer:#}"
    );

    // Renamed (into a new folder): cited under the new path.
    fs::create_dir(notes.join("vehicles")).unwrap();
    fs::rename(notes.join("car.md"), notes.join("vehicles/car-notes.md")).unwrap();
    wait_until_within(
        "the renamed note is cited under its new name",
        scaled_secs(60),
        || {
            let a = ask(&mut conn, "What is the car's licence plate?", "extractive");
            a["citations"][0]["name"] == "vehicles/car-notes.md"
        },
    );
    let status = conn.ok("notes", json!({ "action": "status" }));
    assert_eq!(status["files"], 4, "{status:#}");

    // Editor temp files and hidden files never reach the index.
    for temp in [".home.md.swp", "home.md~", ".#home.md", "4913"] {
        fs::write(
            notes.join(temp),
            "zanzibarquux appears only in temp files\n",
        )
        .unwrap();
    }
    // A real note written after them proves the watcher has seen them all.
    fs::write(
        notes.join("later.md"),
        "The boiler was serviced by Oksana Petrenko.\n",
    )
    .unwrap();
    wait_until_within("later.md is indexed", scaled_secs(60), || {
        let hits = conn.ok(
            "notes",
            json!({ "action": "search", "query": "boiler serviced" }),
        );
        hits["hits"][0]["name"] == "later.md"
    });
    let hits = conn.ok(
        "notes",
        json!({ "action": "search", "query": "zanzibarquux", "limit": 20 }),
    );
    for hit in hits["hits"].as_array().unwrap() {
        assert!(
            !hit["text"].as_str().unwrap().contains("zanzibarquux"),
            "{hit:#}"
        );
    }
    assert_eq!(conn.ok("notes", json!({ "action": "status" }))["files"], 5);
}

#[test]
fn binary_and_huge_files_are_skipped_with_a_reason() {
    let (home, notes) = home_with_notes("max_file_kb = 64\n");
    let mut binary = b"PNG\x00\x01\x02 not text".to_vec();
    binary.extend((0..=255u8).cycle().take(4096));
    fs::write(notes.join("scan.txt"), &binary).unwrap();
    fs::write(notes.join("latin1.md"), b"caf\xe9 cr\xe8me\n").unwrap();
    fs::write(
        notes.join("huge.md"),
        "A very long note line.\n".repeat(4000),
    )
    .unwrap();
    let daemon = Daemon::start_in(home);
    let mut conn = daemon.connect();
    let status = wait_indexed(&daemon, 5);
    let skipped = status["skipped"].as_array().unwrap();
    let reason = |name: &str| {
        skipped
            .iter()
            .find(|s| s["path"].as_str().unwrap().ends_with(name))
            .map(|s| s["reason"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{name} not skipped: {status:#}"))
    };
    assert!(reason("scan.txt").contains("binary"));
    assert!(reason("latin1.md").contains("not UTF-8"));
    assert!(reason("huge.md").contains("larger than rag.max_file_kb"));
    assert!(daemon.log().contains("skipping a file in the notes folder"));
    // The rest still works.
    let a = ask(&mut conn, "What is the wifi password?", "extractive");
    assert!(a["text"].as_str().unwrap().contains("kettle-47-moon"));
}

#[test]
fn rag_switch_sessions_and_history() {
    let (home, _notes) = home_with_notes("");
    let daemon = Daemon::start_in(home);
    let mut conn = daemon.connect();
    wait_indexed(&daemon, 5);
    assert_eq!(conn.ok("rag", json!({})), json!({ "enabled": true }));
    assert_eq!(
        conn.ok("rag", json!({ "action": "off" })),
        json!({ "enabled": false })
    );
    // Without RAG the question goes to the model alone; there is none here.
    let reply = conn.request("ask", json!({ "question": "What is the wifi password?" }));
    assert_eq!(reply["error"]["code"], "no_model", "{reply}");
    assert_eq!(
        conn.ok("rag", json!({ "action": "on" })),
        json!({ "enabled": true })
    );
    let reply = conn.request(
        "ask",
        json!({ "question": "What is the wifi password?", "no_rag": true }),
    );
    assert_eq!(reply["error"]["code"], "no_model", "{reply}");

    for q in ["What is the wifi password?", "When is Maria's birthday?"] {
        conn.ok(
            "ask",
            json!({ "question": q, "session": "kitchen", "mode": "extractive" }),
        );
    }
    conn.ok(
        "ask",
        json!({ "question": "Who planted the apple tree?", "session": "car" }),
    );
    let sessions = conn.ok("history", json!({}))["sessions"].clone();
    assert_eq!(sessions.as_array().unwrap().len(), 2, "{sessions:#}");
    let turns = conn.ok("history", json!({ "session": "kitchen" }))["turns"].clone();
    assert_eq!(turns.as_array().unwrap().len(), 2);
    assert_eq!(turns[1]["question"], "When is Maria's birthday?");
    assert!(turns[1]["answer"].as_str().unwrap().contains("14 March"));
    let (ok, stdout, _) = daemon.home.run(&["history", "kitchen"]);
    assert!(ok);
    assert!(
        stdout.starts_with("Q: What is the wifi password?\nA: From home.md:"),
        "{stdout}"
    );
    assert_eq!(
        conn.ok("forget", json!({ "session": "kitchen" }))["forgotten_turns"],
        2
    );
    let turns = conn.ok("history", json!({ "session": "kitchen" }))["turns"].clone();
    assert_eq!(turns, json!([]));
}

#[test]
fn changes_made_while_stopped_are_found_and_unchanged_files_skipped() {
    let (home, notes) = home_with_notes("");
    let mut daemon = Daemon::start_in(home);
    wait_indexed(&daemon, 5);
    assert!(daemon.terminate().success());
    fs::write(
        notes.join("people.md"),
        "# Friends\n\nMaria Okonkwo's birthday is on 2 August.\n",
    )
    .unwrap();
    let daemon = Daemon::start_in(daemon_home(daemon));
    let mut conn = daemon.connect();
    wait_until_within("the offline edit is indexed", scaled_secs(120), || {
        ask(&mut conn, "When is Maria's birthday?", "extractive")["text"]
            .as_str()
            .unwrap()
            .contains("2 August")
    });
    let report = conn.ok("notes", json!({ "action": "reindex" }));
    assert_eq!(report["unchanged"], 5, "{report:#}");
    assert_eq!(report["indexed"], 0);
}

/// Takes the home out of a stopped daemon to start another in it.
fn daemon_home(mut daemon: Daemon) -> Home {
    let _ = daemon.child.wait();
    let home = Home {
        dir: tempfile::tempdir().unwrap(),
    };
    std::mem::replace(&mut daemon.home, home)
}

fn index_file(home: &Home) -> PathBuf {
    home.path().join("data/voxd/index.sqlite")
}

/// Everything in the index agrees: SQLite's own checks, the FTS table, and
/// every file row has its chunks, every chunk its sentences.
fn assert_consistent(index: &Path) -> u64 {
    let db = rusqlite::Connection::open(index).unwrap();
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    db.execute(
        "INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')",
        [],
    )
    .expect("FTS index matches its content");
    let orphans: i64 = db
        .query_row(
            "SELECT count(*) FROM files f WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.file_id = f.id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "files without chunks");
    let bare: i64 = db
        .query_row(
            "SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM sentences s WHERE s.chunk_id = c.id)
             OR c.vector IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bare, 0, "chunks without sentences or vectors");
    db.query_row("SELECT count(*) FROM files", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64
}

#[test]
fn a_crash_mid_indexing_leaves_a_consistent_index() {
    let (home, notes) = home_with_notes("");
    let many = notes.join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..600 {
        fs::write(
            many.join(format!("note-{i:03}.md")),
            format!(
                "# Note {i}\n\nItem {i} is stored in box {} on shelf {}.\n\nIt was bought in {}.\n",
                i * 7,
                i % 13,
                1990 + i % 30
            ),
        )
        .unwrap();
    }
    let index = index_file(&home);
    let mut daemon = Daemon::start_in(home);
    let mut conn = daemon.connect();
    // Kill it once indexing is under way but not finished.
    wait_until_within("indexing has started", scaled_secs(120), || {
        conn.ok("notes", json!({ "action": "status" }))["files"]
            .as_u64()
            .unwrap()
            >= 10
    });
    daemon.child.kill().unwrap(); // SIGKILL
    let _ = daemon.child.wait();
    let partial = assert_consistent(&index);
    assert!(
        partial < 605,
        "indexing finished before the kill ({partial} files); the test proves nothing"
    );

    let daemon = Daemon::start_in(daemon_home(daemon));
    let mut conn = daemon.connect();
    wait_indexed(&daemon, 605);
    assert_eq!(assert_consistent(&index), 605);
    let a = ask(&mut conn, "What is the wifi password?", "extractive");
    assert!(a["text"].as_str().unwrap().contains("kettle-47-moon"));
}

#[test]
fn a_corrupt_index_is_set_aside_and_rebuilt() {
    let (home, _notes) = home_with_notes("");
    let index = index_file(&home);
    fs::create_dir_all(index.parent().unwrap()).unwrap();
    fs::write(
        &index,
        b"SQLite format 3\0this is not a database at all".repeat(200),
    )
    .unwrap();
    let daemon = Daemon::start_in(home);
    // Questions about the index racing with the indexer's own first open:
    // only one of them may set the corrupt file aside.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| daemon.connect().ok("notes", json!({ "action": "status" })));
        }
    });
    wait_indexed(&daemon, 5);
    assert_eq!(assert_consistent(&index), 5);
    let aside = fs::read_dir(index.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("index.sqlite.corrupt-")
        })
        .count();
    assert_eq!(aside, 1);
    assert!(daemon.log().contains("setting it aside and rebuilding it"));
}

#[test]
fn a_locked_index_gives_a_clear_error_and_recovers() {
    let (home, notes) = home_with_notes("");
    let index = index_file(&home);
    let daemon = Daemon::start_in(home);
    let mut conn = daemon.connect();
    wait_indexed(&daemon, 5);
    let db = rusqlite::Connection::open(&index).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    fs::write(
        notes.join("new.md"),
        "The attic ladder is in the hall cupboard.\n",
    )
    .unwrap();
    let reply = conn.request("notes", json!({ "action": "reindex" }));
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("locked"),
        "{reply}"
    );
    let status = conn.ok("notes", json!({ "action": "status" }));
    assert!(
        status["error"]
            .as_str()
            .is_some_and(|e| e.contains("locked")),
        "{status:#}"
    );
    db.execute_batch("COMMIT").unwrap();
    drop(db);
    let report = conn.ok("notes", json!({ "action": "reindex" }));
    assert_eq!(report["files"], 6, "{report:#}");
    assert_eq!(assert_consistent(&index), 6);
    let status = conn.ok("notes", json!({ "action": "status" }));
    assert!(status["error"].is_null(), "{status:#}");
}

/// The candle embedder agrees with an independent numpy implementation of
/// MiniLM (bench/minilm_reference.py, float64): cosine similarities of
/// these pairs and the first dimensions of one vector.
#[test]
fn embeddings_match_the_reference_implementation() {
    use voxd::rag::embed::{cosine, Embedder};
    let embedder = Embedder::load(&test_model("all-minilm-l6-v2")).unwrap();
    assert_eq!(embedder.dim(), 384);
    let pairs: &[(&str, &str, f32)] = &[
        (
            "What is the wifi password?",
            "The wifi password is kettle-47-moon.",
            0.7088,
        ),
        (
            "What is the wifi password?",
            "Maria Okonkwo's birthday is on 14 March.",
            0.0680,
        ),
        (
            "When is Maria's birthday?",
            "Maria Okonkwo's birthday is on 14 March.",
            0.7135,
        ),
        (
            "The front door code is 4417.",
            "Updated: the front door code is now 5820.",
            0.7563,
        ),
        (
            "A man is playing a guitar.",
            "Someone plays an instrument.",
            0.6674,
        ),
    ];
    // One batch with padding: pooling must ignore the padded positions.
    let texts: Vec<&str> = pairs.iter().flat_map(|(a, b, _)| [*a, *b]).collect();
    let vectors = embedder.embed(&texts).unwrap();
    for (i, (a, b, expected)) in pairs.iter().enumerate() {
        let got = cosine(&vectors[2 * i], &vectors[2 * i + 1]);
        assert!(
            (got - expected).abs() < 2e-3,
            "{a:?} ~ {b:?}: {got} vs reference {expected}"
        );
    }
    let v = &vectors[0];
    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    for (got, want) in v.iter().zip([-0.05244f32, 0.03041, -0.03596, -0.01129]) {
        assert!((got - want).abs() < 1e-3, "{:?}", &v[..4]);
    }
    // Alone (no padding) gives the same vector as in the batch.
    let alone = embedder.embed(&[texts[0]]).unwrap();
    assert!(cosine(&alone[0], v) > 0.9999);
}

/// On a small board the embedder is not kept (`rag.idle_unload_secs`): it
/// is dropped once the notes are embedded and it goes unused, and the next
/// search loads it again (its cosine ranking is there).
#[test]
fn the_embedder_unloads_when_idle_and_loads_for_the_next_search() {
    let (home, _notes) = home_with_notes("idle_unload_secs = 3\n");
    let daemon = Daemon::start_in(home);
    let mut conn = daemon.connect();
    wait_indexed(&daemon, 5);
    wait_until_within(
        "every sentence is embedded and the embedder unloaded",
        scaled_secs(120),
        || {
            let s = conn.ok("notes", json!({ "action": "status" }));
            s["sentences"] == s["embedded_sentences"] && s["embedder_loaded"] == false
        },
    );
    let found = conn.ok(
        "notes",
        json!({ "action": "search", "query": "wifi password", "limit": 1 }),
    );
    assert!(found["hits"][0]["cosine"].is_number(), "{found:#}");
    let status = conn.ok("notes", json!({ "action": "status" }));
    assert_eq!(status["embedder_loaded"], true, "{status:#}");
    assert_eq!(status["embedder"], "all-minilm-l6-v2", "{status:#}");
}

/// Whatever lands in a notes folder, the indexer neither hangs, loops nor
/// reads without bound: link loops end, a FIFO and a link to /dev/zero
/// named like notes are skipped (said in `notes status`), the notes
/// around them are indexed, and the daemon stops on SIGTERM.
#[test]
fn loops_fifos_and_devices_in_the_notes_folder_are_harmless() {
    let (home, notes) = home_with_notes("");
    std::os::unix::fs::symlink(&notes, notes.join("recipes/loop")).unwrap();
    std::os::unix::fs::symlink(notes.join("recipes"), notes.join("recipes/again")).unwrap();
    let mut daemon = Daemon::start_in(home);
    let mut conn = daemon.connect();
    wait_indexed(&daemon, 5);
    // Made while the daemon watches: the watcher hands them to the indexer.
    let fifo = notes.join("pipe.md");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/zero", notes.join("zero.md")).unwrap();
    fs::write(
        notes.join("later.md"),
        "The shed key hangs behind the clock.\n",
    )
    .unwrap();
    wait_until_within(
        "the note after the FIFO is indexed",
        scaled_secs(120),
        || {
            let found = conn.ok(
                "notes",
                json!({ "action": "search", "query": "shed key clock" }),
            );
            found["hits"][0]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("later.md"))
        },
    );
    let status = conn.ok("notes", json!({ "action": "status" }));
    assert_eq!(status["files"], 6, "{status:#}");
    let skipped = status["skipped"].to_string();
    assert!(
        skipped.contains("pipe.md") && skipped.contains("not a regular file"),
        "{status:#}"
    );
    assert!(daemon.terminate().success(), "{}", daemon.log());
}
