//! `ask` at the core's own boundary: [`Answerer`] with a scripted language
//! model and scripted notes, in process, in milliseconds. Each branch of an
//! answer (abstain, extractive, generative replaced or kept, the model
//! failing, history trimmed to the budget, cancellation, storing the turn)
//! is driven exactly. The daemon tests (`tests/llm.rs`, `tests/rag.rs`)
//! run the same code with the real models through the socket.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voxd::assistant::{
    Answerer, AskEvent, AskReply, AskRequest, AskSettings, AssistantError, Notes, ResetReason,
};
use voxd::config::AnswerMode;
use voxd::conversation::{estimate_tokens, History, Turn};
use voxd::error::{ErrorKind, Kind};
use voxd::llm::{
    Finish, GenerateRequest, GenerateStats, Llm, LlmError, LlmStatus, ModelInfo, Prompt,
    PromptFormat,
};
use voxd::rag::answer::{Flag, Source, Used, ABSTAIN_TEXT};
use voxd::rag::chunk::Lines;
use voxd::rag::index::SentenceRow;
use voxd::rag::{DocKind, Prepared, RagError};

const WIFI: &str = "The wifi password is kettle-47-moon.";
const DOOR: &str = "The front door code is 4417.";
const EXTRACTIVE: &str = "From home.md: \"The wifi password is kettle-47-moon.\"";

/// What the scripted model does with a request.
#[derive(Clone)]
enum Script {
    /// Streams these pieces, then finishes.
    Say(Vec<&'static str>),
    /// Streams these pieces, then fails.
    FailAfter(Vec<&'static str>),
    /// Streams these pieces, then never finishes.
    Hang(Vec<&'static str>),
}

/// A language model that follows a [`Script`] and records its requests.
struct Scripted {
    script: Script,
    requests: Mutex<Vec<GenerateRequest>>,
    /// Set when a generation is dropped before it finished (cancelled).
    dropped: Arc<AtomicBool>,
}

impl Scripted {
    fn new(script: Script) -> Arc<Scripted> {
        Arc::new(Scripted {
            script,
            requests: Mutex::new(Vec::new()),
            dropped: Arc::new(AtomicBool::new(false)),
        })
    }

    fn requests(&self) -> Vec<GenerateRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// Sets its flag when dropped, unless disarmed.
struct DropFlag(Arc<AtomicBool>, bool);

impl Drop for DropFlag {
    fn drop(&mut self) {
        if self.1 {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

fn info() -> ModelInfo {
    ModelInfo {
        name: "scripted".into(),
        path: "/scripted.gguf".into(),
        quantization: None,
        parameters: None,
        context: 2048,
        prompt_format: PromptFormat::Completion,
        chat_template: None,
    }
}

#[async_trait]
impl Llm for Scripted {
    async fn info(&self) -> Result<ModelInfo, LlmError> {
        Ok(info())
    }

    async fn reload(&self, _: Option<std::path::PathBuf>) -> Result<ModelInfo, LlmError> {
        Ok(info())
    }

    fn status(&self) -> LlmStatus {
        LlmStatus::default()
    }

    async fn generate(
        &self,
        request: GenerateRequest,
        tokens: mpsc::Sender<String>,
    ) -> Result<GenerateStats, LlmError> {
        self.requests.lock().unwrap().push(request);
        let mut guard = DropFlag(self.dropped.clone(), true);
        let (pieces, end) = match &self.script {
            Script::Say(p) => (p, "done"),
            Script::FailAfter(p) => (p, "fail"),
            Script::Hang(p) => (p, "hang"),
        };
        for piece in pieces {
            tokens.send(piece.to_string()).await.unwrap();
        }
        match end {
            "fail" => {
                guard.1 = false;
                Err(LlmError::Model("the worker crashed".into()))
            }
            "hang" => std::future::pending().await,
            _ => {
                guard.1 = false;
                Ok(GenerateStats {
                    prompt_tokens: 10,
                    cached_tokens: 0,
                    generated_tokens: pieces.len() as u32,
                    first_token_ms: 1.0,
                    tokens_per_sec: 100.0,
                    finish: Finish::Stop,
                })
            }
        }
    }
}

/// Notes that always retrieve the same two sources, with `best` as the
/// best score.
struct Fixed {
    best: f32,
}

fn sentence(text: &str, line: u32, vector: [f32; 2]) -> SentenceRow {
    SentenceRow {
        text: text.into(),
        lines: Lines {
            start: line,
            end: line,
        },
        revision: 1,
        vector: Some(vector.to_vec()),
    }
}

fn source(n: usize, name: &str, score: f32, row: SentenceRow) -> Source {
    Source {
        n,
        kind: DocKind::Note,
        path: format!("/notes/{name}"),
        name: name.into(),
        heading: String::new(),
        lines: row.lines,
        score,
        sentences: vec![row],
    }
}

#[async_trait]
impl Notes for Fixed {
    fn enabled(&self) -> bool {
        true
    }

    async fn prepare(&self, _: &str) -> Result<Prepared, RagError> {
        let wifi = sentence(WIFI, 4, [1.0, 0.0]);
        let door = sentence(DOOR, 2, [0.0, 1.0]);
        Ok(Prepared {
            sources: vec![
                source(1, "home.md", self.best, wifi.clone()),
                source(2, "door.md", self.best * 0.9, door.clone()),
            ],
            query: vec![1.0, 0.0],
            sentence_vectors: vec![vec![wifi.vector.unwrap()], vec![door.vector.unwrap()]],
            dropped: HashSet::new(),
            best_score: self.best,
        })
    }
}

fn settings(mode: AnswerMode) -> AskSettings {
    AskSettings {
        answer_mode: mode,
        min_score: 0.3,
        prompt_relative_score: 0.6,
        max_answer_tokens: 64,
        context: 2048,
        max_turns: 20,
    }
}

struct Setup {
    answerer: Answerer,
    llm: Arc<Scripted>,
    history: Arc<History>,
    _dir: tempfile::TempDir,
}

fn setup(script: Script, best: f32, settings: AskSettings) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let history = Arc::new(History::open(&dir.path().join("history.sqlite")).unwrap());
    let llm = Scripted::new(script);
    let notes = Arc::new(Fixed { best });
    let answerer = Answerer::new(llm.clone(), notes, Some(history.clone()), settings);
    Setup {
        answerer,
        llm,
        history,
        _dir: dir,
    }
}

/// Asks, returning the reply and every event in order.
async fn ask(s: &Setup, request: AskRequest) -> (Result<AskReply, AssistantError>, Vec<AskEvent>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reply = s
        .answerer
        .ask(request, &tx, &CancellationToken::new())
        .await;
    drop(tx);
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    (reply, events)
}

fn streamed(events: &[AskEvent]) -> String {
    let mut text = String::new();
    for e in events {
        match e {
            AskEvent::Token(t) => text.push_str(t),
            AskEvent::Reset(_) => text.clear(),
        }
    }
    text
}

#[tokio::test]
async fn abstains_below_the_threshold_without_the_model() {
    let s = setup(Script::Say(vec!["never"]), 0.2, settings(AnswerMode::Auto));
    let (reply, events) = ask(&s, AskRequest::new("What is the wifi password?")).await;
    let reply = reply.unwrap();
    assert_eq!(reply.answer.mode, Used::Abstained);
    assert_eq!(reply.answer.text, ABSTAIN_TEXT);
    assert!(reply.answer.citations.is_empty());
    assert_eq!(reply.best_score, Some(0.2));
    assert_eq!(events, [AskEvent::Token(ABSTAIN_TEXT.into())]);
    assert!(
        s.llm.requests().is_empty(),
        "the model ran for an abstention"
    );
}

#[tokio::test]
async fn extractive_quotes_the_best_sentence_with_its_lines() {
    let s = setup(
        Script::Say(vec!["never"]),
        0.8,
        settings(AnswerMode::Extractive),
    );
    let (reply, events) = ask(&s, AskRequest::new("What is the wifi password?")).await;
    let reply = reply.unwrap();
    assert_eq!(reply.answer.mode, Used::Extractive);
    assert_eq!(reply.answer.text, EXTRACTIVE);
    let cite = &reply.answer.citations[0];
    assert_eq!(
        (cite.path.as_str(), cite.line_start, cite.line_end),
        ("/notes/home.md", 4, 4)
    );
    assert_eq!(events, [AskEvent::Token(EXTRACTIVE.into())]);
    assert!(s.llm.requests().is_empty());
    assert!(reply.llm.is_none());
}

#[tokio::test]
async fn a_supported_generative_answer_streams_and_stands() {
    let pieces = vec![" The wifi", " password is", " kettle-47-moon."];
    let s = setup(Script::Say(pieces), 0.8, settings(AnswerMode::Generative));
    let (reply, events) = ask(&s, AskRequest::new("What is the wifi password?")).await;
    let reply = reply.unwrap();
    assert_eq!(reply.answer.mode, Used::Generative);
    assert_eq!(reply.answer.text, WIFI);
    // Leading whitespace is not streamed: the stream reads as the reply.
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(streamed(&events), reply.answer.text);
    assert_eq!(reply.answer.citations[0].path, "/notes/home.md");
    assert_eq!(reply.llm.as_ref().unwrap().generated_tokens, 3);
    // The prompt holds the question and the source, greedy, one line.
    let request = &s.llm.requests()[0];
    let Prompt::Completion(prompt) = &request.prompt else {
        panic!("a chat prompt for a completion model")
    };
    assert!(prompt.contains(WIFI) && prompt.contains("What is the wifi password?"));
    assert_eq!(request.stop, ["\n"]);
    assert_eq!(request.temperature, 0.0);
}

#[tokio::test]
async fn unsupported_specifics_are_replaced_by_the_quote_and_flagged() {
    let s = setup(
        Script::Say(vec!["The wifi password is", " 9931-blue."]),
        0.8,
        settings(AnswerMode::Generative),
    );
    let (reply, events) = ask(&s, AskRequest::new("What is the wifi password?")).await;
    let reply = reply.unwrap();
    assert_eq!(reply.answer.text, EXTRACTIVE);
    assert!(reply.answer.flags.contains(&Flag::UnsupportedReplaced));
    assert!(
        reply.answer.unsupported.iter().any(|t| t.contains("9931")),
        "{:?}",
        reply.answer.unsupported
    );
    assert_eq!(
        events.last(),
        Some(&AskEvent::Token(EXTRACTIVE.into())),
        "{events:?}"
    );
    assert!(events.contains(&AskEvent::Reset(ResetReason::UnsupportedReplaced)));
    assert_eq!(streamed(&events), EXTRACTIVE);
}

#[tokio::test]
async fn a_model_failing_mid_answer_falls_back_in_auto_and_fails_in_generative() {
    let script = Script::FailAfter(vec!["The wifi", " password"]);
    let s = setup(script.clone(), 0.8, settings(AnswerMode::Auto));
    let (reply, events) = ask(&s, AskRequest::new("What is the wifi password?")).await;
    let reply = reply.unwrap();
    assert_eq!(reply.answer.mode, Used::Extractive);
    assert_eq!(reply.answer.text, EXTRACTIVE);
    assert!(reply.answer.flags.contains(&Flag::LlmUnavailable));
    assert_eq!(
        events,
        [
            AskEvent::Token("The wifi".into()),
            AskEvent::Token(" password".into()),
            AskEvent::Reset(ResetReason::LlmUnavailable),
            AskEvent::Token(EXTRACTIVE.into()),
        ]
    );

    let s = setup(script, 0.8, settings(AnswerMode::Generative));
    let (reply, _) = ask(&s, AskRequest::new("What is the wifi password?")).await;
    let error = reply.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ModelFailed, "{error}");
}

#[tokio::test]
async fn history_is_trimmed_to_the_budget_keeping_the_sources() {
    let mut tight = settings(AnswerMode::Generative);
    tight.context = 400;
    let s = setup(Script::Say(vec![WIFI]), 0.8, tight);
    // Six turns of about 60 tokens each: not all of them fit.
    for i in 0..6 {
        let question = format!("Question {i}: {}", "tell me about the garden ".repeat(8));
        s.history
            .append("s", &question, &format!("Answer {i}."))
            .unwrap();
    }
    let request = AskRequest {
        session: Some("s".into()),
        ..AskRequest::new("What is the wifi password?")
    };
    let (reply, _) = ask(&s, request).await;
    assert_eq!(reply.unwrap().answer.text, WIFI);
    let Prompt::Completion(prompt) = &s.llm.requests()[0].prompt else {
        panic!("a chat prompt for a completion model")
    };
    assert!(prompt.contains(WIFI), "the sources were trimmed: {prompt}");
    assert!(
        prompt.contains("Question 5:"),
        "the newest turn is gone: {prompt}"
    );
    assert!(
        !prompt.contains("Question 0:"),
        "the oldest turn stayed: {prompt}"
    );
    assert!(
        estimate_tokens(prompt) + 64 <= 400,
        "{} tokens of prompt in a 400-token context",
        estimate_tokens(prompt)
    );
    // The session's turns as given by a chat client replace the stored ones.
    let given = AskRequest {
        session: Some("s".into()),
        history: Some(vec![Turn {
            question: "Who planted the apple tree?".into(),
            answer: "Grandpa did.".into(),
        }]),
        ..AskRequest::new("What is the wifi password?")
    };
    ask(&s, given).await.0.unwrap();
    let Prompt::Completion(prompt) = &s.llm.requests()[1].prompt else {
        panic!("a chat prompt for a completion model")
    };
    assert!(prompt.contains("Grandpa did."), "{prompt}");
    assert!(!prompt.contains("Question 5:"), "{prompt}");
}

#[tokio::test]
async fn cancelling_stops_the_generation() {
    let s = setup(
        Script::Hang(vec!["The wifi"]),
        0.8,
        settings(AnswerMode::Auto),
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        // Cancelled once the first token is out.
        if let Some(AskEvent::Token(_)) = rx.recv().await {
            stopper.cancel();
        }
    });
    let reply = tokio::time::timeout(
        support::scaled_secs(5),
        s.answerer
            .ask(AskRequest::new("What is the wifi password?"), &tx, &cancel),
    )
    .await
    .expect("the answer did not stop when cancelled");
    assert!(matches!(reply, Err(AssistantError::Cancelled)), "{reply:?}");
    assert!(
        s.llm.dropped.load(Ordering::SeqCst),
        "the model's generation still runs"
    );
}

#[tokio::test]
async fn the_turn_is_stored_only_when_asked() {
    let s = setup(
        Script::Say(vec![WIFI]),
        0.8,
        settings(AnswerMode::Generative),
    );
    let quiet = AskRequest {
        session: Some("s".into()),
        store: false,
        ..AskRequest::new("What is the wifi password?")
    };
    ask(&s, quiet).await.0.unwrap();
    assert!(s.history.turns("s", 10).unwrap().is_empty());
    let kept = AskRequest {
        session: Some("s".into()),
        ..AskRequest::new("What is the wifi password?")
    };
    ask(&s, kept).await.0.unwrap();
    let turns = s.history.turns("s", 10).unwrap();
    assert_eq!(turns.len(), 1);
    assert_eq!(
        (turns[0].question.as_str(), turns[0].answer.as_str()),
        ("What is the wifi password?", WIFI)
    );
}

#[tokio::test]
async fn an_empty_question_is_refused() {
    let s = setup(Script::Say(vec![]), 0.8, settings(AnswerMode::Auto));
    let (reply, events) = ask(&s, AskRequest::new("  ")).await;
    assert_eq!(reply.unwrap_err().kind(), ErrorKind::InvalidParams);
    assert!(events.is_empty());
}
