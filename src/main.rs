//! `voxd`: thin wiring of the client commands (replaced when the CLI lands).

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "voxd",
    version,
    about = "A private, offline voice assistant daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install and inspect models.
    Models(voxd::cli::models::ModelsArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("VOXD_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = voxd::config::Config::builtin();
    let result = match cli.command {
        Command::Models(args) => voxd::cli::models::run(&args, &config),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
