//! Prompts as text: the chat template a model uses (named in config, else
//! the GGUF's own), checked at load to be one llama.cpp can render, and a
//! [`Prompt`] rendered with it.

use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::ChatTemplateError;
use voxd_proto::llm::{ModelInfo, ModelParams, Prompt};

use crate::jobs::Failure;

/// A chat template llama.cpp can render, and where it came from.
pub struct ChatTemplate {
    template: LlamaChatTemplate,
    /// `config` (`engines.llm.chat_template`) or `model` (the GGUF).
    pub source: &'static str,
}

impl ChatTemplate {
    /// The template `model` runs with, if it has one.
    pub fn load(model: &LlamaModel, params: &ModelParams) -> Result<Option<ChatTemplate>, Failure> {
        let (template, source) = match params.chat_template.as_deref().filter(|t| !t.is_empty()) {
            Some(named) => {
                let template = LlamaChatTemplate::new(named).map_err(|e| {
                    Failure::new(
                        "load_failed",
                        format!("engines.llm.chat_template is not a valid template: {e}"),
                    )
                })?;
                (template, "config")
            }
            None => match model.chat_template(None) {
                Ok(template) => (template, "model"),
                Err(ChatTemplateError::MissingTemplate) => return Ok(None),
                Err(e) => {
                    return Err(Failure::new(
                        "load_failed",
                        format!(
                            "cannot read the chat template of {}: {e}",
                            params.path.display()
                        ),
                    ))
                }
            },
        };
        // llama.cpp renders only the template families it knows: check now,
        // so that a template it cannot use is reported at load, not per request.
        let probe = [LlamaChatMessage::new("user".into(), "hi".into())
            .map_err(|e| Failure::new("load_failed", e.to_string()))?];
        if let Err(e) = model.apply_chat_template(&template, &probe, true) {
            return Err(Failure::new(
                "load_failed",
                format!(
                    "the chat template of {} (from the {source}) is not one llama.cpp can render ({e}); name a known one in engines.llm.chat_template, e.g. \"chatml\"",
                    params.path.display()
                ),
            ));
        }
        Ok(Some(ChatTemplate { template, source }))
    }
}

/// The text of `prompt` for `model` (described by `info`), and whether it
/// holds special tokens (a rendered chat does); a chat needs `template`.
pub fn render(
    model: &LlamaModel,
    template: Option<&ChatTemplate>,
    info: &ModelInfo,
    prompt: &Prompt,
) -> Result<(String, bool), Failure> {
    match prompt {
        Prompt::Completion(text) => Ok((text.clone(), false)),
        Prompt::Chat(messages) => {
            let Some(template) = template else {
                return Err(Failure::new(
                    "no_chat_template",
                    format!(
                        "the model {} ({}) has no chat template; send a completion prompt, or name a template in engines.llm.chat_template",
                        info.name, info.path
                    ),
                ));
            };
            let chat = messages
                .iter()
                .map(|m| LlamaChatMessage::new(m.role.as_str().to_owned(), m.content.clone()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::new("bad_request", format!("invalid chat message: {e}")))?;
            let text = model
                .apply_chat_template(&template.template, &chat, true)
                .map_err(|e| {
                    Failure::new(
                        "bad_request",
                        format!("the chat template could not render these messages: {e}"),
                    )
                })?;
            Ok((text, true))
        }
    }
}
