//! The `voxd` command line: `voxd serve` runs the daemon, every other
//! subcommand is a client of its control socket (or, for `config` and
//! `models`, works locally without a daemon; `completions` and `man` need
//! neither a daemon nor a config). One file per command; this module owns
//! argument parsing and the process's exit code.

mod ask;
mod audio;
mod caption;
mod client;
mod commands;
mod completions;
mod config;
mod engine;
mod generate;
mod history;
mod http;
mod images;
mod listen;
mod man;
mod metrics;
pub mod models;
mod notes;
mod ping;
mod rag;
mod reload;
mod respond;
mod say;
mod serve;
mod service;
mod shutdown;
mod status;
mod stop;
mod subscribe;
mod transcribe;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{LoadOptions, Loaded};

/// voxd: a private, offline voice assistant.
#[derive(Debug, Parser)]
#[command(name = "voxd", version, about, propagate_version = true)]
pub struct Cli {
    /// Config file to use instead of $XDG_CONFIG_HOME/voxd/voxd.toml.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Control socket path (overrides daemon.socket).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon in the foreground.
    Serve(serve::Args),
    /// Check that the daemon answers.
    Ping,
    /// Show the daemon's version, uptime, profile, engines and queues.
    Status(status::Args),
    /// Show the effective configuration and where each value came from.
    #[command(subcommand)]
    Config(config::Command),
    /// Start (preload) or stop an engine worker.
    Engine(engine::Args),
    /// Generate text from a raw prompt, streaming it to stdout.
    Generate(generate::Args),
    /// Load the language model afresh (or another GGUF) without a restart.
    Reload(reload::Args),
    /// Install, list and verify models.
    Models(models::ModelsArgs),
    /// Print every metric in the Prometheus text format.
    Metrics,
    /// The HTTP API's bearer token (`voxd http token`).
    #[command(subcommand)]
    Http(http::Command),
    /// Install, remove or inspect voxd as a systemd/launchd user service.
    Service(service::Args),
    /// Caption image files now and print the captions.
    Caption(caption::Args),
    /// List or forget the images captioned from the watched folders.
    Images(images::Args),
    /// Print daemon events as JSON lines until interrupted.
    Subscribe(subscribe::Args),
    /// Stop the daemon gracefully.
    Shutdown,
    /// Speak text (through the daemon's audio output, or into a WAV file).
    Say(say::Args),
    /// Stop speaking now and clear the speech queue.
    Stop,
    /// Sound devices.
    #[command(subcommand)]
    Audio(audio::Command),
    /// Print the transcript of a WAV file (the daemon reads the file).
    Transcribe(transcribe::Args),
    /// One assistant turn on text, as if spoken: intents, commands, else ask; spoken reply.
    Respond(respond::Args),
    /// Listen to the microphone for wake words and questions (--stop, --status).
    Listen(listen::Args),
    /// Ask a question; answers from your notes with citations.
    Ask(ask::Args),
    /// Search, reindex or inspect the notes index.
    #[command(subcommand)]
    Notes(notes::Command),
    /// Switch answering from the notes on or off (or show it).
    Rag(rag::Args),
    /// List conversation sessions, or show one.
    History(history::Args),
    /// Delete a conversation session's history.
    Forget(history::ForgetArgs),
    /// The user's commands (commands.toml): list, test a text, reload.
    #[command(subcommand)]
    Commands(commands::Command),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
    /// Print the man page (roff), or write one page per subcommand (--dir).
    Man(man::Args),
}

/// Runs the command line and maps errors to a message and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `voxd config show | head` is not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voxd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut flags = Vec::new();
    if let Some(socket) = &cli.socket {
        flags.push((
            "daemon.socket".to_string(),
            toml::Value::String(socket.display().to_string()),
        ));
    }
    if let Command::Serve(args) = &cli.command {
        flags.extend(args.flags());
    } else {
        // Client commands log warnings only; `voxd serve` sets up its own.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let load = || -> anyhow::Result<Loaded> {
        Ok(crate::config::load(&LoadOptions {
            config_file: cli.config.clone(),
            env: LoadOptions::env_from_process(),
            flags: flags.clone(),
        })?)
    };
    match cli.command {
        Command::Serve(args) => serve::run(args, load()?),
        Command::Ping => ping::run(&load()?),
        Command::Status(args) => status::run(args, &load()?),
        Command::Config(cmd) => config::run(cmd, load),
        Command::Engine(args) => engine::run(args, &load()?),
        Command::Generate(args) => generate::run(args, &load()?),
        Command::Reload(args) => reload::run(args, &load()?),
        Command::Models(args) => models::run(&args, &load()?.config),
        Command::Metrics => metrics::run(&load()?),
        Command::Http(cmd) => http::run(cmd, &load()?),
        Command::Service(args) => service::run(args, &load()?, cli.config.clone()),
        Command::Caption(args) => caption::run(args, &load()?),
        Command::Images(args) => images::run(args, &load()?),
        Command::Subscribe(args) => subscribe::run(args, &load()?),
        Command::Shutdown => shutdown::run(&load()?),
        Command::Say(args) => say::run(args, &load()?),
        Command::Stop => stop::run(&load()?),
        Command::Audio(cmd) => audio::run(cmd),
        Command::Transcribe(args) => transcribe::run(args, &load()?),
        Command::Respond(args) => respond::run(args, &load()?),
        Command::Listen(args) => listen::run(args, &load()?),
        Command::Ask(args) => ask::run(args, &load()?),
        Command::Notes(cmd) => notes::run(cmd, &load()?),
        Command::Rag(args) => rag::run(args, &load()?),
        Command::History(args) => history::run(args, &load()?),
        Command::Forget(args) => history::forget(args, &load()?),
        Command::Commands(cmd) => commands::run(cmd, &load()?),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    }
}
