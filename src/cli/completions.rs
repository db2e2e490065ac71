//! `voxd completions SHELL`: the shell completion script for voxd, printed
//! to stdout. Generated from the command-line definitions alone, so it
//! needs neither a config nor a daemon.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut cmd = super::Cli::command();
    let name = cmd.get_name().to_string();
    // Into a buffer first: `generate` panics on a write error, and
    // `voxd completions bash | head` must end quietly.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name, &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(())
}
