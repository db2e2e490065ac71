//! `voxd man`: the man page (roff) of voxd, printed to stdout; with
//! `--dir DIR`, one page per subcommand written into DIR (`voxd.1`,
//! `voxd-ask.1`, `voxd-config-show.1`, ...). Generated from the
//! command-line definitions alone, so it needs neither a config nor a
//! daemon.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write voxd.1 and one page per subcommand (voxd-ask.1, ...) into DIR.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cmd = super::Cli::command();
    if let Some(dir) = args.dir {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        clap_mangen::generate_to(cmd, &dir)
            .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
        return Ok(());
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut page)?;
    std::io::stdout().lock().write_all(&page)?;
    Ok(())
}
