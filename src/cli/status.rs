//! `voxd status [--json]`

use serde_json::{json, Value};

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the raw JSON reply.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, config: &Loaded) -> anyhow::Result<()> {
    let status = Client::connect(config)?.call("status", json!({}))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(())
}

fn render(s: &Value) -> String {
    let uptime = s["uptime_secs"].as_f64().unwrap_or(0.0) as u64;
    let mib = |v: &Value| {
        v.as_u64()
            .map_or("?".to_string(), |b| format!("{} MiB", b.div_ceil(1 << 20)))
    };
    let mut out = format!(
        "voxd {} (protocol {}), pid {}, up {}h{:02}m{:02}s, {} resident\n\
         profile: {}\nsocket: {}\nrequests in flight: {}, connections: {}\n",
        s["version"].as_str().unwrap_or("?"),
        s["protocol"],
        s["pid"],
        uptime / 3600,
        uptime / 60 % 60,
        uptime % 60,
        mib(&s["rss_bytes"]),
        s["profile"].as_str().unwrap_or("?"),
        s["socket"].as_str().unwrap_or("?"),
        s["queue_depth"],
        s["connections"],
    );
    let budget = &s["budget"];
    let limit = match budget["budget_mb"].as_u64() {
        Some(0) | None => "no budget".to_string(),
        Some(mb) => format!("budget {mb} MiB"),
    };
    out += &format!("memory: {} MiB in use, {limit}\n", budget["used_mb"]);
    let speech = &s["speech"];
    out += &format!(
        "speech: {} utterance(s) queued or playing, voice {}\n",
        speech["active"],
        speech["voice"].as_str().unwrap_or("not loaded"),
    );
    out += "engines:\n";
    for e in s["engines"].as_array().into_iter().flatten() {
        out += &format!(
            "  {:<4} {:<8} pid {:<8} rss {:<9} needs {}, {} restarts, {} queued\n",
            e["name"].as_str().unwrap_or("?"),
            e["state"].as_str().unwrap_or("?"),
            e["pid"],
            if e["rss_bytes"].is_null() {
                "-".to_string()
            } else {
                mib(&e["rss_bytes"])
            },
            match e["measured_mb"].as_u64() {
                Some(mb) => format!("{mb} MiB (measured)"),
                None => format!("{} MiB (estimated)", e["memory_mb"]),
            },
            e["restarts"],
            e["queued"],
        );
        if let Some(err) = e["last_error"].as_str() {
            out += &format!("       last error: {err}\n");
        }
    }
    let wyoming = &s["wyoming"];
    if let Some(listen) = wyoming["listen"].as_str() {
        let requests: Vec<String> = wyoming["requests"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        out += &format!(
            "wyoming: {listen}, {} connection(s) open; requests: {}\n",
            wyoming["connections"],
            if requests.is_empty() {
                "none".to_string()
            } else {
                requests.join(", ")
            },
        );
    }
    let llm = &s["llm"];
    match llm["model"].as_object() {
        Some(m) => {
            out += &format!(
                "llm: {} ({}, {} parameters, context {}), prompt format {}\n",
                m["name"].as_str().unwrap_or("?"),
                m["quantization"].as_str().unwrap_or("unknown quantisation"),
                m["parameters"],
                m["context"],
                m["prompt_format"].as_str().unwrap_or("?"),
            );
        }
        None => out += "llm: not loaded\n",
    }
    if let Some(last) = llm["last_reply"].as_object() {
        out += &format!(
            "  last reply: {} tokens at {:.1} tokens/s, first token in {:.0} ms ({} of {} prompt tokens cached)\n",
            last["generated_tokens"],
            last["tokens_per_sec"].as_f64().unwrap_or(0.0),
            last["first_token_ms"].as_f64().unwrap_or(0.0),
            last["cached_tokens"],
            last["prompt_tokens"],
        );
    }
    out
}
