//! What a generation is asked for and what it gives: [`GenerateConfig`], each [`Step`] (a sampled
//! token or a superposed step) and why it ended ([`FinishReason`]). camelCase in JSON and JS.

use crate::sampling::{SamplerConfig, StepRecord};
use crate::superposed::{DraftStep, FinalDraft, SuperposedConfig};
use serde::{Deserialize, Serialize};

/// What to generate after the prompt. camelCase in JSON and JS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GenerateConfig {
    /// At least 1. A generation that fills the context first ends there, with
    /// [`FinishReason::Context`].
    pub max_tokens: usize,
    /// Tokens that end the generation. `None` means the tokenizer's end-of-text tokens
    /// (`<|im_end|>`, `<|endoftext|>`, when present).
    pub stop_tokens: Option<Vec<u32>>,
    /// Texts that end the generation where they appear; the text before one is kept, the stop
    /// string itself is not. Streamed text that could be the start of one is held back until
    /// it is known not to be. Token generation only: superposed drafts ignore them.
    #[serde(default)]
    pub stop_strings: Vec<String>,
    pub sampler: SamplerConfig,
    /// When set, superposed decoding replaces the sampler chain (`sampler` is then unused).
    pub superposed: Option<SuperposedConfig>,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self { max_tokens: 64, stop_tokens: None, stop_strings: Vec::new(), sampler: SamplerConfig::default(), superposed: None }
    }
}

impl GenerateConfig {
    /// Settings present in the config that the generation will not use, as `sampler.<field>`
    /// paths: with `superposed` set, every sampler field that differs from its default (the
    /// whole chain is replaced); else what the sampler chain itself ignores (e.g. `topK` under
    /// Mirostat, see [`SamplerConfig::ignored_settings`]).
    pub fn ignored_settings(&self) -> Vec<String> {
        if self.superposed.is_none() {
            return self.sampler.ignored_settings().into_iter().map(|name| format!("sampler.{name}")).collect();
        }
        let (given, default) = (serde_json::to_value(&self.sampler), serde_json::to_value(SamplerConfig::default()));
        let (Ok(serde_json::Value::Object(given)), Ok(default)) = (given, default) else { return Vec::new() };
        let sampler = given.into_iter().filter(|(key, value)| default.get(key) != Some(value)).map(|(key, _)| format!("sampler.{key}"));
        let stop_strings = (!self.stop_strings.is_empty()).then(|| "stopStrings".to_string());
        sampler.chain(stop_strings).collect()
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub enum FinishReason {
    /// A stop token was sampled, or a stop string appeared.
    Stop,
    /// `maxTokens` were generated.
    Length,
    /// The context is full: the model holds no more tokens (see `contextLength`).
    Context,
    /// A step failed (the error says why); the generation cannot go on.
    Error,
}

/// One generated token: what the sampler saw, and the text it adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub struct GeneratedStep {
    #[serde(flatten)]
    pub record: StepRecord,
    /// New text; empty for a stop token or while a character is incomplete.
    pub text: String,
    /// Set on the last step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<FinishReason>,
}

/// One step of superposed decoding: the draft tree's new nodes, and the final drafts at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub struct SuperposedStep {
    #[serde(flatten)]
    pub record: DraftStep,
    /// Set on the last step: the k drafts with the lowest perplexity, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drafts: Vec<FinalDraft>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<FinishReason>,
}

/// What one call to [`Engine::step`](super::Engine::step) produced. In JSON and JS, `kind` tells
/// which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Step {
    /// One sampled token.
    Token(GeneratedStep),
    /// One superposed step: every draft grew by a token.
    Drafts(SuperposedStep),
}

impl Step {
    pub fn as_token(&self) -> Option<&GeneratedStep> {
        match self {
            Step::Token(step) => Some(step),
            Step::Drafts(_) => None,
        }
    }

    pub fn as_drafts(&self) -> Option<&SuperposedStep> {
        match self {
            Step::Drafts(step) => Some(step),
            Step::Token(_) => None,
        }
    }
}
