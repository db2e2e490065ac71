//! Sound devices with no sound hardware: a private PulseAudio [`Server`]
//! whose one sink is a null sink (it consumes audio in real time and
//! discards it), reached through ALSA's `pulse` plugin, the way cpal opens
//! any ALSA device. Its monitor source is a microphone that hears what is
//! played into the sink; stopping and restarting the server is a device
//! that goes away and comes back.
//!
//! [`PacedDevice`] plays at the pace of a sound card: ALSA's `file` plugin
//! in front of the sink keeps a copy of every frame the device took, so a
//! test can see what was played and when it stopped.
//!
//! (ALSA's `null` plugin takes audio as fast as it is written, and the
//! `snd-aloop` loopback card needs a kernel module a container lacks.)

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The device's name, as `voxd audio devices` lists it (`audio.device`).
pub const DEVICE: &str = "voxd paced output";

/// A private PulseAudio server whose one sink is a null sink, `voxd`;
/// its monitor source, `voxd.monitor`, hears whatever is played into it.
pub struct Server {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        let mut server = Server {
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        server.restart();
        server
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("native")
    }

    /// Starts the server (again, on the same socket) and waits until it
    /// listens.
    pub fn restart(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("pulseaudio.log"))
            .unwrap();
        let child = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--log-target=stderr",
                "-L",
                &format!(
                    "module-native-protocol-unix socket={} auth-anonymous=1",
                    self.socket().display()
                ),
                "-L",
                "module-null-sink sink_name=voxd",
            ])
            .env("HOME", self.dir.path())
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env("PULSE_RUNTIME_PATH", self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("pulseaudio runs (scripts/bootstrap.sh installs it)");
        let (socket, dir) = (self.socket(), self.dir.path());
        let child = self.child.insert(child);
        super::wait_until("PulseAudio listens", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("pulseaudio exited with {status}:\n{}", log_in(dir));
            }
            UnixStream::connect(&socket).is_ok()
        });
    }

    /// Kills the server, as a crash or an unplugged sound card would end it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_file(self.socket());
    }

    /// The environment that points ALSA's pulse plugin at this server.
    pub fn env(&self) -> (&'static str, String) {
        ("PULSE_SERVER", format!("unix:{}", self.socket().display()))
    }

    pub fn log(&self) -> String {
        log_in(self.dir.path())
    }
}

fn log_in(dir: &Path) -> String {
    fs::read_to_string(dir.join("pulseaudio.log")).unwrap_or_default()
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A device that plays at the pace of a sound card into a [`Server`].
pub struct PacedDevice {
    server: Server,
    /// Every frame the device took, in its format (see `voxd audio devices`).
    pub raw: PathBuf,
}

impl PacedDevice {
    /// Starts the server and defines the device in `home`'s `.asoundrc`.
    pub fn start(home: &Path) -> PacedDevice {
        let device = PacedDevice {
            server: Server::start(),
            raw: home.join("played.raw"),
        };
        fs::write(
            home.join(".asoundrc"),
            format!(
                "pcm.voxdpulse {{\n  type pulse\n  device \"voxd\"\n}}\n\
                 pcm.voxdpaced {{\n  type file\n  slave.pcm \"voxdpulse\"\n  file \"{}\"\n  \
                 format \"raw\"\n  hint {{ show on description \"{DEVICE}\" }}\n}}\n",
                device.raw.display()
            ),
        )
        .unwrap();
        device
    }

    /// The environment that points ALSA's pulse plugin at this server.
    pub fn env(&self) -> (&'static str, String) {
        self.server.env()
    }

    pub fn log(&self) -> String {
        self.server.log()
    }

    /// What the device has taken so far; `format` is its sample format as
    /// `voxd audio devices` names it (`i16` or `f32`).
    pub fn taken(&self, rate: u64, channels: u64, format: &str) -> Taken {
        let bytes = fs::read(&self.raw).unwrap_or_default();
        // Louder than -60 dBFS.
        let loud: Vec<bool> = match format {
            "i16" => bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]).unsigned_abs() > 32)
                .collect(),
            "f32" => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).abs() > 0.001)
                .collect(),
            other => panic!("sample format {other} is not handled here"),
        };
        let secs = |samples: usize| samples as f64 / (rate * channels) as f64;
        Taken {
            first: loud.iter().position(|&l| l).map(secs),
            last: loud.iter().rposition(|&l| l).map(secs),
            total: secs(loud.len()),
        }
    }
}

/// Seconds of audio from the moment the device was opened.
#[derive(Debug, Clone, Copy)]
pub struct Taken {
    /// The first sound.
    pub first: Option<f64>,
    /// The last sound.
    pub last: Option<f64>,
    /// Everything taken, silence included.
    pub total: f64,
}

impl Taken {
    /// Seconds from the first sound to the last.
    pub fn sound(&self) -> f64 {
        match (self.first, self.last) {
            (Some(first), Some(last)) => last - first,
            _ => 0.0,
        }
    }

    /// Seconds of silence taken after the last sound.
    pub fn quiet(&self) -> f64 {
        self.total - self.last.unwrap_or(0.0)
    }
}
