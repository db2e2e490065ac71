//! Test support: a real `voxd serve` in a private temporary home, and a
//! line-oriented client of its real control socket.
//!
//! Every deadline here and in the tests is [`scaled`] by one factor,
//! `VOXD_TEST_TIME_SCALE` (default 1): a slow or loaded machine raises it
//! (e.g. `VOXD_TEST_TIME_SCALE=3`) instead of editing timeouts. Deadlines
//! are generous and polled, so on a fast machine they cost nothing.

#![allow(dead_code)] // each test file uses its own part of this module

pub mod llama_server;
pub mod tiny_blip;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod pulse;
pub mod voice;
pub mod wer;

/// Copies the directory tree `from` to `to` (a fixture into a test home).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The factor every test deadline is multiplied by: `VOXD_TEST_TIME_SCALE`
/// (a positive number, default 1).
pub fn time_scale() -> f64 {
    match std::env::var("VOXD_TEST_TIME_SCALE") {
        Err(_) => 1.0,
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(scale) if scale.is_finite() && scale > 0.0 => scale,
            _ => panic!("VOXD_TEST_TIME_SCALE={text:?} is not a positive number"),
        },
    }
}

/// `base` times [`time_scale`]: a deadline, never a pause.
pub fn scaled(base: Duration) -> Duration {
    base.mul_f64(time_scale())
}

/// `secs` seconds, [`scaled`].
pub fn scaled_secs(secs: u64) -> Duration {
    scaled(Duration::from_secs(secs))
}

/// A turn to start a heavy daemon (models to load, notes to index): at most
/// [`StartSlot::count`] start at once, across the test threads of one
/// binary and across test binaries run side by side (a lock file each).
/// On two cores, four daemons loading at once each take four times as long
/// and blow their deadlines; one after another, each is quick. Held until
/// dropped (also on a panic), when its lock file is closed.
pub struct StartSlot {
    _lock: fs::File,
}

impl StartSlot {
    /// Half the machine's cores, at least one.
    pub fn count() -> usize {
        std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
    }

    /// Waits for a free slot (no deadline: every holder lets go once its
    /// daemon is up or its test has failed).
    pub fn take() -> StartSlot {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("start-slots");
        fs::create_dir_all(&dir).unwrap();
        loop {
            for slot in 0..StartSlot::count() {
                let lock = fs::File::options()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(dir.join(format!("{slot}.lock")))
                    .unwrap();
                use rustix::fs::{flock, FlockOperation};
                match flock(&lock, FlockOperation::NonBlockingLockExclusive) {
                    Ok(()) => return StartSlot { _lock: lock },
                    Err(rustix::io::Errno::WOULDBLOCK) => {}
                    Err(e) => panic!("start slot {slot}: {e}"),
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits until the daemon has indexed at least `files` notes and is idle.
pub fn wait_for_notes(conn: &mut Conn, files: u64) {
    notes_indexed(conn, files, String::new);
}

/// [`wait_for_notes`], failing with the last `notes status` and `log()`.
fn notes_indexed(conn: &mut Conn, files: u64, log: impl Fn() -> String) {
    let deadline = Instant::now() + scaled_secs(180);
    loop {
        let status = conn.ok("notes", json!({ "action": "status" }));
        if status["files"].as_u64() >= Some(files) && status["indexing"] == json!(false) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{files} notes were not indexed in time (VOXD_TEST_TIME_SCALE is {}): \
             {status}\n{}",
            time_scale(),
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `examples/<script>` set up as a user's shell would run it against the
/// daemon in `home`: `voxd` on the PATH, the home's runtime directory.
pub fn example(home: &Path, script: &str) -> Command {
    let path = format!(
        "{}:{}",
        voxd_bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(script),
    );
    cmd.env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("XDG_CONFIG_HOME", home.join("config"));
    cmd
}

/// Samples of silence (16 kHz) to put before what a `voxd serve --audio-in`
/// WAV says: the file plays at real pace from the daemon's start, so the
/// test must subscribe (and the daemon index its notes) within them.
/// `secs`, [`scaled`]; [`assert_within_lead_in`] checks it was enough.
pub fn lead_in(secs: f64) -> usize {
    (secs * time_scale() * 16_000.0) as usize
}

/// Fails, saying what to do, once the daemon's listener has heard more
/// than `samples` (a [`lead_in`]) of its input: whatever the test waits
/// for could then have been missed.
pub fn assert_within_lead_in(conn: &mut Conn, samples: usize) {
    let status = conn.ok("listen", json!({ "action": "status" }));
    let heard = status["heard_secs"].as_f64().unwrap();
    let lead = samples as f64 / 16_000.0;
    assert!(
        heard < lead,
        "the test was ready {heard:.1} s into the daemon's input, after its {lead:.1} s \
         lead-in: on a machine this slow raise VOXD_TEST_TIME_SCALE (now {})",
        time_scale()
    );
}

/// The `voxd` binary under test.
pub fn voxd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_voxd"))
}

/// A worker binary built by `cargo build --workspace` beside `voxd`.
pub fn worker_bin(name: &str) -> PathBuf {
    let path = voxd_bin().with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// An installed model from the test model store (`$VOXD_TEST_MODELS`,
/// filled by `scripts/bootstrap.sh test`).
pub fn test_model(id: &str) -> PathBuf {
    let store = std::env::var_os("VOXD_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/voxd/test-models")
        });
    let dir = store.join(id);
    assert!(
        dir.is_dir(),
        "test model {id} is not installed in {}: run `bash scripts/bootstrap.sh test` \
         (or `VOXD_MODELS_DIR={} voxd models pull {id}`)",
        store.display(),
        store.display()
    );
    dir
}

/// Writes `samples` (16 kHz mono, -1..1) as a 16-bit PCM WAV file.
pub fn write_wav(path: &Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in samples {
        w.write_sample((s * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// The generated speech clips (`$VOXD_TEST_AUDIO`, made by
/// `scripts/stt-test-audio.sh`, which `scripts/bootstrap.sh test` runs).
pub fn test_audio() -> PathBuf {
    let dir = std::env::var_os("VOXD_TEST_AUDIO")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/voxd/test-audio/stt")
        });
    assert!(
        dir.join(".complete").is_file(),
        "the STT test speech is not in {}: run `bash scripts/bootstrap.sh test`",
        dir.display()
    );
    dir
}

/// The tiny random BLIP of [`tiny_blip`], written once per build into
/// `CARGO_TARGET_TMPDIR` (atomically, so parallel tests share it).
pub fn tiny_blip_model() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = root.join(format!("tiny-blip-{}", tiny_blip::SEED));
    if dir.join("model.safetensors").is_file() {
        return dir;
    }
    let tokenizer = test_model("all-minilm-l6-v2").join("tokenizer.json");
    let tmp = tempfile::tempdir_in(&root).unwrap();
    tiny_blip::write(tmp.path(), tiny_blip::SEED, &tokenizer);
    // Another test may have won the race: theirs is the same bytes.
    let written = tmp.keep();
    if fs::rename(&written, &dir).is_err() {
        let _ = fs::remove_dir_all(&written);
    }
    dir
}

/// A private home for one daemon: runtime, config, data and cache dirs.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new(config_toml: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["run", "config/pulse", "data", "cache"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        // Listing sound devices opens ALSA's pulse plugin, whose client
        // would otherwise start a PulseAudio server for this home.
        fs::write(
            dir.path().join("config/pulse/client.conf"),
            "autospawn = no\n",
        )
        .unwrap();
        fs::write(dir.path().join("voxd.toml"), config_toml).unwrap();
        Home { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.path().join("run/voxd/voxd.sock")
    }

    /// `voxd <args>` in this home, with no VOXD_*, D-Bus or systemd
    /// variables leaking in from outside.
    pub fn voxd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(voxd_bin());
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("VOXD_")) {
            cmd.env_remove(key);
        }
        // Tests that want a bus or a service manager start their own.
        for key in [
            "DBUS_SESSION_BUS_ADDRESS",
            "DBUS_SYSTEM_BUS_ADDRESS",
            "NOTIFY_SOCKET",
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
        ] {
            cmd.env_remove(key);
        }
        cmd.env("HOME", self.path())
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("XDG_CACHE_HOME", self.path().join("cache"))
            .arg("--config")
            .arg(self.path().join("voxd.toml"))
            .args(args);
        cmd
    }

    /// Runs a client command to completion: (success, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.voxd(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A running `voxd serve`, killed on drop.
pub struct Daemon {
    pub home: Home,
    pub child: Child,
}

impl Daemon {
    pub fn start(config_toml: &str) -> Daemon {
        Daemon::start_in(Home::new(config_toml))
    }

    pub fn start_in(home: Home) -> Daemon {
        Daemon::start_with_env(home, &[])
    }

    /// A heavy daemon in `home`, started in its [`StartSlot`] and ready
    /// once it has indexed `notes` notes.
    pub fn start_indexed(home: Home, notes: u64) -> Daemon {
        Daemon::start_indexed_with_env(home, &[], notes)
    }

    /// [`Daemon::start_indexed`] with `env` set.
    pub fn start_indexed_with_env(home: Home, env: &[(&str, &str)], notes: u64) -> Daemon {
        let _slot = StartSlot::take();
        let daemon = Daemon::start_with_env(home, env);
        notes_indexed(&mut daemon.connect(), notes, || daemon.log());
        daemon
    }

    pub fn start_with_env(home: Home, env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(home, env, &[])
    }

    /// `voxd serve` with extra flags, e.g. `["--images", dir]`.
    pub fn start_with_args(home: Home, args: &[&str]) -> Daemon {
        Daemon::spawn(home, &[], args)
    }

    /// `voxd serve` run by `wrapper` (a program and its arguments, e.g.
    /// strace), in this home's environment. Stop it with `shutdown` and
    /// [`Daemon::wait_exit`]: killing the wrapper would leave voxd running.
    pub fn start_under(home: Home, wrapper: &[&str]) -> Daemon {
        let serve = home.voxd(&["serve", "--log-format", "text"]);
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..])
            .arg(serve.get_program())
            .args(serve.get_args());
        for (key, value) in serve.get_envs() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        let log = fs::File::create(home.path().join("voxd.log")).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", wrapper[0]));
        let mut daemon = Daemon { home, child };
        daemon.wait_ready();
        daemon
    }

    fn spawn(home: Home, env: &[(&str, &str)], args: &[&str]) -> Daemon {
        let child = Daemon::serve(&home, env, args);
        let mut daemon = Daemon { home, child };
        daemon.wait_ready();
        daemon
    }

    fn serve(home: &Home, env: &[(&str, &str)], args: &[&str]) -> Child {
        let log = fs::File::create(home.path().join("voxd.log")).unwrap();
        let mut serve = vec!["serve", "--log-format", "text"];
        serve.extend_from_slice(args);
        home.voxd(&serve)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Stops the daemon (SIGTERM) and starts it again in the same home.
    pub fn restart(&mut self) {
        assert!(self.terminate().success(), "{}", self.log());
        self.child = Daemon::serve(&self.home, &[], &[]);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + scaled_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("voxd serve exited with {status}:\n{}", self.log());
            }
            if UnixStream::connect(self.home.socket()).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("voxd serve did not become ready:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.home.path().join("voxd.log")).unwrap_or_default()
    }

    pub fn connect(&self) -> Conn {
        Conn::connect(&self.home.socket())
    }

    /// Where the daemon's HTTP API listens (`[http] listen`), from the
    /// `metrics` command.
    pub fn http_address(&self) -> String {
        self.connect().ok("metrics", json!({}))["http"]
            .as_str()
            .expect("the HTTP API listens")
            .to_owned()
    }

    /// [`wait_until_within`], with this daemon's log in the panic message.
    pub fn wait_until(&self, what: &str, within: Duration, cond: impl FnMut() -> bool) {
        assert!(
            waited(within, cond),
            "{}; the daemon's log:\n{}",
            timed_out(what, within),
            self.log()
        );
    }

    /// Sends SIGTERM and waits for the daemon to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        self.wait_exit()
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + scaled_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("voxd did not exit:\n{}", self.log());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One connection to the control socket.
pub struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Conn {
    pub fn connect(socket: &Path) -> Conn {
        let stream = UnixStream::connect(socket).unwrap();
        stream.set_read_timeout(Some(scaled_secs(60))).unwrap();
        Conn {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
            next_id: 1000,
        }
    }

    /// Waits up to `secs` ([`scaled`]) for each line (default 60 s).
    pub fn with_timeout(self, secs: u64) -> Conn {
        self.writer
            .set_read_timeout(Some(scaled_secs(secs)))
            .unwrap();
        self
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    pub fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// The next line from voxd as JSON, or `None` on EOF.
    pub fn read(&mut self) -> Option<Value> {
        self.try_read()
            .unwrap_or_else(|e| panic!("read from voxd failed: {e}"))
    }

    /// [`Conn::read`], with a failed read (e.g. the timeout) as an error.
    pub fn try_read(&mut self) -> std::io::Result<Option<Value>> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(
                serde_json::from_str(&line).expect("voxd sends JSON lines"),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends `{"id": <fresh>, "cmd": cmd, ...args}` without waiting, and
    /// returns the id.
    pub fn send(&mut self, cmd: &str, args: Value) -> Value {
        self.next_id += 1;
        let id = json!(self.next_id);
        let mut req = json!({ "id": id, "cmd": cmd });
        req.as_object_mut()
            .unwrap()
            .extend(args.as_object().cloned().unwrap_or_default());
        self.send_raw(format!("{req}\n").as_bytes());
        id
    }

    /// Sends `{"id": <fresh>, "cmd": cmd, ...args}` and returns voxd's reply.
    pub fn request(&mut self, cmd: &str, args: Value) -> Value {
        self.stream(cmd, args).1
    }

    /// [`Conn::request`], with the events of the request that came before
    /// its reply, in order.
    pub fn stream(&mut self, cmd: &str, args: Value) -> (Vec<Value>, Value) {
        let id = self.send(cmd, args);
        let mut events = Vec::new();
        loop {
            let msg = self.read().expect("voxd closed the connection");
            if msg["id"] != id {
                continue;
            }
            if msg.get("event").is_none() {
                return (events, msg);
            }
            events.push(msg);
        }
    }

    /// Reads the `llm.token` events of request `id` until `n` have come;
    /// anything else first is a failure.
    pub fn wait_tokens(&mut self, id: &Value, n: usize) {
        for _ in 0..n {
            let msg = self.read().expect("voxd closed the connection");
            assert!(
                msg["id"] == *id && msg["event"] == "llm.token",
                "expected a token event, got {msg}"
            );
        }
    }

    /// The result of a successful request.
    pub fn ok(&mut self, cmd: &str, args: Value) -> Value {
        let reply = self.request(cmd, args);
        assert_eq!(reply["ok"], json!(true), "{cmd} failed: {reply}");
        reply["result"].clone()
    }
}

/// `[engines] health_timeout_secs` for workers that are healthy: 10 s,
/// [`scaled`], so that a ping answered late on a loaded machine does not
/// restart a worker (and add states to a sequence a test asserts). Tests
/// of the health check itself set their own.
pub fn health_timeout_secs() -> u64 {
    scaled_secs(10).as_secs_f64().ceil() as u64
}

/// The `voxd-echo` test worker as both engines, in TOML, with `extra`
/// appended (e.g. more sections).
pub fn echo_engines_config(extra: &str) -> String {
    format!(
        r#"
[engines]
memory_budget_mb = 0
idle_unload_secs = 0
health_interval_secs = 1
health_timeout_secs = {timeout}
restart_backoff_initial_ms = 50
restart_backoff_max_ms = 200

[engines.stt]
command = "{echo}"
memory_mb = 10

[engines.llm]
command = "{echo}"
memory_mb = 10
{extra}
"#,
        echo = worker_bin("voxd-echo").display(),
        timeout = health_timeout_secs(),
    )
}

/// The test store's Gemma 3 270M (base) as the `llm` role, in TOML: one
/// thread, a `context`-token window, replies capped at `max_tokens`;
/// `extra` goes into `[engines.llm]`.
pub fn llm_config(max_tokens: u32, context: u32, extra: &str) -> String {
    let id = "gemma3-270m-base";
    let store = test_model(id).parent().expect("store dir").to_path_buf();
    format!(
        r#"
[models]
dir = "{store}"
llm = ["{id}"]

[engines]
idle_unload_secs = 0
health_interval_secs = 2
health_timeout_secs = 30
restart_backoff_initial_ms = 50
restart_backoff_max_ms = 200

[engines.llm]
command = "{worker}"
# One thread: on a busy machine (CI, parallel tests) llama.cpp's spinning
# thread barriers make two threads far slower than one.
threads = 1
context = {context}
batch = 256
max_tokens = {max_tokens}
{extra}
"#,
        store = store.display(),
        worker = worker_bin("voxd-llm").display(),
    )
}

/// A home with a copy of the fixture notes and the test model, `rag`
/// added to `[rag]` (it may open more sections after it).
pub fn notes_and_model_home(rag: &str) -> (Home, PathBuf) {
    notes_and_model_home_with(64, "", rag)
}

/// [`notes_and_model_home`] with replies capped at `max_tokens` and `llm`
/// added to `[engines.llm]`.
pub fn notes_and_model_home_with(max_tokens: u32, llm: &str, rag: &str) -> (Home, PathBuf) {
    let home = Home::new("");
    let notes = home.path().join("notes");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes"),
        &notes,
    );
    let extra = format!("{llm}\n\n[rag]\nnotes = [\"{}\"]\n{rag}", notes.display());
    fs::write(
        home.path().join("voxd.toml"),
        llm_config(max_tokens, 2048, &extra),
    )
    .unwrap();
    (home, notes)
}

/// Waits up to 180 s ([`scaled`]; a loaded CI machine indexes and loads
/// slowly) for `cond`, polling; panics with `what` on timeout.
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    wait_until_within(what, scaled_secs(180), cond);
}

/// [`wait_until`] with its own deadline (already scaled by the caller).
pub fn wait_until_within(what: &str, within: Duration, cond: impl FnMut() -> bool) {
    assert!(waited(within, cond), "{}", timed_out(what, within));
}

/// Polls `cond` until it holds (true) or `within` passes (false).
fn waited(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn timed_out(what: &str, within: Duration) -> String {
    format!(
        "timed out after {within:?} waiting for {what} \
         (a slow machine may set VOXD_TEST_TIME_SCALE, now {})",
        time_scale()
    )
}

/// A memory figure of process `pid` (`"self"` for this one) from
/// `/proc/<pid>/status`, in KiB: `VmRSS` (resident now) or `VmHWM` (peak).
pub fn proc_kib(pid: &str, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// One HTTP/1.1 request: (status, content type, body).
pub fn http(addr: &str, method: &str, path: &str) -> (u16, String, String) {
    let (status, head, body) = http_request(
        addr,
        &format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    (
        status,
        header(&head, "content-type").unwrap_or_default(),
        body,
    )
}

/// Sends `request` as is and reads the whole response (the request should
/// say `Connection: close`): (status, head, body, de-chunked).
pub fn http_request(addr: &str, request: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(scaled_secs(120))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {response:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if header(head, "transfer-encoding").as_deref() == Some("chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, head.to_owned(), body)
}

/// A header's value (lower-cased name), from a response head.
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The tests' Python, with the packages `scripts/bootstrap.sh` installs.
pub fn python() -> String {
    std::env::var("VOXD_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("VOXD_TEST_PYTHON is not set: run `bash scripts/bootstrap.sh test`")
    })
}
