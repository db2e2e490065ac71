//! `voxd http token`: the HTTP API's bearer token. Prints it (making one
//! when there is none, or a new one with `--new`); clients send it as
//! `Authorization: Bearer <token>`. The daemon reads the file at start.

use anyhow::Context as _;

use crate::config::Loaded;
use crate::doors::http::token;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the API token, creating it (0600) if there is none.
    Token(TokenArgs),
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Replace the token with a new one (restart voxd to use it).
    #[arg(long)]
    new: bool,
}

pub fn run(cmd: Command, config: &Loaded) -> anyhow::Result<()> {
    let Command::Token(args) = cmd;
    let path = token::path(&config.config.http)?;
    let existing = if args.new {
        None
    } else {
        std::fs::read_to_string(&path)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    let value = match existing {
        Some(value) => value,
        None => {
            let value = token::create(&path).context("making the HTTP token")?;
            eprintln!("voxd: wrote a new HTTP token to {}", path.display());
            value
        }
    };
    println!("{value}");
    Ok(())
}
