//! Image folders through the real daemon: a real inotify watcher, the tiny
//! random BLIP (real loading and generation), the real SQLite store and the
//! real control socket and CLI.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{tiny_blip, Conn, Daemon, Home};

/// Where one test keeps its images and its caption database, apart from the
/// daemon's home so that a restarted daemon finds both again.
struct Place {
    _dir: tempfile::TempDir,
    images: PathBuf,
    db: PathBuf,
}

impl Place {
    fn new() -> Place {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let images = root.join("images");
        fs::create_dir_all(&images).unwrap();
        Place {
            images,
            db: root.join("images.db"),
            _dir: dir,
        }
    }

    fn config(&self) -> String {
        format!(
            "[vision]\nfolders = [{:?}]\nmodel = {:?}\ndb = {:?}\nsettle_ms = 1000\nidle_unload_secs = 0\n",
            self.images.display().to_string(),
            support::tiny_blip_model().display().to_string(),
            self.db.display().to_string(),
        )
    }

    fn path(&self, name: &str) -> PathBuf {
        self.images.join(name)
    }
}

/// PNG bytes of test pattern `which` at `w`×`h`, made unique by `salt`.
fn png(which: usize, w: u32, h: u32, salt: u32) -> Vec<u8> {
    let mut image = tiny_blip::test_image(which, w, h);
    let px = image.get_pixel_mut(0, 0);
    px[0] = (salt % 251) as u8;
    px[1] = (salt / 251 % 251) as u8;
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn subscribe(daemon: &Daemon) -> Conn {
    let mut sub = daemon.connect();
    sub.send_raw(b"{\"id\":\"img\",\"cmd\":\"subscribe\",\"events\":[\"image.\"]}\n");
    let reply = sub.read().unwrap();
    assert_eq!(reply["ok"], json!(true), "{reply}");
    sub
}

/// The next `image.*` event: (name, data).
fn next_event(sub: &mut Conn) -> (String, Value) {
    loop {
        let msg = sub.read().expect("voxd closed the subscription");
        if let Some(event) = msg["event"].as_str() {
            return (event.to_string(), msg["data"].clone());
        }
    }
}

/// Events until `done` says the wanted ones arrived; returns them all.
fn events_until(
    sub: &mut Conn,
    mut done: impl FnMut(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    while !done(&seen) {
        seen.push(next_event(sub));
    }
    seen
}

fn is(event: &(String, Value), name: &str, path: &Path) -> bool {
    event.0 == name && event.1["path"] == json!(path)
}

fn listed(conn: &mut Conn) -> BTreeMap<PathBuf, Value> {
    let result = conn.ok("images", json!({ "action": "list" }));
    result["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (PathBuf::from(e["path"].as_str().unwrap()), e.clone()))
        .collect()
}

#[test]
fn dropped_images_are_captioned_once_per_content() {
    let place = Place::new();
    let daemon = Daemon::start(&place.config());
    let mut sub = subscribe(&daemon);
    let mut conn = daemon.connect();

    // Drop.
    let a = place.path("a.png");
    fs::write(&a, png(0, 320, 240, 1)).unwrap();
    let (name, first) = next_event(&mut sub);
    assert_eq!(name, "image.captioned", "{first}");
    assert_eq!(first["path"], json!(a));
    assert_eq!(first["cached"], json!(false));
    assert_eq!(
        (first["width"].clone(), first["height"].clone()),
        (json!(320), json!(240))
    );
    assert!(!first["caption"].as_str().unwrap().is_empty());

    // A slow, partial write is read only once complete.
    let b = place.path("b.png");
    let bytes = png(1, 200, 150, 2);
    let mut file = fs::File::create(&b).unwrap();
    file.write_all(&bytes[..bytes.len() / 2]).unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    file.write_all(&bytes[bytes.len() / 2..]).unwrap();
    drop(file);
    let (name, data) = next_event(&mut sub);
    assert_eq!(
        (name.as_str(), &data["path"]),
        ("image.captioned", &json!(b)),
        "{data}"
    );
    assert_eq!(data["size"], json!(bytes.len()));

    // Rename: not captioned again.
    let c = place.path("c.png");
    fs::rename(&a, &c).unwrap();
    let seen = events_until(&mut sub, |s| {
        s.iter().any(|e| is(e, "image.removed", &a))
            && s.iter().any(|e| is(e, "image.captioned", &c))
    });
    assert_eq!(seen.len(), 2, "{seen:?}");
    let renamed = &seen.iter().find(|e| e.0 == "image.captioned").unwrap().1;
    assert_eq!(renamed["cached"], json!(true));
    assert_eq!(renamed["caption"], first["caption"]);

    // Copy (duplicate content): not captioned again.
    let d = place.path("d.png");
    fs::copy(&b, &d).unwrap();
    let (name, dup) = next_event(&mut sub);
    assert_eq!(
        (name.as_str(), &dup["path"]),
        ("image.captioned", &json!(d))
    );
    assert_eq!(dup["cached"], json!(true));
    assert_eq!(dup["caption"], data["caption"]);

    // Changed content: captioned again.
    fs::write(&d, png(2, 100, 100, 3)).unwrap();
    let (name, changed) = next_event(&mut sub);
    assert_eq!(
        (name.as_str(), &changed["path"]),
        ("image.captioned", &json!(d))
    );
    assert_eq!(changed["cached"], json!(false));
    assert_ne!(changed["hash"], dup["hash"]);

    // Delete.
    fs::remove_file(&c).unwrap();
    let (name, gone) = next_event(&mut sub);
    assert_eq!((name.as_str(), &gone["path"]), ("image.removed", &json!(c)));

    // Subfolders are watched too.
    fs::create_dir(place.path("sub")).unwrap();
    let e = place.path("sub/e.png");
    fs::write(&e, png(0, 64, 64, 4)).unwrap();
    let (name, data) = next_event(&mut sub);
    assert_eq!(
        (name.as_str(), &data["path"]),
        ("image.captioned", &json!(e))
    );

    let list = listed(&mut conn);
    assert_eq!(
        list.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([b.clone(), d.clone(), e.clone()])
    );
    assert_eq!(list[&d]["caption"], changed["caption"]);
    assert_eq!(list[&d]["width"], json!(100));

    // The CLI: list, caption (same model, same caption), forget.
    let (ok, out, err) = daemon.home.run(&["images", "list", "--since", "1h"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains(&format!("{}  200×150", b.display())), "{out}");
    let (ok, out, err) = daemon.home.run(&["caption", b.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("{}: {}", b.display(), list[&b]["caption"].as_str().unwrap())
    );
    let (ok, out, _) = daemon
        .home
        .run(&["caption", "--prompt", "a photo of", b.to_str().unwrap()]);
    assert!(ok && out.contains(": a photo of"), "{out}");
    let (ok, out, err) = daemon.home.run(&["images", "forget", d.to_str().unwrap()]);
    assert!(ok && out.contains("forgot"), "{out}{err}");
    let (name, data) = next_event(&mut sub);
    assert_eq!((name.as_str(), &data["path"]), ("image.removed", &json!(d)));
    assert!(!listed(&mut conn).contains_key(&d));
}

/// A PNG claiming 30000×30000 pixels: a real header, an empty image-data
/// chunk, the end chunk.
fn bomb_header() -> Vec<u8> {
    let crc32 = |bytes: &[u8]| {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    };
    let mut ihdr = 30000u32.to_be_bytes().to_vec();
    ihdr.extend(30000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", &[]), (b"IEND", &[])] {
        png.extend((data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend(data);
        png.extend(&chunk);
        png.extend(crc32(&chunk).to_be_bytes());
    }
    png
}

#[test]
fn bad_files_are_reported_by_name_and_the_watcher_goes_on() {
    let place = Place::new();
    let daemon = Daemon::start(&place.config());
    let mut sub = subscribe(&daemon);
    let good = png(1, 120, 90, 7);
    let mut corrupt = good.clone();
    for byte in corrupt.iter_mut().skip(60).take(40) {
        *byte ^= 0xA5;
    }
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        ("zero.png", Vec::new(), "empty file"),
        (
            "notes.jpg",
            b"shopping list: eggs, milk".to_vec(),
            "not an image",
        ),
        (
            "truncated.png",
            good[..good.len() / 2].to_vec(),
            "corrupt or truncated png",
        ),
        ("corrupt.png", corrupt, "corrupt or truncated png"),
        (
            "huge.png",
            bomb_header(),
            "30000×30000 pixels exceeds the limit",
        ),
    ];
    for (name, bytes, _) in &bad {
        fs::write(place.path(name), bytes).unwrap();
    }
    // Written, then removed before voxd could read it.
    let gone = place.path("gone.png");
    fs::write(&gone, &good).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    fs::remove_file(&gone).unwrap();
    let ok = place.path("ok.png");
    fs::write(&ok, &good).unwrap();

    let seen = events_until(&mut sub, |s| {
        s.iter().filter(|e| e.0 == "image.error").count() == bad.len() + 1
            && s.iter().any(|e| is(e, "image.captioned", &ok))
    });
    let reasons: BTreeMap<String, String> = seen
        .iter()
        .filter(|e| e.0 == "image.error")
        .map(|(_, d)| {
            (
                d["path"].as_str().unwrap().to_string(),
                d["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (name, _, reason) in &bad {
        let path = place.path(name).display().to_string();
        assert!(
            reasons.get(&path).is_some_and(|r| r.contains(reason)),
            "{name}: {seen:?}"
        );
    }
    assert!(
        reasons[&gone.display().to_string()].contains("removed before"),
        "{reasons:?}"
    );
    assert!(daemon.log().contains("image not captioned"));

    let mut conn = daemon.connect();
    assert_eq!(conn.ok("ping", json!({}))["pong"], json!(true));
    let list = listed(&mut conn);
    assert_eq!(list.keys().collect::<Vec<_>>(), vec![&ok]);

    // A fixed file is captioned; `caption` names bad files' reasons too.
    fs::write(place.path("truncated.png"), png(2, 50, 50, 8)).unwrap();
    let (name, data) = next_event(&mut sub);
    assert_eq!(
        (name.as_str(), &data["path"]),
        ("image.captioned", &json!(place.path("truncated.png")))
    );
    let reply = conn.ok(
        "caption",
        json!({ "paths": [place.path("huge.png"), place.path("missing.png"), ok] }),
    );
    let results = reply["captions"].as_array().unwrap();
    assert!(results[0]["reason"]
        .as_str()
        .unwrap()
        .contains("exceeds the limit"));
    assert!(results[1]["reason"]
        .as_str()
        .unwrap()
        .contains("removed before"));
    assert_eq!(results[2]["ok"], json!(true));
    let reply = conn.request("caption", json!({ "paths": ["relative.png"] }));
    assert_eq!(reply["error"]["code"], json!("invalid_params"), "{reply}");
    let (ok_cli, _, err) = daemon
        .home
        .run(&["caption", place.path("zero.png").to_str().unwrap()]);
    assert!(!ok_cli && err.contains("empty file"), "{err}");
}

#[test]
fn files_that_came_and_went_while_voxd_was_down_are_caught_up() {
    let place = Place::new();
    let (p0, p1, p2, p3) = (
        place.path("p0.png"),
        place.path("p1.png"),
        place.path("p2.webp"),
        place.path("p3.png"),
    );
    fs::write(&p0, png(0, 80, 60, 10)).unwrap();
    fs::write(&p1, png(1, 80, 60, 11)).unwrap();
    fs::write(place.path("bad.png"), b"not a png").unwrap();
    let mut webp = std::io::Cursor::new(Vec::new());
    tiny_blip::test_image(2, 90, 70)
        .write_to(&mut webp, image::ImageFormat::WebP)
        .unwrap();
    fs::write(&p2, webp.into_inner()).unwrap();

    let mut daemon = Daemon::start(&place.config());
    let mut conn = daemon.connect();
    let deadline = Instant::now() + support::scaled_secs(300);
    while listed(&mut conn).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "start-up scan incomplete:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = listed(&mut conn);
    assert_eq!(before[&p2]["format"], json!("webp"));
    daemon.terminate();

    fs::remove_file(&p1).unwrap();
    fs::write(&p3, png(2, 80, 60, 12)).unwrap();
    let daemon = Daemon::start_in(Home::new(&place.config()));
    let mut conn = daemon.connect();
    let wanted = BTreeSet::from([p0.clone(), p2.clone(), p3.clone()]);
    let deadline = Instant::now() + support::scaled_secs(300);
    let after = loop {
        let after = listed(&mut conn);
        if after.keys().cloned().collect::<BTreeSet<_>>() == wanted {
            break after;
        }
        assert!(
            Instant::now() < deadline,
            "not caught up:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Nothing already done was done again: not p0, p2, nor the bad file.
    let log = daemon.log();
    assert_eq!(log.matches("image captioned").count(), 1, "{log}");
    assert!(log.contains(&format!("{}", p3.display())), "{log}");
    assert!(!log.contains("image not captioned"), "{log}");
    assert_eq!(after[&p0], before[&p0]);
}

#[test]
fn a_thousand_images_at_once_are_all_captioned_with_bounded_memory() {
    const N: usize = 1000;
    let place = Place::new();
    let daemon = Daemon::start(&place.config());
    let mut conn = daemon.connect();
    for i in 0..N {
        fs::write(
            place.path(&format!("burst-{i:04}.png")),
            png(i % 3, 48, 48, i as u32),
        )
        .unwrap();
    }
    let deadline = Instant::now() + support::scaled_secs(1200);
    let mut slowest_ping = Duration::ZERO;
    loop {
        // The socket answers while the captioner works.
        let asked = Instant::now();
        assert_eq!(conn.ok("ping", json!({}))["pong"], json!(true));
        slowest_ping = slowest_ping.max(asked.elapsed());
        let done = listed(&mut conn).len();
        if done == N {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {N} captioned:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let peak_kb = support::proc_kib(&daemon.child.id().to_string(), "VmHWM");
    eprintln!(
        "{N} images: peak RSS {} MB, slowest ping {slowest_ping:?}",
        peak_kb / 1024
    );
    assert!(peak_kb < 512 * 1024, "peak RSS {peak_kb} kB");
    assert!(
        !daemon.log().contains("image not captioned"),
        "{}",
        daemon.log()
    );
}

#[test]
fn serve_images_flag_replaces_the_configured_folders() {
    let place = Place::new();
    let other = tempfile::tempdir().unwrap();
    let other_dir = other.path().canonicalize().unwrap();
    let home = Home::new(&place.config());
    let daemon = Daemon::start_with_args(home, &["--images", other_dir.to_str().unwrap()]);
    let mut sub = subscribe(&daemon);
    let picture = other_dir.join("flag.png");
    fs::write(&picture, png(1, 40, 40, 20)).unwrap();
    let (name, data) = next_event(&mut sub);
    assert_eq!(
        (name.as_str(), &data["path"]),
        ("image.captioned", &json!(picture))
    );
    let config = daemon.connect().ok("config", json!({}));
    assert_eq!(config["config"]["vision"]["folders"], json!([other_dir]));
}
