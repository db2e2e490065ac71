//! The web page (`GET /` on the HTTP API) in a real browser: headless
//! Chromium driven by Selenium (tests/web/page.py) against a daemon on the
//! fixture notes, the test store's models and the tiny BLIP; the note and
//! image endpoints refusing every way out of their folders; and the page
//! asking for the token of a voxd that needs one.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};
use support::{http_request, llm_config, Daemon, Home};

/// Where the screenshots go: kept after the test, for a person to look at.
fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs tests/web/`name` (a Selenium script) with `args`; the JSON it
/// printed last.
fn script(name: &str, args: &[&str], daemon: &Daemon) -> Value {
    let out = Command::new(support::python())
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/web")
                .join(name),
        )
        .args(args)
        .output()
        .expect("the test Python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} failed (screenshots, if any, in {}):\n{stdout}\n{}\ndaemon log:\n{}",
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("web-screenshots")
            .display(),
        String::from_utf8_lossy(&out.stderr),
        daemon.log()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{name} printed no summary ({e}):\n{stdout}"))
}

/// Fails, saying what to do, unless `program` is on the PATH.
fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .any(|dir| dir.join(program).is_file());
    assert!(
        found,
        "{program} is not installed: the web page's test needs Debian's chromium and \
         chromium-driver; run `bash scripts/bootstrap.sh test`"
    );
}

/// The wake-word clip that asks where the spare key is, cut to the
/// question (after "Hey Jarvis"), with a little silence around it; and
/// its length in seconds.
fn spoken_question(dir: &Path) -> (PathBuf, f64) {
    let clips = support::test_audio().join("wake");
    let times = std::fs::read_to_string(clips.join("06.times")).unwrap();
    let start: f64 = times.split_whitespace().next().unwrap().parse().unwrap();
    let mut reader = hound::WavReader::open(clips.join("06.wav")).unwrap();
    let spec = reader.spec();
    let rate = spec.sample_rate as f64;
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let from = ((start - 0.2).max(0.0) * rate) as usize * spec.channels as usize;
    let pad = vec![0i16; (0.5 * rate) as usize * spec.channels as usize];
    let path = dir.join("question.wav");
    let mut out = hound::WavWriter::create(&path, spec).unwrap();
    for s in pad.iter().chain(&samples[from..]).chain(&pad) {
        out.write_sample(*s).unwrap();
    }
    let frames = out.len() as f64 / spec.channels as f64;
    out.finalize().unwrap();
    (path, frames / rate)
}

#[test]
fn the_page_shows_status_answers_with_citations_captions_and_searches() {
    require("chromium");
    require("chromedriver");
    let home = Home::new("");
    let notes = home.path().join("notes");
    support::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes"),
        &notes,
    );
    std::fs::write(notes.join("scan.txt"), b"PK\0\0 not text").unwrap();
    let images = home.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    support::tiny_blip::test_image(1, 128, 96)
        .save(images.join("garden.png"))
        .unwrap();
    let extra = format!(
        "\n[rag]\nnotes = [{:?}]\n\n[vision]\nfolders = [{:?}]\nmodel = {:?}\nsettle_ms = 200\nidle_unload_secs = 0\n\n[http]\nlisten = \"127.0.0.1:0\"\n",
        notes.display().to_string(),
        images.display().to_string(),
        support::tiny_blip_model().display().to_string(),
    );
    std::fs::write(home.path().join("voxd.toml"), llm_config(32, 2048, &extra)).unwrap();
    let daemon = Daemon::start_indexed(home, 5);
    let addr = daemon.http_address();
    let mut conn = daemon.connect();
    daemon.wait_until(
        "the watched image is captioned",
        support::scaled_secs(120),
        || {
            !conn.ok("images", json!({ "action": "list" }))["images"]
                .as_array()
                .unwrap()
                .is_empty()
        },
    );

    // The image the page uploads, and the caption `caption` gives it.
    let work = tempfile::tempdir().unwrap();
    let upload = work.path().join("kitchen.png");
    support::tiny_blip::test_image(0, 96, 64)
        .save(&upload)
        .unwrap();
    let expected_caption = conn.ok("caption", json!({ "paths": [upload] }))["captions"][0]
        ["caption"]
        .as_str()
        .unwrap()
        .to_owned();
    let (question, secs) = spoken_question(work.path());

    let shots = screenshots();
    let started = Instant::now();
    let seen = script(
        "page.py",
        &[
            &format!("http://{addr}"),
            shots.to_str().unwrap(),
            upload.to_str().unwrap(),
            question.to_str().unwrap(),
            &format!("{:.2}", secs + 1.0),
        ],
        &daemon,
    );
    eprintln!(
        "the browser's walk through the page took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    );
    eprintln!("{seen:#}");

    // The engine list is the daemon's.
    let status = conn.ok("status", json!({}));
    let engines: Vec<&str> = status["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let listed: Vec<&str> = seen["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, engines, "{seen}");
    assert!(
        seen["daemon"].as_str().unwrap().contains("tiny"),
        "the profile: {seen}"
    );

    // The answer, its citation, and the cited lines in the viewer.
    let answer = seen["answer"].as_str().unwrap();
    assert!(answer.contains("kettle-47-moon"), "{answer}");
    assert!(
        !seen["citation_links"].as_array().unwrap().is_empty(),
        "{seen}"
    );
    assert!(
        seen["viewer_title"]
            .as_str()
            .unwrap()
            .starts_with("home.md"),
        "{seen}"
    );
    let cited = seen["cited_lines"].to_string();
    assert!(
        cited.contains("The wifi password is kettle-47-moon"),
        "{cited}"
    );

    // The session kept the turn, and forgot it.
    assert_eq!(
        seen["history"],
        json!(["Session kitchen: 1 turn stored"]),
        "{seen}"
    );
    assert_eq!(seen["forgot"], "Forgot 1 turn of kitchen.", "{seen}");

    // The uploaded image's caption, and the watched one's in the list.
    assert_eq!(
        seen["uploaded_caption"],
        expected_caption.as_str(),
        "{seen}"
    );
    assert_eq!(
        seen["listed_captions"].as_array().unwrap().len(),
        1,
        "{seen}"
    );

    // The search found the door code.
    assert!(seen["hits"].to_string().contains("4417"), "{seen}");
    // Each indexed note, and the binary file skipped with its reason.
    assert_eq!(
        seen["files"],
        json!([
            "car.md",
            "garden.txt",
            "home.md",
            "people.md",
            "recipes/lemon-cake.md"
        ]),
        "{seen}"
    );
    assert!(
        seen["skipped"].to_string().contains("binary file"),
        "{seen}"
    );

    // Push-to-talk: Whisper heard the question, and the answer is the note's.
    let asked = seen["talk_question"].as_str().unwrap().to_lowercase();
    assert!(asked.contains("spare") && asked.contains("key"), "{seen}");
    assert!(
        seen["talk_answer"]
            .as_str()
            .unwrap()
            .contains("watering can"),
        "{seen}"
    );
    assert_eq!(seen["speech_requested"], true, "the answer was spoken");

    // Both turns are on the timing chart, the spoken one as such.
    assert_eq!(seen["turns"], json!(["chat", "talk"]), "{seen}");

    // Nothing but the daemon was asked for anything, the page fits a
    // phone's width, and no script failed.
    assert_eq!(seen["origins"], json!([format!("http://{addr}")]), "{seen}");
    assert_eq!(seen["phone_overflow"], json!([]), "{seen}");
    assert_eq!(seen["keyboard_tab"], "tab-status", "{seen}");
    assert_eq!(seen["console_errors"], json!([]), "{seen}");
    for name in ["chat", "status", "notes", "images", "models"] {
        for width in ["desktop", "phone"] {
            assert!(shots.join(format!("{name}-{width}.png")).is_file());
        }
    }
}

/// `s` percent-encoded for a query value, `/` kept.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn notes_and_images_are_served_only_from_inside_their_folders_and_need_the_token() {
    let home = Home::new("");
    let (ok, token, err) = home.run(&["http", "token"]);
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    let root = home.path().canonicalize().unwrap();
    let notes = root.join("notes");
    let outside = root.join("private");
    std::fs::create_dir_all(notes.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(
        notes.join("home.md"),
        "# Home\nThe wifi password is kettle-47-moon.\n",
    )
    .unwrap();
    std::fs::write(notes.join(".hidden.md"), "hidden\n").unwrap();
    std::fs::write(outside.join("secret.md"), "SECRET-CONTENT\n").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.md"), notes.join("link.md")).unwrap();
    std::os::unix::fs::symlink(&outside, notes.join("away")).unwrap();
    std::os::unix::fs::symlink(notes.join("home.md"), notes.join("sub/again.md")).unwrap();
    let images = root.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let png = images.join("cat.png");
    support::tiny_blip::test_image(0, 32, 24)
        .save(&png)
        .unwrap();
    support::tiny_blip::test_image(1, 32, 24)
        .save(outside.join("private.png"))
        .unwrap();
    std::fs::copy(&png, images.join(".hidden.png")).unwrap();
    std::fs::write(images.join("notes.txt"), "not an image\n").unwrap();
    std::os::unix::fs::symlink(outside.join("private.png"), images.join("away.png")).unwrap();
    std::fs::write(
        home.path().join("voxd.toml"),
        support::echo_engines_config(&format!(
            "\n[rag]\nnotes = [{:?}]\n\n[vision]\nfolders = [{:?}]\nmodel = {:?}\n\n[http]\nlisten = \"127.0.0.1:0\"\n",
            notes.display().to_string(),
            images.display().to_string(),
            support::tiny_blip_model().display().to_string(),
        )),
    )
    .unwrap();
    let daemon = Daemon::start_in(home);
    let addr = daemon.http_address();
    let get = |target: &str, auth: bool| {
        let auth = if auth {
            format!("Authorization: Bearer {token}\r\n")
        } else {
            String::new()
        };
        http_request(
            &addr,
            &format!("GET {target} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"),
        )
    };
    let note = |path: &str| get(&format!("/v1/voxd/note?path={path}"), true);

    // The page's own files need no token (they hold no data); the API does.
    let (status, head, body) = get("/", false);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<title>voxd</title>"), "{body}");
    let policy = support::header(&head, "content-security-policy").unwrap();
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    let (status, head, _) = get("/web/app.js", false);
    assert_eq!(status, 200);
    assert_eq!(
        support::header(&head, "content-type").as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(get("/web/nothing.js", false).0, 404);
    assert_eq!(get("/web/..%2Fmod.rs", false).0, 404);
    let home_md = encode(&notes.join("home.md").display().to_string());
    assert_eq!(
        get(&format!("/v1/voxd/note?path={home_md}"), false).0,
        401,
        "the viewer's endpoint needs the token"
    );

    let (status, _, body) = note(&home_md);
    assert_eq!(status, 200, "{body}");
    let shown: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(shown["name"], "home.md");
    assert!(shown["text"].as_str().unwrap().contains("kettle-47-moon"));
    // A link that stays inside is followed.
    let (status, _, body) = note(&encode(&notes.join("sub/again.md").display().to_string()));
    assert_eq!(status, 200, "{body}");

    let n = notes.display().to_string();
    let secret = outside.join("secret.md").display().to_string();
    for (path, expected) in [
        (format!("{n}/../private/secret.md"), 403),
        (encode(&format!("{n}/../private/secret.md")), 403),
        (format!("{}/%2e%2e/private/secret.md", encode(&n)), 403),
        (format!("{}%2F..%2Fprivate%2Fsecret.md", encode(&n)), 403),
        (
            format!("{}/sub/%2E%2E/%2E%2E/private/secret.md", encode(&n)),
            403,
        ),
        (encode(&secret), 403),
        ("/etc/passwd".to_string(), 403),
        ("%2Fetc%2Fpasswd".to_string(), 403),
        ("home.md".to_string(), 403),
        ("..%2Fprivate%2Fsecret.md".to_string(), 403),
        (encode(&format!("{n}/link.md")), 403),
        (encode(&format!("{n}/away/secret.md")), 403),
        (encode(&format!("{n}/.hidden.md")), 403),
        (encode(&format!("{n}/missing.md")), 404),
        // Encoded twice: a name with a literal "%2e%2e", which is not there.
        (format!("{}/%252e%252e/private/secret.md", encode(&n)), 404),
    ] {
        let (status, _, body) = note(&path);
        assert_eq!(status, expected, "{path}: {body}");
        assert!(!body.contains("SECRET-CONTENT"), "{path}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert!(error["error"]["message"].is_string(), "{path}: {body}");
    }
    assert_eq!(note("").0, 403, "an empty path");
    assert_eq!(get("/v1/voxd/note", true).0, 400, "no path at all");

    // Images: the watched folders' image files, by the same rules.
    let image = |path: &str| get(&format!("/v1/voxd/image?path={path}"), true);
    let (status, head, body) = image(&encode(&png.display().to_string()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        support::header(&head, "content-type").as_deref(),
        Some("image/png")
    );
    assert_eq!(
        support::header(&head, "content-length"),
        Some(std::fs::metadata(&png).unwrap().len().to_string())
    );
    let i = images.display().to_string();
    for (path, expected) in [
        (format!("{i}/../private/private.png"), 403),
        (format!("{}/%2e%2e/private/private.png", encode(&i)), 403),
        (
            encode(&outside.join("private.png").display().to_string()),
            403,
        ),
        (encode(&format!("{i}/away.png")), 403),
        (encode(&format!("{i}/.hidden.png")), 403),
        (encode(&format!("{i}/notes.txt")), 403),
        (home_md.clone(), 403),
        (encode(&format!("{i}/missing.png")), 404),
    ] {
        let (status, _, body) = image(&path);
        assert_eq!(status, expected, "{path}: {body}");
    }
    assert_eq!(
        get(
            &format!("/v1/voxd/image?path={}", encode(&png.display().to_string())),
            false
        )
        .0,
        401
    );

    // In a browser: the page loads, asks for the token, and with it shows
    // the daemon.
    require("chromium");
    require("chromedriver");
    let seen = script(
        "token_prompt.py",
        &[&format!("http://{addr}"), &token],
        &daemon,
    );
    assert_eq!(seen["asked"], true, "{seen}");
    assert_eq!(seen["engines"], json!(["stt", "llm"]), "{seen}");
    assert_eq!(seen["asked_again"], false, "{seen}");
}
