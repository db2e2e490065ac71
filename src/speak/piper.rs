//! A Piper voice (`<name>.onnx` + `<name>.onnx.json`) run on ONNX Runtime:
//! espeak-ng phonemes with punctuation ([`super::espeak`]), phoneme ids
//! built as Piper's reference builds them (BOS, PAD, then each phoneme
//! followed by PAD, then EOS), one inference per sentence, peak-normalised
//! and scaled by the volume like `piper-tts` does.
//!
//! voxd runs Piper itself rather than through piper-rs 0.2.0: that crate
//! phonemises without punctuation and builds ids without the PAD after BOS,
//! and neither can be changed from outside it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ort::session::{RunOptions, Session};
use ort::value::Tensor;
use serde::Deserialize;

use super::{espeak, SpeakError, Tts};
use crate::config::{OnnxConfig, TtsConfig};
use crate::onnx::Shapes;

/// The most phonemes one inference call synthesises. The model's memory
/// grows with the square of its input: 2 KB of symbol-heavy text (each
/// symbol read out as words) once made one call of thousands of phonemes
/// that peaked at 11.3 GB. A normal long sentence has 150-250; a longer
/// one is synthesised in pieces cut at word boundaries.
pub const MAX_PHONEMES: usize = 400;

const BOS: &str = "^";
const EOS: &str = "$";
const PAD: &str = "_";

/// The parts of `<voice>.onnx.json` that synthesis needs.
#[derive(Debug, Deserialize)]
pub struct VoiceConfig {
    pub audio: AudioSection,
    pub espeak: EspeakSection,
    pub inference: InferenceSection,
    #[serde(default = "one")]
    pub num_speakers: u32,
    #[serde(default)]
    pub speaker_id_map: HashMap<String, i64>,
    pub phoneme_id_map: HashMap<String, Vec<i64>>,
    /// What the voice speaks, when its config says (`en_US`).
    #[serde(default)]
    pub language: Option<LanguageSection>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
pub struct LanguageSection {
    pub code: String,
}

impl VoiceConfig {
    /// Reads the voice config `json` (a `<voice>.onnx.json`).
    pub fn read(json: &Path) -> Result<VoiceConfig, SpeakError> {
        let bad = |message: String| SpeakError::Voice {
            path: json.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(json).map_err(|e| bad(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| bad(format!("not a Piper voice config: {e}")))
    }
}

#[derive(Debug, Deserialize)]
pub struct AudioSection {
    pub sample_rate: u32,
}

#[derive(Debug, Deserialize)]
pub struct EspeakSection {
    pub voice: String,
}

#[derive(Debug, Deserialize)]
pub struct InferenceSection {
    pub noise_scale: f32,
    pub length_scale: f32,
    pub noise_w: f32,
}

/// Synthesis settings from `[tts]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub speaker: i64,
    pub speed: f32,
    pub volume: f32,
    pub variation: f32,
    pub espeak_data: PathBuf,
}

impl Settings {
    pub fn from_config(tts: &TtsConfig) -> Settings {
        Settings {
            speaker: tts.speaker,
            speed: tts.speed,
            volume: tts.volume,
            variation: tts.variation,
            espeak_data: tts.espeak_data.clone(),
        }
    }
}

/// A loaded Piper voice.
pub struct PiperVoice {
    session: Session,
    /// Gives back what a run grew the session's arena by: the last
    /// sentence before the queue drains runs with these.
    release: RunOptions,
    /// Keeps the arena's buffers for the next sentence of a backlog.
    keep: RunOptions,
    /// Whether more text waits after the chunk being synthesised.
    backlog: bool,
    config: VoiceConfig,
    settings: Settings,
    model: PathBuf,
}

/// The `.onnx` model and its `.onnx.json` in a voice directory (a model
/// store entry), or given directly as the `.onnx` path.
pub fn voice_files(path: &Path) -> Result<(PathBuf, PathBuf), SpeakError> {
    let bad = |message: String| SpeakError::Voice {
        path: path.to_path_buf(),
        message,
    };
    let model = if path.is_dir() {
        let mut models: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| bad(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
            .collect();
        models.sort();
        match models.len() {
            1 => models.remove(0),
            0 => return Err(bad("no .onnx voice model in the directory".into())),
            _ => return Err(bad("more than one .onnx model in the directory".into())),
        }
    } else if path.is_file() {
        path.to_path_buf()
    } else {
        return Err(bad("no such file or directory".into()));
    };
    let mut json = model.clone().into_os_string();
    json.push(".json");
    let json = PathBuf::from(json);
    if !json.is_file() {
        return Err(bad(format!("{} is missing", json.display())));
    }
    Ok((model, json))
}

impl PiperVoice {
    /// Loads the voice at `path` (a directory or the `.onnx` file).
    pub fn load(
        path: &Path,
        settings: Settings,
        onnx: &OnnxConfig,
        threads: u32,
    ) -> Result<PiperVoice, SpeakError> {
        let (model, json) = voice_files(path)?;
        let bad = |message: String| SpeakError::Voice {
            path: json.clone(),
            message,
        };
        let config = VoiceConfig::read(&json)?;
        for symbol in [BOS, EOS, PAD] {
            if !config.phoneme_id_map.contains_key(symbol) {
                return Err(bad(format!("phoneme_id_map has no {symbol:?}")));
            }
        }
        if settings.speed.is_nan() || settings.speed <= 0.0 {
            return Err(SpeakError::Settings(format!(
                "tts.speed must be above 0, not {}",
                settings.speed
            )));
        }
        if !(0.0..=10.0).contains(&settings.variation) {
            return Err(SpeakError::Settings(format!(
                "tts.variation must be 0 to 10, not {}",
                settings.variation
            )));
        }
        // Fail on a broken espeak set-up now, not at the first sentence.
        espeak::data_dir(&settings.espeak_data)?;
        let voice_err = |e: crate::onnx::OnnxError| SpeakError::Voice {
            path: model.clone(),
            message: e.to_string(),
        };
        let session =
            crate::onnx::session(onnx, &model, threads, Shapes::Varying).map_err(voice_err)?;
        let release = crate::onnx::shrink_after_run().map_err(voice_err)?;
        let keep = RunOptions::new()
            .map_err(|e| voice_err(crate::onnx::OnnxError::RunOptions(e.to_string())))?;
        Ok(PiperVoice {
            session,
            release,
            keep,
            backlog: false,
            config,
            settings,
            model,
        })
    }

    pub fn model_path(&self) -> &Path {
        &self.model
    }

    /// Phoneme ids per sentence, exactly what the model is fed.
    /// The ids of each sentence of `text` (each piece of at most
    /// [`MAX_PHONEMES`] of a longer one), as the model takes them.
    pub fn phoneme_ids(&self, text: &str) -> Result<Vec<Vec<i64>>, SpeakError> {
        let sentences =
            espeak::phonemize(text, &self.config.espeak.voice, &self.settings.espeak_data)?;
        Ok(sentences
            .iter()
            .flat_map(|s| pieces(s, MAX_PHONEMES))
            .map(|s| self.ids(s))
            .collect())
    }

    fn ids(&self, phonemes: &[char]) -> Vec<i64> {
        let map = &self.config.phoneme_id_map;
        let mut ids = Vec::with_capacity(phonemes.len() * 2 + 3);
        ids.extend(&map[BOS]);
        ids.extend(&map[PAD]);
        let mut buf = [0u8; 4];
        for p in phonemes {
            match map.get(&*p.encode_utf8(&mut buf)) {
                Some(id) => {
                    ids.extend(id);
                    ids.extend(&map[PAD]);
                }
                None => tracing::debug!(phoneme = %p, "phoneme not in the voice's map; skipped"),
            }
        }
        ids.extend(&map[EOS]);
        ids
    }

    /// Runs the model on one sentence's ids; raw audio in [-1, 1]. `last`:
    /// nothing is synthesised right after it, so the arena shrinks back.
    fn infer(&mut self, ids: Vec<i64>, last: bool) -> Result<Vec<f32>, SpeakError> {
        let options = if last { &self.release } else { &self.keep };
        let inf = &self.config.inference;
        let scales = vec![
            inf.noise_scale * self.settings.variation,
            inf.length_scale / self.settings.speed,
            inf.noise_w * self.settings.variation,
        ];
        let n = ids.len();
        let err = |e: ort::Error| SpeakError::Inference(e.to_string());
        let input = Tensor::from_array(([1usize, n], ids)).map_err(err)?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64])).map_err(err)?;
        let scales = Tensor::from_array(([3usize], scales)).map_err(err)?;
        let outputs = if self.config.num_speakers > 1 {
            let sid = Tensor::from_array(([1usize], vec![self.settings.speaker])).map_err(err)?;
            self.session.run_with_options(
                ort::inputs![
                    "input" => input,
                    "input_lengths" => lengths,
                    "scales" => scales,
                    "sid" => sid
                ],
                options,
            )
        } else {
            self.session.run_with_options(
                ort::inputs![
                    "input" => input,
                    "input_lengths" => lengths,
                    "scales" => scales
                ],
                options,
            )
        }
        .map_err(err)?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        Ok(audio.to_vec())
    }
}

impl Tts for PiperVoice {
    fn sample_rate(&self) -> u32 {
        self.config.audio.sample_rate
    }

    fn synthesize(&mut self, text: &str) -> Result<Vec<f32>, SpeakError> {
        let mut out = Vec::new();
        let sentences = self.phoneme_ids(text)?;
        let n = sentences.len();
        for (i, ids) in sentences.into_iter().enumerate() {
            let last = i + 1 == n && !self.backlog;
            let mut audio = self.infer(ids, last)?;
            // As piper-tts: peak-normalise each sentence, then the volume.
            let peak = audio.iter().fold(0f32, |m, s| m.max(s.abs()));
            let gain = if peak < 1e-8 {
                0.0
            } else {
                self.settings.volume / peak
            };
            out.extend(audio.iter_mut().map(|s| (*s * gain).clamp(-1.0, 1.0)));
        }
        Ok(out)
    }

    fn backlog(&mut self, waiting: bool) {
        self.backlog = waiting;
    }
}

/// `phonemes` in pieces of at most `max`, each cut after the last word
/// break (a space) that fits, or at `max` where a word is longer.
fn pieces(phonemes: &[char], max: usize) -> Vec<&[char]> {
    let mut out = Vec::new();
    let mut rest = phonemes;
    while rest.len() > max {
        let cut = rest[..max]
            .iter()
            .rposition(|&c| c == ' ')
            .map_or(max, |space| space + 1);
        let (piece, tail) = rest.split_at(cut);
        out.push(piece);
        rest = tail;
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_phoneme_runs_are_cut_at_word_breaks() {
        let text: Vec<char> = "ab cd ef".chars().collect();
        let cut: Vec<String> = pieces(&text, 4)
            .iter()
            .map(|p| p.iter().collect())
            .collect();
        assert_eq!(cut, ["ab ", "cd ", "ef"]);
        let word: Vec<char> = "abcdefghij".chars().collect();
        assert!(pieces(&word, 4).iter().all(|p| p.len() <= 4));
        assert_eq!(pieces(&[], 4).len(), 1);
    }
}
