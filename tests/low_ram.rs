//! The `tiny` profile holds (issue 7): a whole spoken question — a WAV file
//! with the wake word and a question about the notes fed to `voxd serve
//! --profile tiny --audio-in`, the spoken reply written to a WAV file — is
//! answered by Whisper and the language model while the test samples the
//! resident memory of voxd and every worker it starts, and then a second,
//! typed question after a transcription, when the budget counts both
//! engines by their measured peaks (and may keep them resident together).
//! The total never exceeds the profile's budget.

mod support;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;
use support::voice::{self, events_until, last, speech, RATE};
use support::wer::says;
use support::{copy_dir, test_model, worker_bin, Daemon, Home};

/// `engines.memory_budget_mb` of config/profiles/tiny.toml.
const TINY_BUDGET_MIB: u64 = 800;

/// The resident memory of a process and its descendants, sampled every
/// 20 ms on a thread until [`Sampler::stop`].
struct Sampler {
    done: Arc<AtomicBool>,
    thread: JoinHandle<Peak>,
}

/// The largest total seen, and what each process held at that moment.
#[derive(Debug, Default)]
struct Peak {
    total_kib: u64,
    by_process: Vec<(u32, String, u64)>,
    samples: usize,
}

impl Sampler {
    fn start(root: u32) -> Sampler {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = Peak::default();
            while !flag.load(Ordering::Relaxed) {
                let now = tree(root);
                let total = now.iter().map(|(_, _, kib)| kib).sum();
                if total > peak.total_kib {
                    peak.total_kib = total;
                    peak.by_process = now;
                }
                peak.samples += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        Sampler { done, thread }
    }

    fn stop(self) -> Peak {
        self.done.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// `(pid, name, VmRSS in KiB)` of `root` and all its descendants. A child
/// between fork and exec still runs `root`'s program and holds `root`'s
/// pages, not memory of its own: counting it would count the daemon twice
/// (CI saw "tokio-rt-worker 255 MiB" beside a 255 MiB daemon), so it is left
/// out until it becomes the worker it is spawning.
fn tree(root: u32) -> Vec<(u32, String, u64)> {
    let exe = |pid: u32| fs::read_link(format!("/proc/{pid}/exe")).ok();
    let root_exe = exe(root);
    let mut parent = HashMap::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // The parent pid is the second field after the `(comm)` field.
        if let Ok(stat) = fs::read_to_string(entry.path().join("stat")) {
            let after = stat.rsplit(')').next().unwrap_or("");
            if let Some(ppid) = after.split_whitespace().nth(1) {
                parent.insert(pid, ppid.parse::<u32>().unwrap_or(0));
            }
        }
    }
    let descends = |mut pid: u32| loop {
        if pid == root {
            return true;
        }
        match parent.get(&pid) {
            Some(&p) if p > 1 => pid = p,
            _ => return false,
        }
    };
    parent
        .keys()
        .filter(|&&pid| descends(pid))
        .filter(|&&pid| pid == root || exe(pid) != root_exe)
        .filter_map(|&pid| {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let field = |key: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(|v| v.trim().to_string())
            };
            let kib = field("VmRSS:")?
                .trim_end_matches(" kB")
                .trim()
                .parse()
                .ok()?;
            Some((pid, field("Name:").unwrap_or_default(), kib))
        })
        .collect()
}

/// A home on the `tiny` profile's own settings: only where the models, the
/// worker binaries, the notes and the reply go are configured.
fn tiny_home() -> Home {
    let store = test_model("openwakeword").parent().unwrap().to_path_buf();
    test_model(voice::LLM);
    let home = Home::new("");
    let notes = home.path().join("notes");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes"),
        &notes,
    );
    let config = format!(
        "[models]\ndir = {store:?}\nsources = [\"pypi\"]\n\n\
         [engines.stt]\ncommand = {stt:?}\n\n\
         [engines.llm]\ncommand = {llm:?}\n\n\
         [rag]\nnotes = [{notes:?}]\nanswer_mode = \"generative\"\n\n\
         [tts]\nvoice = \"piper-en_US-joe-medium\"\nvariation = 0.0\n\n\
         [audio]\noutput = \"wav\"\nfile = {reply:?}\n",
        store = store.display().to_string(),
        stt = worker_bin("voxd-stt").display().to_string(),
        llm = worker_bin("voxd-llm").display().to_string(),
        notes = notes.display().to_string(),
        reply = home.path().join("reply.wav").display().to_string(),
    );
    fs::write(home.path().join("voxd.toml"), config).unwrap();
    home
}

#[test]
fn a_spoken_question_on_the_tiny_profile_stays_within_its_memory_budget() {
    // The question as speech, in the voice of a throwaway daemon.
    let (wake, question) = {
        let daemon = Daemon::start_in(voice::home(""));
        let mut conn = daemon.connect().with_timeout(120);
        let dir = daemon.home.path();
        (
            speech(&mut conn, dir, "Hey Jarvis."),
            speech(&mut conn, dir, "What is the wifi password?"),
        )
    };
    let home = tiny_home();
    let wav_in = home.path().join("question.wav");
    // Time to index the notes and subscribe before the wake word (checked).
    let lead = support::lead_in(6.0);
    let mut audio = vec![0.0; lead];
    audio.extend(voice::woken(&wake, &question));
    support::write_wav(&wav_in, &audio);
    let reply_wav = home.path().join("reply.wav");

    let daemon = Daemon::start_with_args(
        home,
        &["--profile", "tiny", "--audio-in", wav_in.to_str().unwrap()],
    );
    let sampler = Sampler::start(daemon.child.id());
    let mut events = daemon.connect().with_timeout(240);
    events.ok(
        "subscribe",
        json!({ "events": ["engine.state", "transcript.final", "assistant.", "listen.error"] }),
    );
    let mut control = daemon.connect().with_timeout(240);
    support::wait_for_notes(&mut control, 5);
    support::assert_within_lead_in(&mut control, lead);
    let seen = events_until(&mut events, "assistant.reply", &daemon);
    let status = daemon.connect().ok("status", json!({}));

    // The whole question was answered, by the language model, aloud.
    let heard = last(&seen, "transcript.final")["text"].as_str().unwrap();
    let letters: String = heard
        .to_lowercase()
        .chars()
        .filter(char::is_ascii_alphabetic)
        .collect();
    assert!(letters.contains("wifipassword"), "{heard}");
    // The model's own answer stood (not replaced by a quote) and holds the
    // password: the test model says "47-moon [2]." here (measured).
    let reply = last(&seen, "assistant.reply");
    assert_eq!(reply["ask"]["mode"], "generative", "{reply}");
    assert_eq!(reply["ask"]["flags"], json!([]), "{reply}");
    assert!(reply["ask"]["llm"]["generated_tokens"].as_u64() > Some(0));
    let said = reply["text"].as_str().unwrap();
    assert!(said.contains("47-moon"), "{reply}");
    assert!(reply["spoken"].is_object(), "{reply}");
    let spoken = voxd::stt::wav::read(&reply_wav).unwrap();
    assert!(spoken.samples.len() > RATE as usize / 2, "{reply}");

    // Both heavy engines served, so the budget now counts them by their
    // measured peaks rather than tiny.toml's estimates.
    let ran: HashSet<&str> = seen
        .iter()
        .filter(|(name, _)| name == "engine.state")
        .map(|(_, data)| data["engine"].as_str().unwrap())
        .collect();
    assert_eq!(ran, HashSet::from(["stt", "llm"]), "{seen:#?}");
    for name in ["stt", "llm"] {
        let e = voice::engine(&status, name);
        let measured = e["measured_mb"].as_u64().unwrap_or(0);
        assert!(
            measured > 0 && measured < TINY_BUDGET_MIB,
            "{name} measured at {measured} MiB: {e}"
        );
    }

    // A second question, typed, after a transcription (of what was said
    // aloud: the model's answer): Whisper starts again, and where the
    // measured sizes fit it stays beside the model.
    let mut conn = daemon.connect().with_timeout(240);
    let heard = conn.ok("transcribe", json!({ "path": reply_wav }));
    let heard = heard["text"].as_str().unwrap();
    assert!(says(heard, "47 moon"), "{said:?} was heard as {heard:?}");
    let answer = conn.ok(
        "ask",
        json!({ "question": "When is Maria's birthday?", "mode": "generative" }),
    );
    // The model wrote an answer (it ran beside Whisper), but one with a
    // year no note holds ("2018", measured): it was replaced by the quote.
    assert!(answer["llm"]["generated_tokens"].as_u64() > Some(0));
    assert_eq!(answer["mode"], "extractive", "{answer}");
    assert_eq!(answer["flags"], json!(["unsupported_replaced"]), "{answer}");
    assert!(
        answer["text"].as_str().unwrap().contains("14 March"),
        "{answer}"
    );
    let second = conn.ok("status", json!({}));
    let peak = sampler.stop();
    eprintln!("after the second question: {}", second["budget"]);

    // `status` shows the budget and what each process holds.
    assert_eq!(status["profile"], "tiny", "{status}");
    assert_eq!(status["budget"]["budget_mb"], TINY_BUDGET_MIB, "{status}");
    assert!(status["rss_bytes"].as_u64() > Some(0), "{status}");
    let llm = voice::engine(&status, "llm");
    assert!(llm["rss_bytes"].as_u64() > Some(0), "{llm}");

    let mib = |kib: u64| kib as f64 / 1024.0;
    let by_process: Vec<String> = peak
        .by_process
        .iter()
        .map(|(pid, name, kib)| format!("{name} ({pid}) {:.0} MiB", mib(*kib)))
        .collect();
    eprintln!(
        "peak RSS of voxd and its workers: {:.0} MiB of {TINY_BUDGET_MIB} ({} samples): {}",
        mib(peak.total_kib),
        peak.samples,
        by_process.join(", ")
    );
    assert!(
        peak.total_kib <= TINY_BUDGET_MIB * 1024,
        "peak {:.0} MiB over the tiny budget: {by_process:?}\n{}",
        mib(peak.total_kib),
        daemon.log()
    );
}
