//! `voxd models list | pull | import | verify`: runs in the client process and needs
//! no daemon (the set-up script pulls models before the daemon starts).

use std::collections::BTreeMap;
use std::io::IsTerminal;

use anyhow::{bail, Context};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::{Config, Profile};
use crate::models::{
    self, Manifest, ModelState, ModelStatus, ModelsError, PullOptions, PullProgress, RoleOutcome,
    Store,
};

/// `voxd models …`
#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// The `models` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Show every model: installed / missing / partial / corrupt, size, path, who uses it.
    List {
        /// Print JSON (the same objects the daemon's `models` command returns).
        #[arg(long)]
        json: bool,
    },
    /// Download, verify (size + sha256) and install models atomically.
    ///
    /// With no ID: the models of the configured profile, one per role, each
    /// the first candidate that can be reached.
    Pull {
        /// Model ids to install.
        ids: Vec<String>,
        /// Install one model per role for this profile (tiny, 2gb, 8gb, workstation).
        #[arg(long, conflicts_with_all = ["ids", "all"])]
        profile: Option<String>,
        /// Install every model in the manifest.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Convert a CTranslate2 / faster-whisper Whisper directory (model.bin,
    /// config.json, vocabulary.txt or tokenizer.json) into whisper.cpp's ggml
    /// format, installed as STORE/ID/ggml-model.bin.
    ///
    /// Use it with `stt.model = "ID"` (or a path to the file).
    Import {
        /// The CTranslate2 model directory.
        path: std::path::PathBuf,
        /// Store id to install it under (default: the directory's name).
        #[arg(long)]
        id: Option<String>,
    },
    /// Re-hash installed files against the manifest.
    Verify {
        /// Model ids to check (default: every model with files on disk).
        ids: Vec<String>,
    },
}

/// Runs a `models` subcommand against `config`.
pub fn run(args: &ModelsArgs, config: &Config) -> anyhow::Result<()> {
    let manifest = Manifest::load(&config.models)?;
    let store = Store::from_config(&config.models)?;
    match &args.command {
        ModelsCommand::List { json } => {
            let list = models::list(&manifest, &store, &config.models)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_list(&store, &list);
            }
            Ok(())
        }
        ModelsCommand::Pull { ids, profile, all } => {
            let options = PullOptions::from_config(&config.models)?;
            let mut progress = BarProgress::new();
            if !ids.is_empty() || *all {
                let ids: Vec<String> = if *all {
                    manifest.ids().into_iter().map(String::from).collect()
                } else {
                    ids.clone()
                };
                if let [id] = ids.as_slice() {
                    let report = models::pull(&manifest, &store, id, &options, &mut progress)?;
                    println!("{}", describe_pull(&report));
                    return Ok(());
                }
                let mut failed = Vec::new();
                for id in &ids {
                    match models::pull(&manifest, &store, id, &options, &mut progress) {
                        Ok(report) => println!("{}", describe_pull(&report)),
                        Err(e) => {
                            progress.clear();
                            eprintln!("error: {e}");
                            failed.push(id.clone());
                        }
                    }
                }
                if !failed.is_empty() {
                    bail!(
                        "{} of {} model(s) not installed: {}",
                        failed.len(),
                        ids.len(),
                        failed.join(", ")
                    );
                }
                return Ok(());
            }
            let (name, roles) = match profile {
                Some(p) => {
                    let profile = Profile::from_name(p).with_context(|| {
                        format!("unknown profile `{p}` (tiny, 2gb, 8gb, workstation)")
                    })?;
                    (
                        profile.name().to_string(),
                        models::profile_models(profile, &config.models)?,
                    )
                }
                None => (config.profile.name().to_string(), config.models.clone()),
            };
            println!(
                "pulling the models of profile {name} into {}",
                store.dir().display()
            );
            let outcomes = models::pull_roles(&manifest, &store, &roles, &options, &mut progress)?;
            progress.clear();
            let mut unfilled = Vec::new();
            for outcome in &outcomes {
                println!("{}", describe_role(outcome));
                if outcome.chosen.is_none() {
                    unfilled.push(outcome.role.to_string());
                }
            }
            if !unfilled.is_empty() {
                return Err(ModelsError::RolesUnfilled { roles: unfilled }.into());
            }
            Ok(())
        }
        ModelsCommand::Import { path, id } => {
            let id = match id {
                Some(id) => id.clone(),
                None => path
                    .canonicalize()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .with_context(|| {
                        format!("cannot name a model after {}; pass --id", path.display())
                    })?,
            };
            if id.is_empty() || id.contains('/') || id.starts_with('.') {
                bail!("model id {id:?} must be a plain directory name");
            }
            let dest = models::import::ggml_path(&store, &id);
            let mut progress = BarProgress::new();
            let report = models::import::import_ct2(path, &dest, &mut progress)?;
            progress.clear();
            println!(
                "{id}: imported {} tensors ({}, {} layers, width {}, {}) in {:.1} s → {}",
                report.tensors,
                HumanBytes(report.bytes),
                report.layers,
                report.n_state,
                if report.multilingual {
                    "multilingual"
                } else {
                    "English-only"
                },
                report.elapsed_ms as f64 / 1000.0,
                report.path.display()
            );
            Ok(())
        }
        ModelsCommand::Verify { ids } => {
            let mut progress = BarProgress::new();
            let mut bad = Vec::new();
            for spec in &manifest.models {
                let wanted = if ids.is_empty() {
                    store.status(spec).state != ModelState::Missing
                } else {
                    ids.contains(&spec.id)
                };
                if !wanted {
                    continue;
                }
                let status = store.verify(spec, &mut progress);
                progress.clear();
                println!("{:<28} {}", status.id, status.state.name());
                for f in &status.files {
                    if f.state != models::FileState::Present {
                        println!("  {:<40} {:?}", f.name, f.state);
                    } else if !f.pinned {
                        println!(
                            "  {:<40} present (unpinned: size/sha256 not in the manifest)",
                            f.name
                        );
                    }
                }
                if status.state != ModelState::Installed {
                    bad.push(status.id);
                }
            }
            for id in ids {
                manifest.get(id)?;
            }
            if !bad.is_empty() {
                return Err(ModelsError::VerifyFailed { ids: bad }.into());
            }
            Ok(())
        }
    }
}

fn print_list(store: &Store, list: &[ModelStatus]) {
    println!("model store: {}", store.dir().display());
    println!(
        "{:<28} {:<6} {:<10} {:>10}  {:<8} {:<40} USED BY",
        "ID", "KIND", "STATE", "SIZE", "VERIFY", "PATH"
    );
    for m in list {
        let size = match (m.size, m.state) {
            (Some(s), _) => HumanBytes(s).to_string(),
            (None, ModelState::Installed) => HumanBytes(m.installed_bytes).to_string(),
            (None, _) => "?".to_string(),
        };
        // Pinned: size + sha256 from the manifest. Unpinned (hub-only): the
        // hub's LFS sha256 was checked at download; nothing to re-check later.
        let verify = if m.pinned { "sha256" } else { "hub-only" };
        let path = if m.state == ModelState::Missing {
            "-".to_string()
        } else {
            m.path.display().to_string()
        };
        println!(
            "{:<28} {:<6} {:<10} {:>10}  {:<8} {:<40} {}",
            m.id,
            m.kind.name(),
            m.state.name(),
            size,
            verify,
            path,
            used_by(m)
        );
    }
}

/// `llm: tiny 2gb (fallback: 8gb workstation)`-style summary, per role.
fn used_by(m: &ModelStatus) -> String {
    let mut roles: BTreeMap<&str, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for u in &m.used_by {
        let who = u.profile.clone().unwrap_or_else(|| "config".to_string());
        let entry = roles.entry(u.role.name()).or_default();
        if u.rank == 0 {
            entry.0.push(who);
        } else {
            entry.1.push(who);
        }
    }
    roles
        .into_iter()
        .map(|(role, (first, fallback))| {
            let mut s = format!("{role}: {}", first.join(" "));
            if !fallback.is_empty() {
                s.push_str(&format!(" (fallback: {})", fallback.join(" ")));
            }
            s.trim_end().replace(":  (", ": (")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe_pull(report: &models::PullReport) -> String {
    match &report.source {
        None => format!(
            "{}: already installed in {}",
            report.id,
            report.path.display()
        ),
        Some(source) => {
            let bytes: u64 = report.installed.iter().map(|f| f.size).sum();
            format!(
                "{}: installed {} file(s), {} from {source} in {:.1} s → {}",
                report.id,
                report.installed.len(),
                HumanBytes(bytes),
                report.elapsed_ms as f64 / 1000.0,
                report.path.display()
            )
        }
    }
}

fn describe_role(outcome: &RoleOutcome) -> String {
    let mut line = format!("{}: ", outcome.role);
    for (id, error) in &outcome.skipped {
        let why = match error {
            ModelsError::Unreachable { failures, .. } if !failures.is_empty() => failures
                .iter()
                .map(|f| format!("{}: {}", f.source, f.error))
                .collect::<Vec<_>>()
                .join(" · "),
            other => other.to_string(),
        };
        line.push_str(&format!("{id} unreachable ({why}) → "));
    }
    match &outcome.chosen {
        None => line.push_str("nothing installed"),
        Some(report) => {
            let what = if outcome.skipped.is_empty() {
                ""
            } else {
                "fallback "
            };
            let done = match &report.source {
                None => format!("{what}{} already installed", report.id),
                Some(source) => {
                    let bytes: u64 = report.installed.iter().map(|f| f.size).sum();
                    format!(
                        "installed {what}{} ({}, from {source}, {:.1} s)",
                        report.id,
                        HumanBytes(bytes),
                        report.elapsed_ms as f64 / 1000.0
                    )
                }
            };
            line.push_str(&done);
            if let Some(note) = &outcome.note {
                line.push_str(&format!(" ({note})"));
            }
        }
    }
    line
}

/// Renders progress with indicatif on stderr; hidden when stderr is not a TTY
/// (notes are then printed as plain lines).
struct BarProgress {
    bar: Option<ProgressBar>,
    tty: bool,
}

impl BarProgress {
    fn new() -> BarProgress {
        BarProgress {
            bar: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl PullProgress for BarProgress {
    fn start(&mut self, label: &str, total: Option<u64>) {
        self.clear();
        if !self.tty {
            return;
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let style = match total {
            Some(_) => ProgressStyle::with_template(
                "{msg:40!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            ),
            None => ProgressStyle::with_template("{spinner} {msg} {bytes} {elapsed}"),
        };
        if let Ok(style) = style {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(150));
        self.bar = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn finish(&mut self) {
        self.clear();
    }

    fn note(&mut self, line: &str) {
        tracing::info!("{line}");
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}
