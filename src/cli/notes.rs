//! `voxd notes search "…" | reindex | status`.

use std::io::Write;

use serde_json::{json, Value};

use super::client::Client;
use crate::config::Loaded;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Search the notes (BM25 + embeddings); one hit per line:
    /// `[N] PATH:START-END  SCORE  SNIPPET`.
    Search {
        query: String,
        /// Hits to show (default: rag.top_k).
        #[arg(long)]
        limit: Option<usize>,
        /// Print the hits as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rescan every notes folder now.
    Reindex,
    /// Files, chunks, last update and skipped files.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Command, config: &Loaded) -> anyhow::Result<()> {
    let mut client = Client::connect(config)?;
    let mut out = std::io::stdout().lock();
    match cmd {
        Command::Search { query, limit, json } => {
            let result = client.call(
                "notes",
                json!({ "action": "search", "query": query, "limit": limit }),
            )?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&result["hits"])?)?;
                return Ok(());
            }
            for (i, hit) in result["hits"].as_array().into_iter().flatten().enumerate() {
                let snippet: String = hit["text"]
                    .as_str()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                let snippet: String = snippet.chars().take(100).collect();
                writeln!(
                    out,
                    "[{}] {}:{}-{}  {:.3}  {}",
                    i + 1,
                    hit["path"].as_str().unwrap_or(""),
                    hit["line_start"],
                    hit["line_end"],
                    hit["cosine"].as_f64().unwrap_or(0.0),
                    snippet
                )?;
            }
        }
        Command::Reindex => {
            let r = client.call("notes", json!({ "action": "reindex" }))?;
            writeln!(
                out,
                "{} files: {} indexed ({} chunks), {} unchanged, {} removed, {} skipped in {} ms",
                r["files"],
                r["indexed"],
                r["chunks"],
                r["unchanged"],
                r["removed"],
                r["skipped"],
                r["elapsed_ms"]
            )?;
        }
        Command::Status { json } => {
            let s = client.call("notes", json!({ "action": "status" }))?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
                return Ok(());
            }
            print_status(&mut out, &s)?;
        }
    }
    Ok(())
}

fn print_status(out: &mut impl Write, s: &Value) -> anyhow::Result<()> {
    let folders: Vec<&str> = s["folders"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    writeln!(
        out,
        "rag:         {}",
        if s["enabled"] == json!(true) {
            "on"
        } else {
            "off"
        }
    )?;
    writeln!(
        out,
        "folders:     {}",
        if folders.is_empty() {
            "(none)".to_string()
        } else {
            folders.join(", ")
        }
    )?;
    writeln!(out, "index:       {}", s["index"].as_str().unwrap_or(""))?;
    writeln!(out, "files:       {}", s["files"])?;
    writeln!(out, "images:      {}", s["images"])?;
    writeln!(
        out,
        "chunks:      {} ({} embedded)",
        s["chunks"], s["embedded_chunks"]
    )?;
    writeln!(
        out,
        "sentences:   {} ({} embedded)",
        s["sentences"], s["embedded_sentences"]
    )?;
    let last = s["last_update"]
        .as_u64()
        .map_or("never".to_string(), |t| format!("{t} (unix seconds)"));
    writeln!(out, "last update: {last}")?;
    writeln!(out, "indexing:    {}", s["indexing"])?;
    writeln!(
        out,
        "embedder:    {}",
        s["embedder"].as_str().unwrap_or("(not loaded)")
    )?;
    if let Some(e) = s["error"].as_str() {
        writeln!(out, "error:       {e}")?;
    }
    for skipped in s["skipped"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "skipped:     {}: {}",
            skipped["path"].as_str().unwrap_or(""),
            skipped["reason"].as_str().unwrap_or("")
        )?;
    }
    Ok(())
}
