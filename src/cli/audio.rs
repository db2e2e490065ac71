//! `voxd audio devices`: the sound devices of this machine, inputs
//! (`listen.device`) and outputs (`audio.device`), by the name those keys
//! take. Works without a daemon.

use crate::audio::{self, DeviceInfo};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List input and output devices.
    Devices {
        /// Print JSON (`{"inputs": [...], "outputs": [...]}`) instead of tables.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    let Command::Devices { json } = cmd;
    let inputs = audio::input_devices();
    let outputs = audio::output_devices();
    if json {
        let list = |r: &Result<Vec<DeviceInfo>, audio::AudioError>| match r {
            Ok(d) => serde_json::json!(d),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        let all = serde_json::json!({ "inputs": list(&inputs), "outputs": list(&outputs) });
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    print_table(
        "input devices (listen.device)",
        &inputs,
        "no input devices (listen to a file with `voxd serve --audio-in FILE.wav`, \
         or stream PCM over the socket: listen.input = \"socket\")",
    );
    println!();
    print_table(
        "output devices (audio.device)",
        &outputs,
        "no output devices (write speech to a file with `voxd serve --audio-out FILE.wav`)",
    );
    Ok(())
}

fn print_table(title: &str, devices: &Result<Vec<DeviceInfo>, audio::AudioError>, none: &str) {
    println!("{title}:");
    let devices = match devices {
        Ok(d) => d,
        Err(e) => {
            println!("  cannot list them: {e}");
            println!("  {none}");
            return;
        }
    };
    if devices.is_empty() {
        println!("  {none}");
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
}
