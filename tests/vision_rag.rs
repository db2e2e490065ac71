//! Image captions in the notes index, through the real daemon: the tiny
//! random BLIP captions images dropped into a watched folder (real inotify,
//! real SQLite image store), the captions become documents of the real
//! notes index (real MiniLM embeddings), and `ask` / `notes search` answer
//! from them, citing the image file.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use support::{test_model, tiny_blip, Conn, Daemon, Home};

/// A home with a notes folder (the fixture notes) and an image folder.
fn home() -> (Home, PathBuf, PathBuf) {
    let store = test_model("all-minilm-l6-v2")
        .parent()
        .unwrap()
        .to_path_buf();
    let home = Home::new("");
    let root = home.path().canonicalize().unwrap();
    let notes = root.join("notes");
    let images = root.join("images");
    fs::create_dir_all(&notes).unwrap();
    fs::create_dir_all(&images).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes");
    for name in ["home.md", "people.md"] {
        fs::copy(fixtures.join(name), notes.join(name)).unwrap();
    }
    let config = format!(
        "[models]\ndir = {:?}\nsources = [\"pypi\"]\n\n\
         [rag]\nnotes = [{:?}]\ndebounce_ms = 200\n\n\
         [vision]\nfolders = [{:?}]\nmodel = {:?}\nsettle_ms = 500\nidle_unload_secs = 0\n",
        store.display().to_string(),
        notes.display().to_string(),
        images.display().to_string(),
        support::tiny_blip_model().display().to_string(),
    );
    fs::write(home.path().join("voxd.toml"), config).unwrap();
    (home, notes, images)
}

/// PNG bytes of test pattern `which`, made unique by `salt`.
fn png(which: usize, salt: u8) -> Vec<u8> {
    let mut image = tiny_blip::test_image(which, 96, 64);
    image.get_pixel_mut(0, 0)[0] = salt;
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn subscribe(daemon: &Daemon) -> Conn {
    let mut sub = daemon.connect();
    sub.send_raw(b"{\"id\":\"img\",\"cmd\":\"subscribe\",\"events\":[\"image.\"]}\n");
    assert_eq!(sub.read().unwrap()["ok"], json!(true));
    sub
}

/// Waits for `image.captioned` of `path`; returns its caption.
fn captioned(sub: &mut Conn, path: &Path) -> String {
    loop {
        let msg = sub.read().expect("voxd closed the subscription");
        if msg["event"] == json!("image.captioned") && msg["data"]["path"] == json!(path) {
            return msg["data"]["caption"].as_str().unwrap().to_string();
        }
        assert_ne!(msg["event"], json!("image.error"), "{msg}");
    }
}

fn ask(conn: &mut Conn, question: &str) -> Value {
    conn.ok("ask", json!({ "question": question, "mode": "extractive" }))
}

fn search(conn: &mut Conn, query: &str) -> Vec<Value> {
    conn.ok(
        "notes",
        json!({ "action": "search", "query": query, "limit": 10 }),
    )["hits"]
        .as_array()
        .unwrap()
        .clone()
}

/// The answer quotes `caption` from `image` and cites the image, line 1.
fn assert_answers_from(answer: &Value, image: &Path, caption: &str) {
    let name = image.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        answer["text"],
        json!(format!("From {name}: \"{caption}\"")),
        "{answer:#}"
    );
    let citation = &answer["citations"][0];
    assert_eq!(citation["path"], json!(image), "{answer:#}");
    assert_eq!(citation["kind"], json!("image"));
    assert_eq!(citation["name"], json!(name));
    assert_eq!(
        (&citation["line_start"], &citation["line_end"]),
        (&json!(1), &json!(1))
    );
}

fn cites(answer: &Value, image: &Path) -> bool {
    answer["citations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["path"] == json!(image))
}

#[test]
fn captions_are_answered_with_image_citations_and_follow_the_images() {
    let (home, notes, images) = home();
    let daemon = Daemon::start_in(home);
    let mut sub = subscribe(&daemon);
    let mut conn = daemon.connect();
    support::wait_until_within("the notes are indexed", support::scaled_secs(300), || {
        let s = conn.ok("notes", json!({ "action": "status" }));
        s["files"] == json!(2) && s["indexing"] == json!(false)
    });

    // A dropped image is captioned, indexed and answered from.
    let a = images.join("a.png");
    fs::write(&a, png(0, 1)).unwrap();
    let caption_a = captioned(&mut sub, &a);
    assert_answers_from(&ask(&mut conn, &caption_a), &a, &caption_a);
    let hits = search(&mut conn, &caption_a);
    assert_eq!(hits[0]["path"], json!(a), "{hits:#?}");
    assert_eq!(hits[0]["kind"], json!("image"));
    // The CLI prints the image as the citation.
    let (ok, out, err) = daemon
        .home
        .run(&["ask", "--mode", "extractive", &caption_a]);
    assert!(ok, "{err}");
    assert!(
        out.lines().any(|l| l == format!("[1] {}:1-1", a.display())),
        "{out}"
    );

    // The notes rescan and watcher leave captions alone.
    let report = conn.ok("notes", json!({ "action": "reindex" }));
    assert_eq!(report["removed"], json!(0), "{report:#}");
    fs::write(notes.join("new.md"), "The shed key hangs by the door.\n").unwrap();
    support::wait_until_within("the new note is indexed", support::scaled_secs(300), || {
        conn.ok("notes", json!({ "action": "status" }))["files"] == json!(3)
    });
    let status = conn.ok("notes", json!({ "action": "status" }));
    assert_eq!(status["images"], json!(1), "{status:#}");
    assert!(cites(&ask(&mut conn, &caption_a), &a));

    // The latest picture answers "what was in the last picture I saved?".
    let b = images.join("b.png");
    fs::write(&b, png(1, 2)).unwrap();
    let caption_b = captioned(&mut sub, &b);
    let latest = ask(&mut conn, "What was in the last picture I saved?");
    assert_answers_from(&latest, &b, &caption_b);
    assert_eq!(latest["citations"].as_array().unwrap().len(), 1);

    // A changed image replaces its document (and is now the newest).
    fs::write(&a, png(2, 3)).unwrap();
    let caption_a2 = captioned(&mut sub, &a);
    assert_ne!(caption_a2, caption_a);
    assert_answers_from(&ask(&mut conn, &caption_a2), &a, &caption_a2);
    assert!(
        search(&mut conn, &caption_a)
            .iter()
            .all(|h| h["text"] != json!(caption_a)),
        "the old caption is still indexed"
    );
    let latest = ask(&mut conn, "Describe the latest photo.");
    assert_answers_from(&latest, &a, &caption_a2);

    // Forgotten: no longer retrieved.
    conn.ok("images", json!({ "action": "forget", "path": b }));
    assert!(search(&mut conn, &caption_b)
        .iter()
        .all(|h| h["path"] != json!(b)));
    assert!(!cites(&ask(&mut conn, &caption_b), &b));
    assert_eq!(
        conn.ok("notes", json!({ "action": "status" }))["images"],
        json!(1)
    );

    // (A forgotten file still in a watched folder is captioned again at the
    // next start: take it away.)
    fs::remove_file(&b).unwrap();

    // Restarted: still answered, without captioning again.
    drop(sub);
    let mut daemon = daemon;
    assert!(daemon.terminate().success());
    let _ = daemon.child.wait();
    let home = std::mem::replace(
        &mut daemon.home,
        Home {
            dir: tempfile::tempdir().unwrap(),
        },
    );
    let daemon = Daemon::start_in(home);
    let mut conn = daemon.connect();
    assert_answers_from(&ask(&mut conn, &caption_a2), &a, &caption_a2);
    assert!(!cites(&ask(&mut conn, &caption_b), &b));
    // The start-up scan of the folder and the index's sync with the image
    // store have both run; the scan found nothing to caption.
    let mut log = String::new();
    support::wait_until("the start-up scan and caption sync", || {
        log = daemon.log();
        log.contains("image folder scanned")
            && log.contains("image captions in step with the index")
    });
    let scanned = log
        .lines()
        .find(|l| l.contains("image folder scanned"))
        .unwrap();
    assert!(scanned.contains("queued=0"), "{scanned}");
    assert!(
        !log.contains("captioning model loaded"),
        "captioned again after a restart:\n{log}"
    );
}

#[test]
fn a_rebuilt_index_gets_the_captions_back_from_the_image_store() {
    let (home, _notes, images) = home();
    let mut daemon = Daemon::start_in(home);
    let mut sub = subscribe(&daemon);
    let a = images.join("a.png");
    fs::write(&a, png(0, 7)).unwrap();
    let caption = captioned(&mut sub, &a);
    drop(sub);
    assert!(daemon.terminate().success());
    let _ = daemon.child.wait();
    let home = std::mem::replace(
        &mut daemon.home,
        Home {
            dir: tempfile::tempdir().unwrap(),
        },
    );
    // Lose the notes index (as when it is corrupt and set aside).
    let index = home.path().join("data/voxd/index.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", index.display()));
    }
    let daemon = Daemon::start_in(home);
    let mut conn = daemon.connect();
    daemon.wait_until(
        "the caption is indexed again",
        support::scaled_secs(60),
        || conn.ok("notes", json!({ "action": "status" }))["images"] == json!(1),
    );
    assert_answers_from(&ask(&mut conn, &caption), &a, &caption);
    assert!(!daemon.log().contains("captioning model loaded"));
}
