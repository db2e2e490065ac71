//! Roles (stt, llm, …) and which model ids fill them: the preference lists of
//! the configuration and of each hardware profile, and the resolver that picks
//! the first installed candidate.

use serde::{Deserialize, Serialize};

use crate::config::{ModelsConfig, Profile};

use super::error::ModelsError;
use super::manifest::{Manifest, ModelKind};
use super::status::ModelState;
use super::store::Store;

/// A slot in the voice loop that one model fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Speech to text.
    Stt,
    /// Language model.
    Llm,
    /// Text to speech.
    Tts,
    /// Voice activity detection.
    Vad,
    /// Wake word.
    Wake,
    /// Sentence embeddings for retrieval.
    Embed,
}

impl Role {
    /// Every role, in pipeline order.
    pub const ALL: [Role; 6] = [
        Role::Vad,
        Role::Wake,
        Role::Stt,
        Role::Llm,
        Role::Tts,
        Role::Embed,
    ];

    /// The config key (`models.<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Stt => "stt",
            Role::Llm => "llm",
            Role::Tts => "tts",
            Role::Vad => "vad",
            Role::Wake => "wake",
            Role::Embed => "embed",
        }
    }

    /// The model kind that can fill this role.
    pub fn kind(self) -> ModelKind {
        match self {
            Role::Stt => ModelKind::Stt,
            Role::Llm => ModelKind::Llm,
            Role::Tts => ModelKind::Tts,
            Role::Vad => ModelKind::Vad,
            Role::Wake => ModelKind::Wake,
            Role::Embed => ModelKind::Embed,
        }
    }

    /// The configured model ids for this role, in order of preference.
    pub fn candidates(self, config: &ModelsConfig) -> &[String] {
        match self {
            Role::Stt => &config.stt,
            Role::Llm => &config.llm,
            Role::Tts => &config.tts,
            Role::Vad => &config.vad,
            Role::Wake => &config.wake,
            Role::Embed => &config.embed,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn profile_toml(profile: Profile) -> &'static str {
    match profile {
        Profile::Tiny => include_str!("../../config/profiles/tiny.toml"),
        Profile::TwoGb => include_str!("../../config/profiles/2gb.toml"),
        Profile::EightGb => include_str!("../../config/profiles/8gb.toml"),
        Profile::Workstation => include_str!("../../config/profiles/workstation.toml"),
    }
}

#[derive(Deserialize)]
struct ProfileFile {
    #[serde(default)]
    models: ProfileModels,
}

#[derive(Default, Deserialize)]
struct ProfileModels {
    stt: Option<Vec<String>>,
    llm: Option<Vec<String>>,
    tts: Option<Vec<String>>,
    vad: Option<Vec<String>>,
    wake: Option<Vec<String>>,
    embed: Option<Vec<String>>,
}

/// `base` with the role lists of `profile`'s built-in file laid over it (the
/// roles a profile does not name keep `base`'s lists).
///
/// Only the `[models]` role lists are read; the layered config loader owns
/// everything else in a profile.
pub fn profile_models(profile: Profile, base: &ModelsConfig) -> Result<ModelsConfig, ModelsError> {
    let file: ProfileFile =
        toml::from_str(profile_toml(profile)).map_err(|e| ModelsError::Profile {
            profile: profile.name().to_string(),
            message: e.to_string(),
        })?;
    let m = file.models;
    let mut out = base.clone();
    for (slot, value) in [
        (&mut out.stt, m.stt),
        (&mut out.llm, m.llm),
        (&mut out.tts, m.tts),
        (&mut out.vad, m.vad),
        (&mut out.wake, m.wake),
        (&mut out.embed, m.embed),
    ] {
        if let Some(v) = value {
            *slot = v;
        }
    }
    Ok(out)
}

/// The model that fills `role`: the first candidate in `config` that is
/// installed in `store`, or `None` when none is.
pub fn resolve(
    role: Role,
    config: &ModelsConfig,
    manifest: &Manifest,
    store: &Store,
) -> Option<String> {
    role.candidates(config).iter().find_map(|id| {
        let spec = manifest.get(id).ok()?;
        (store.status(spec).state == ModelState::Installed).then(|| id.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_profile_overrides_only_the_roles_it_names() {
        let base = Config::builtin().models;
        let tiny = profile_models(Profile::Tiny, &base).expect("parses");
        assert_eq!(tiny.llm, ["qwen2.5-0.5b-instruct-q4km", "gemma3-270m-base"]);
        assert_eq!(tiny.tts, base.tts);
        assert_eq!(tiny.dir, base.dir);
    }

    #[test]
    fn resolve_picks_the_first_installed_candidate() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let manifest = Manifest::builtin().expect("valid");
        let store = Store::new(tmp.path());
        let tiny = profile_models(Profile::Tiny, &Config::builtin().models).expect("parses");
        assert_eq!(resolve(Role::Llm, &tiny, &manifest, &store), None);
        // An unpinned hub-only file counts as installed once present.
        let dir = store.model_dir("qwen2.5-0.5b-instruct-q4km");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("qwen2.5-0.5b-instruct-q4_k_m.gguf"), b"gguf").expect("write");
        assert_eq!(
            resolve(Role::Llm, &tiny, &manifest, &store).as_deref(),
            Some("qwen2.5-0.5b-instruct-q4km")
        );
    }
}
