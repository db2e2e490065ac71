//! Service-manager integration: the systemd unit `voxd service install`
//! writes passes `systemd-analyze verify`, the launchd plist parses and
//! says what it must, and the daemon speaks systemd's notify protocol
//! (READY, WATCHDOG, STATUS, STOPPING) on a real NOTIFY_SOCKET.

mod support;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{echo_engines_config, voxd_bin, Daemon, Home};

/// `systemd-analyze verify --user` on `unit`: (success, its complaints).
fn verify(home: &Home, unit: &Path) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--user"])
        .arg(unit)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", home.path().join("run"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .output()
        .expect("systemd-analyze is missing: run `bash scripts/bootstrap.sh test` (apt systemd)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

fn real_exe() -> String {
    voxd_bin().canonicalize().unwrap().display().to_string()
}

#[test]
fn the_installed_systemd_unit_passes_systemd_analyze() {
    let home = Home::new("");
    fs::set_permissions(
        home.path().join("run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let (ok, out, err) = home.run(&["service", "install", "--manager", "systemd", "--no-enable"]);
    assert!(ok, "{err}");
    let unit = home.path().join("config/systemd/user/voxd.service");
    assert!(out.contains(&unit.display().to_string()), "{out}");
    assert!(
        out.contains("systemctl --user enable --now voxd.service"),
        "says what to run: {out}"
    );
    let text = fs::read_to_string(&unit).unwrap();
    let config = home.path().join("voxd.toml").canonicalize().unwrap();
    assert!(
        text.contains(&format!(
            "\nExecStart={} serve --log-format json --config {}\n",
            real_exe(),
            config.display()
        )),
        "{text}"
    );
    // The tiny profile's 800 MiB budget.
    assert!(
        text.contains("\nMemoryHigh=800M\nMemoryMax=1000M\n"),
        "{text}"
    );
    assert!(text.contains("\nType=notify\n"));
    // The directories the unit makes writable exist before the first start.
    assert!(home.path().join(".local/share/voxd").is_dir());

    let (ok, complaints) = verify(&home, &unit);
    assert!(ok && complaints.is_empty(), "systemd-analyze: {complaints}");

    // The check has teeth: a broken copy is flagged.
    let broken = home.path().join("broken/voxd.service");
    fs::create_dir_all(broken.parent().unwrap()).unwrap();
    fs::write(&broken, text.replace("Type=notify", "Type=notifyy")).unwrap();
    let (_, complaints) = verify(&home, &broken);
    assert!(complaints.contains("notifyy"), "{complaints}");

    // status and uninstall.
    let (ok, out, _) = home.run(&["service", "status", "--manager", "systemd"]);
    assert!(ok);
    assert!(
        out.contains("installed: ") && out.contains(&format!("runs: {}", real_exe())),
        "{out}"
    );
    assert!(out.contains("daemon: not answering"), "{out}");
    let (ok, out, err) = home.run(&["service", "uninstall", "--manager", "systemd"]);
    assert!(ok, "{err}");
    assert!(out.contains("removed"), "{out}");
    assert!(!unit.exists());
    let (ok, out, _) = home.run(&["service", "status", "--manager", "systemd"]);
    assert!(ok && out.contains("not installed"), "{out}");
}

#[test]
fn the_unit_follows_the_profile_chosen_at_install() {
    let home = Home::new("");
    let out = home
        .voxd(&["service", "install", "--manager", "systemd", "--no-enable"])
        .env("VOXD_PROFILE", "2gb")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs::read_to_string(home.path().join("config/systemd/user/voxd.service")).unwrap();
    assert!(
        text.contains("\nMemoryHigh=1700M\nMemoryMax=2125M\n"),
        "{text}"
    );
    assert!(text.contains(" --profile 2gb\n"), "{text}");

    let home = Home::new("profile = \"workstation\"\n");
    let (ok, _, err) = home.run(&["service", "install", "--manager", "systemd", "--no-enable"]);
    assert!(ok, "{err}");
    let text = fs::read_to_string(home.path().join("config/systemd/user/voxd.service")).unwrap();
    assert!(
        text.contains("\nMemoryHigh=infinity\nMemoryMax=infinity\n"),
        "{text}"
    );
}

#[test]
fn the_launchd_plist_is_well_formed_and_installs() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("launchd/io.github.voxd.plist");
    let agent: plist::Dictionary = plist::from_file(&shipped).unwrap();
    assert_eq!(agent["Label"].as_string(), Some("io.github.voxd"));
    let args = agent["ProgramArguments"].as_array().unwrap();
    assert_eq!(args[1].as_string(), Some("serve"));
    assert_eq!(agent["RunAtLoad"].as_boolean(), Some(true));
    let keep_alive = agent["KeepAlive"].as_dictionary().unwrap();
    assert_eq!(keep_alive["SuccessfulExit"].as_boolean(), Some(false));
    assert_eq!(agent["ProcessType"].as_string(), Some("Interactive"));
    for key in ["StandardOutPath", "StandardErrorPath"] {
        assert!(agent[key].as_string().unwrap().starts_with('/'), "{key}");
    }

    let home = Home::new("");
    let (ok, out, err) = home.run(&["service", "install", "--manager", "launchd", "--no-enable"]);
    assert!(ok, "{err}");
    assert!(out.contains("launchctl bootstrap gui/"), "{out}");
    let installed = home
        .path()
        .join("Library/LaunchAgents/io.github.voxd.plist");
    let agent: plist::Dictionary = plist::from_file(&installed).unwrap();
    let args: Vec<&str> = agent["ProgramArguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert_eq!(args[0], real_exe());
    assert_eq!(args[1], "serve");
    let logs = home.path().join("Library/Logs/voxd");
    assert!(logs.is_dir());
    assert_eq!(
        agent["StandardErrorPath"].as_string(),
        Some(logs.join("voxd.log").to_str().unwrap())
    );
    // Everything else is the shipped agent.
    assert_eq!(
        agent["KeepAlive"],
        plist::Value::Dictionary(keep_alive.clone())
    );
    let (ok, _, _) = home.run(&["service", "uninstall", "--manager", "launchd"]);
    assert!(ok && !installed.exists());
}

/// Datagrams sent to `sock` until `until` returns true or 60 s (scaled) pass.
fn collect(sock: &UnixDatagram, mut until: impl FnMut(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + support::scaled_secs(60);
    let mut got = vec![];
    let mut buf = [0u8; 4096];
    while !until(&got) {
        assert!(Instant::now() < deadline, "timed out; got {got:?}");
        match sock.recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
    }
    got
}

#[test]
fn the_daemon_notifies_ready_watchdog_and_stopping() {
    let home = Home::new(&echo_engines_config(""));
    let path = home.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let path = path.display().to_string();
    let mut daemon = Daemon::start_with_env(
        home,
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "200000")],
    );
    let got = collect(&sock, |got| {
        got.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3
    });
    let ready = &got[0];
    assert!(ready.lines().any(|l| l == "READY=1"), "{got:?}");
    assert!(
        ready.contains(&format!(
            "STATUS=serving on {}",
            daemon.home.socket().display()
        )),
        "{ready}"
    );
    // Ready means the socket answers.
    assert_eq!(daemon.connect().ok("ping", json!({}))["pong"], true);

    daemon.connect().ok("shutdown", json!({}));
    let got = collect(&sock, |got| got.iter().any(|m| m.contains("STOPPING=1")));
    let stopping = got.iter().find(|m| m.contains("STOPPING=1")).unwrap();
    assert!(stopping.contains("STATUS=stopping"), "{stopping}");
    assert!(daemon.wait_exit().success());
}

#[test]
fn no_watchdog_pings_unless_asked() {
    let home = Home::new(&echo_engines_config(""));
    let path = home.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let path = path.display().to_string();
    let mut daemon = Daemon::start_with_env(home, &[("NOTIFY_SOCKET", &path)]);
    collect(&sock, |got| got.iter().any(|m| m.contains("READY=1")));
    // Well past several would-be watchdog periods.
    std::thread::sleep(Duration::from_secs(1));
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        let msg = String::from_utf8_lossy(&buf[..n]);
        assert!(!msg.contains("WATCHDOG"), "{msg}");
    }
    assert!(daemon.terminate().success());
}
