//! `voxd audio devices`: the sound output devices of this machine, by the
//! name `audio.device` takes. Works without a daemon.

use crate::audio;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List output devices.
    Devices {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    let Command::Devices { json } = cmd;
    let devices = audio::output_devices()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
        return Ok(());
    }
    if devices.is_empty() {
        println!(
            "no output devices (write speech to a file with `voxd serve --audio-out FILE.wav`)"
        );
    }
    for d in devices {
        let format = match (d.sample_rate, d.channels) {
            (Some(rate), Some(ch)) => format!("{rate} Hz, {ch} ch"),
            _ => "unavailable".to_string(),
        };
        println!(
            "{} {:<32} {:<20} {}",
            if d.default { "*" } else { " " },
            d.name,
            format,
            d.id
        );
    }
    Ok(())
}
