//! `voxd serve`: runs the daemon in the foreground.

use std::io::IsTerminal;

use anyhow::Context as _;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Hardware profile: tiny, 2gb, 8gb or workstation (overrides `profile`).
    #[arg(long)]
    profile: Option<String>,
    /// Caption images dropped into DIR (repeatable; replaces `vision.folders`).
    #[arg(long = "images", value_name = "DIR")]
    images: Vec<std::path::PathBuf>,
    /// Log format on stderr: text (human), json, or auto (text, coloured on a TTY).
    #[arg(long, value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
    /// Write spoken replies to this WAV file instead of a sound device
    /// (sets audio.output = "wav" and audio.file).
    #[arg(long, value_name = "FILE.wav")]
    audio_out: Option<std::path::PathBuf>,
    /// Listen to this WAV file as if it were the microphone, from start-up
    /// (sets listen.input = "wav", listen.file and listen.start).
    #[arg(long, value_name = "FILE.wav")]
    audio_in: Option<std::path::PathBuf>,
    /// A notes folder to index and watch (repeatable; replaces `rag.notes`).
    #[arg(long = "notes", value_name = "DIR")]
    notes: Vec<std::path::PathBuf>,
    /// Serve the HTTP API on ADDR, e.g. 127.0.0.1:8088 (sets http.listen).
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// Serve Wyoming (Home Assistant) at URI: tcp://HOST:PORT or
    /// unix://PATH (sets wyoming.listen).
    #[arg(long, value_name = "URI")]
    wyoming: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Auto,
    Text,
    Json,
}

impl Args {
    /// The configuration keys these flags set.
    pub fn flags(&self) -> Vec<(String, toml::Value)> {
        let mut flags: Vec<(String, toml::Value)> = self
            .profile
            .iter()
            .map(|p| ("profile".to_string(), toml::Value::String(p.clone())))
            .collect();
        if let Some(file) = &self.audio_out {
            let file = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            flags.push(("audio.output".into(), toml::Value::String("wav".into())));
            flags.push((
                "audio.file".into(),
                toml::Value::String(file.display().to_string()),
            ));
        }
        if let Some(file) = &self.audio_in {
            let file = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            flags.push(("listen.input".into(), toml::Value::String("wav".into())));
            flags.push((
                "listen.file".into(),
                toml::Value::String(file.display().to_string()),
            ));
            flags.push(("listen.start".into(), toml::Value::Boolean(true)));
        }
        if let Some(uri) = &self.wyoming {
            flags.push(("wyoming.listen".into(), toml::Value::String(uri.clone())));
        }
        if !self.notes.is_empty() {
            let dirs = self
                .notes
                .iter()
                .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
                .map(|d| toml::Value::String(d.display().to_string()))
                .collect();
            flags.push(("rag.notes".to_string(), toml::Value::Array(dirs)));
        }
        if !self.images.is_empty() {
            let folders = self
                .images
                .iter()
                .map(|dir| {
                    // Relative to where `voxd serve` was started.
                    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
                    toml::Value::String(dir.display().to_string())
                })
                .collect();
            flags.push(("vision.folders".to_string(), toml::Value::Array(folders)));
        }
        if let Some(addr) = &self.http {
            flags.push(("http.listen".into(), toml::Value::String(addr.clone())));
        }
        flags
    }
}

pub fn run(args: Args, config: Loaded) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.config.daemon.log_level).with_context(|| {
        format!(
            "daemon.log_level {:?} is not a log filter (try info, debug or voxd=trace)",
            config.config.daemon.log_level
        )
    })?;
    // Stage spans (Whisper passes, a turn's ask and speech, each
    // sentence's synthesis) are debug-level: `voxd=debug` logs the time
    // of each as it closes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Auto => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    keep_large_blocks_mapped();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(crate::daemon::serve(config))?;
    Ok(())
}

/// Fixes glibc's mmap threshold at its default of 128 KiB. Left dynamic,
/// glibc raises it (up to 32 MiB) each time a large mapped block is freed;
/// the tensors of later sentences then come from the heap and, freed
/// between sentences of other lengths, fragment it for good. Measured with
/// `bench/tts.py`'s texts: the daemon held 215-286 MiB after the same
/// replies, varying from run to run, and 127 MiB with the threshold fixed
/// (see bench/README.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_large_blocks_mapped() {
    // SAFETY: mallopt only tunes malloc; no other thread runs yet.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_blocks_mapped() {}
