//! Wake words: openWakeWord's pre-trained models (the `openwakeword`
//! model: `melspectrogram.onnx` → `embedding_model.onnx` → one classifier
//! per wake word) on ONNX Runtime, streamed 80 ms (1280 samples) at a time
//! exactly as openWakeWord 0.5.1's `AudioFeatures` does:
//!
//! - samples go in as int16 *values* in f32, unscaled; each 80 ms step runs
//!   the mel model over the step plus 480 samples of context (8 frames of
//!   32 mel bands), and the mels become `x / 10 + 2`;
//! - the newest 76 mel frames (the buffer starts as 76 frames of ones) give
//!   one 96-value embedding per step;
//! - each classifier scores the newest 16 embeddings.
//!
//! Several wake words run at once on the shared front end. A word fires
//! when its score reaches the threshold, then not again within the
//! refractory period.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::Tensor;
use serde::Serialize;

use super::ListenError;
use crate::config::OnnxConfig;
use crate::onnx::Shapes;

/// Samples per step (80 ms at 16 kHz).
pub const STEP: usize = 1280;
/// Samples of the previous step the mel model sees again (3 hops of 160).
const MEL_CONTEXT: usize = 480;
/// Mel bands per frame.
const MELS: usize = 32;
/// Mel frames per embedding window.
const WINDOW: usize = 76;
/// Values per embedding.
const EMBEDDING: usize = 96;
/// Embeddings per classifier input.
const FEATURES: usize = 16;

/// One wake word that fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// The wake word's name (`hey_jarvis`).
    pub name: String,
    /// Its score, 0 to 1.
    pub score: f32,
    /// Seconds of audio heard before the end of the step that fired.
    pub time: f64,
}

/// How wake words fire.
#[derive(Debug, Clone, Copy)]
pub struct WakeSettings {
    /// Score at or above which a word fires.
    pub threshold: f32,
    /// Steps after a firing during which the same word cannot fire again.
    pub refractory_steps: u64,
}

struct Classifier {
    name: String,
    session: Session,
    input: String,
    /// Step at which it last fired.
    fired_at: Option<u64>,
}

/// The openWakeWord front end and its classifiers, with the audio state.
pub struct WakeWords {
    mel: Session,
    embedding: Session,
    classifiers: Vec<Classifier>,
    settings: WakeSettings,
    /// Samples not yet making up a whole step.
    pending: Vec<f32>,
    /// The last [`MEL_CONTEXT`] samples of the previous step.
    context: Vec<f32>,
    /// Newest mel frames, flattened (`MELS` values each).
    mels: VecDeque<f32>,
    /// Newest embeddings, flattened (`EMBEDDING` values each).
    features: VecDeque<f32>,
    embeddings_seen: usize,
    steps: u64,
    scores: Vec<f32>,
}

/// The classifier file for `word`: a path to an `.onnx`, or a name in
/// `model_dir` (`hey_jarvis` → `hey_jarvis_v0.1.onnx`).
pub fn classifier_path(model_dir: &Path, word: &str) -> Result<PathBuf, ListenError> {
    if word.contains('/') || word.ends_with(".onnx") {
        return Ok(PathBuf::from(word));
    }
    let prefix = format!("{word}_v");
    let mut found: Vec<PathBuf> = std::fs::read_dir(model_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".onnx"))
        })
        .collect();
    found.sort();
    found.pop().ok_or_else(|| ListenError::UnknownWakeWord {
        word: word.to_owned(),
        dir: model_dir.to_path_buf(),
        known: installed(model_dir).join(", "),
    })
}

/// The wake words whose classifiers are in `model_dir` (`hey_jarvis` for
/// `hey_jarvis_v0.1.onnx`), sorted, each once.
pub fn installed(model_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(model_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".onnx") && n.contains("_v"))
        .filter_map(|n| n.rsplit_once("_v").map(|(name, _)| name.to_owned()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A wake word's name from its file (`hey_jarvis_v0.1.onnx` → `hey_jarvis`).
fn word_name(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("wake");
    stem.rsplit_once("_v")
        .map_or(stem, |(name, _)| name)
        .to_owned()
}

impl WakeWords {
    /// Loads the front end from `model_dir` and one classifier per `words`.
    pub fn load(
        onnx: &OnnxConfig,
        model_dir: &Path,
        words: &[String],
        settings: WakeSettings,
        threads: u32,
    ) -> Result<WakeWords, ListenError> {
        if words.is_empty() {
            return Err(ListenError::NoWakeWords);
        }
        let mel = crate::onnx::session(
            onnx,
            &model_dir.join("melspectrogram.onnx"),
            threads,
            Shapes::Fixed,
        )?;
        let embedding = crate::onnx::session(
            onnx,
            &model_dir.join("embedding_model.onnx"),
            threads,
            Shapes::Fixed,
        )?;
        let mut classifiers = Vec::new();
        for word in words {
            let path = classifier_path(model_dir, word)?;
            let session = crate::onnx::session(onnx, &path, threads, Shapes::Fixed)?;
            let input = session
                .inputs()
                .first()
                .map(|i| i.name().to_owned())
                .ok_or_else(|| {
                    ListenError::Inference(format!("{} has no input", path.display()))
                })?;
            classifiers.push(Classifier {
                name: word_name(&path),
                session,
                input,
                fired_at: None,
            });
        }
        let mut wake = WakeWords {
            mel,
            embedding,
            classifiers,
            settings,
            pending: Vec::with_capacity(STEP),
            context: Vec::with_capacity(MEL_CONTEXT),
            mels: VecDeque::new(),
            features: VecDeque::new(),
            embeddings_seen: 0,
            steps: 0,
            scores: vec![0.0; words.len()],
        };
        wake.reset();
        Ok(wake)
    }

    /// The names of the loaded wake words.
    pub fn names(&self) -> Vec<String> {
        self.classifiers.iter().map(|c| c.name.clone()).collect()
    }

    /// Forgets the audio heard so far (not the refractory periods).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.context.clear();
        self.mels.clear();
        self.mels.extend(std::iter::repeat_n(1.0, WINDOW * MELS));
        self.features.clear();
        self.embeddings_seen = 0;
    }

    /// Feeds 16 kHz mono samples in [-1, 1]; returns the words that fired
    /// in the whole steps completed.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<Detection>, ListenError> {
        let mut fired = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (STEP - self.pending.len()).min(rest.len());
            self.pending
                .extend(rest[..take].iter().map(|s| s.clamp(-1.0, 1.0) * 32767.0));
            rest = &rest[take..];
            if self.pending.len() == STEP {
                self.scores = self.step()?;
                fired.extend(self.fire());
            }
        }
        Ok(fired)
    }

    /// Each word's score (in [`WakeWords::names`] order) at the last
    /// completed step.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }

    fn fire(&mut self) -> Vec<Detection> {
        let step = self.steps;
        let time = (step * STEP as u64) as f64 / 16_000.0;
        let settings = self.settings;
        self.classifiers
            .iter_mut()
            .zip(&self.scores)
            .filter(|(_, &score)| score >= settings.threshold)
            .filter_map(|(c, &score)| {
                if c.fired_at
                    .is_some_and(|at| step - at <= settings.refractory_steps)
                {
                    return None;
                }
                c.fired_at = Some(step);
                Some(Detection {
                    name: c.name.clone(),
                    score,
                    time,
                })
            })
            .collect()
    }

    /// Runs the models over the pending step; returns each word's score.
    fn step(&mut self) -> Result<Vec<f32>, ListenError> {
        let err = |e: ort::Error| ListenError::Inference(format!("wake word: {e}"));
        self.steps += 1;
        let mut audio = Vec::with_capacity(MEL_CONTEXT + STEP);
        audio.extend_from_slice(&self.context);
        audio.extend_from_slice(&self.pending);
        self.context.clear();
        self.context
            .extend_from_slice(&self.pending[STEP - MEL_CONTEXT..]);
        self.pending.clear();

        let n = audio.len();
        let input = Tensor::from_array(([1usize, n], audio)).map_err(err)?;
        let outputs = self.mel.run(ort::inputs!["input" => input]).map_err(err)?;
        let (_, mels) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        self.mels.extend(mels.iter().map(|m| m / 10.0 + 2.0));
        let excess = self.mels.len().saturating_sub(WINDOW * MELS);
        self.mels.drain(..excess);
        drop(outputs);

        let window: Vec<f32> = self.mels.iter().copied().collect();
        let input = Tensor::from_array(([1usize, WINDOW, MELS, 1], window)).map_err(err)?;
        let outputs = self
            .embedding
            .run(ort::inputs!["input_1" => input])
            .map_err(err)?;
        let (_, embedding) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        self.features.extend(embedding.iter().copied());
        let excess = self.features.len().saturating_sub(FEATURES * EMBEDDING);
        self.features.drain(..excess);
        self.embeddings_seen += 1;
        drop(outputs);

        // openWakeWord scores nothing until its buffers hold real audio.
        if self.embeddings_seen < FEATURES {
            return Ok(vec![0.0; self.classifiers.len()]);
        }
        let features: Vec<f32> = self.features.iter().copied().collect();
        let mut scores = Vec::with_capacity(self.classifiers.len());
        for c in &mut self.classifiers {
            let input = Tensor::from_array(([1usize, FEATURES, EMBEDDING], features.clone()))
                .map_err(err)?;
            let outputs = c
                .session
                .run(ort::inputs![c.input.as_str() => input])
                .map_err(err)?;
            let (_, score) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
            scores.push(score.first().copied().unwrap_or(0.0));
        }
        Ok(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_names_drop_the_version() {
        assert_eq!(
            word_name(Path::new("/m/hey_jarvis_v0.1.onnx")),
            "hey_jarvis"
        );
        assert_eq!(word_name(Path::new("custom.onnx")), "custom");
    }

    #[test]
    fn unknown_words_name_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alexa_v0.1.onnx"), b"").unwrap();
        std::fs::write(dir.path().join("melspectrogram.onnx"), b"").unwrap();
        assert_eq!(
            classifier_path(dir.path(), "alexa").unwrap(),
            dir.path().join("alexa_v0.1.onnx")
        );
        let err = classifier_path(dir.path(), "hey_siri")
            .unwrap_err()
            .to_string();
        assert!(err.contains("hey_siri") && err.contains("alexa"), "{err}");
    }
}
