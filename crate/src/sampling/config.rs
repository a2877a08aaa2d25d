use super::adaptive_p::AdaptivePConfig;
use super::dry::DryConfig;
use super::dynamic_temperature::DynamicTemperatureConfig;
use super::logit_bias::TokenBias;
use super::mirostat::MirostatConfig;
use super::penalties::PenaltyConfig;
use super::xtc::XtcConfig;
use crate::error::{check, Error, Result};
use serde::{Deserialize, Serialize};

/// A truncation or scaling stage whose position in the chain is configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    TopK,
    Typical,
    TopP,
    MinP,
    /// Temperature, or dynamic temperature when that is set.
    Temperature,
    TopNSigma,
    Xtc,
    Epsilon,
    Eta,
}

impl Stage {
    /// llama.cpp's order (its `--samplers` default): truncate on the untempered model, XTC on
    /// what is left, temperature last. Epsilon and eta, which llama.cpp lacks, truncate with the
    /// others.
    pub const LLAMA_CPP_ORDER: [Stage; 9] = [
        Stage::TopNSigma,
        Stage::TopK,
        Stage::Typical,
        Stage::TopP,
        Stage::MinP,
        Stage::Epsilon,
        Stage::Eta,
        Stage::Xtc,
        Stage::Temperature,
    ];
    /// Hugging Face transformers' order: temperature first, then its warpers in the order
    /// `generate` adds them. Top-n-σ and XTC, which it lacks, go first and last of the truncations.
    pub const HF_ORDER: [Stage; 9] = [
        Stage::Temperature,
        Stage::TopNSigma,
        Stage::TopK,
        Stage::TopP,
        Stage::MinP,
        Stage::Typical,
        Stage::Epsilon,
        Stage::Eta,
        Stage::Xtc,
    ];
}

/// Everything that defines a sampler chain. Field names are camelCase in JSON and JS.
///
/// The chain always runs logit bias, then penalties, then DRY, then the stages in `order` (default:
/// llama.cpp's), then draws a token. A `None` setting leaves its stage out. With `mirostat`
/// set, the chain is logit bias → penalties → temperature → Mirostat, as in llama.cpp:
/// top-k, top-p, min-p and typical are ignored (see [`SamplerConfig::ignored_settings`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SamplerConfig {
    /// Seeds the draw; one uniform number is drawn per step whatever the strategy, so runs
    /// with one seed share their random numbers and compare fairly.
    pub seed: u64,
    /// 0 means greedy.
    pub temperature: f32,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub typical_p: Option<f32>,
    /// Keeps the logits within n standard deviations of the best (llama.cpp's top-n-σ).
    pub top_n_sigma: Option<f32>,
    /// Drops the most likely tokens but one, at random steps (llama.cpp's XTC).
    pub xtc: Option<XtcConfig>,
    /// HF's epsilon sampling: drops the tokens below this probability.
    pub epsilon_cutoff: Option<f32>,
    /// HF's eta sampling: drops the tokens below an entropy-dependent cut-off.
    pub eta_cutoff: Option<f32>,
    /// Makes the temperature stage llama.cpp's `temp_ext`, moving with each step's entropy.
    pub dynamic_temperature: Option<DynamicTemperatureConfig>,
    pub mirostat: Option<MirostatConfig>,
    /// Steers the chosen tokens' probability toward a target (llama.cpp's adaptive-p); runs
    /// after every stage of `order`.
    pub adaptive_p: Option<AdaptivePConfig>,
    pub penalties: PenaltyConfig,
    /// Penalises tokens that extend a repetition (llama.cpp's DRY); runs after the penalties.
    pub dry: Option<DryConfig>,
    pub logit_bias: Vec<TokenBias>,
    pub order: Vec<Stage>,
    /// How many alternatives each step record lists.
    /// Was `topN`, which read like `topK`; the old name is still accepted (with a warning in JS)
    /// until 0.2.0, which removes the alias (see `RENAMED_FIELDS` in wasm/convert.rs).
    #[serde(alias = "topN")]
    pub top_alternatives: usize,
}

/// The most alternatives a step record may list.
pub const MAX_TOP_ALTERNATIVES: usize = 1000;

impl Default for SamplerConfig {
    /// The default chain: top-k 40 → top-p 0.95 → temperature 0.8.
    fn default() -> Self {
        Self {
            seed: 0,
            temperature: 0.8,
            top_k: Some(40),
            top_p: Some(0.95),
            min_p: None,
            typical_p: None,
            top_n_sigma: None,
            xtc: None,
            epsilon_cutoff: None,
            eta_cutoff: None,
            dynamic_temperature: None,
            mirostat: None,
            adaptive_p: None,
            penalties: PenaltyConfig::default(),
            dry: None,
            logit_bias: Vec::new(),
            order: Stage::LLAMA_CPP_ORDER.to_vec(),
            top_alternatives: 10,
        }
    }
}

impl SamplerConfig {
    pub fn greedy() -> Self {
        Self { temperature: 0.0, top_k: None, top_p: None, ..Self::default() }
    }

    /// Plain temperature sampling over the whole vocabulary.
    pub fn temperature(temperature: f32) -> Self {
        Self { temperature, top_k: None, top_p: None, ..Self::default() }
    }

    pub fn mirostat(version: u8, tau: f32, eta: f32) -> Self {
        Self { temperature: 1.0, mirostat: Some(MirostatConfig { version, tau, eta }), ..Self::default() }
    }

    /// Whether the stage's setting is present (an absent stage is skipped even if ordered).
    pub fn is_set(&self, stage: Stage) -> bool {
        match stage {
            Stage::TopK => self.top_k.is_some(),
            Stage::Typical => self.typical_p.is_some(),
            Stage::TopP => self.top_p.is_some(),
            Stage::MinP => self.min_p.is_some(),
            Stage::Temperature => true,
            Stage::TopNSigma => self.top_n_sigma.is_some(),
            Stage::Xtc => self.xtc.is_some(),
            Stage::Epsilon => self.epsilon_cutoff.is_some(),
            Stage::Eta => self.eta_cutoff.is_some(),
        }
    }

    /// Settings present in the config that this chain does not use, for a UI to grey out.
    pub fn ignored_settings(&self) -> Vec<&'static str> {
        if self.mirostat.is_none() {
            return Vec::new();
        }
        [
            ("topK", self.top_k.is_some()),
            ("topP", self.top_p.is_some()),
            ("minP", self.min_p.is_some()),
            ("typicalP", self.typical_p.is_some()),
            ("topNSigma", self.top_n_sigma.is_some()),
            ("xtc", self.xtc.is_some()),
            ("epsilonCutoff", self.epsilon_cutoff.is_some()),
            ("etaCutoff", self.eta_cutoff.is_some()),
            // llama.cpp's Mirostat chains use plain temperature.
            ("dynamicTemperature", self.dynamic_temperature.is_some()),
            ("adaptiveP", self.adaptive_p.is_some()),
            ("order", self.order != Stage::LLAMA_CPP_ORDER),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }

    /// Checks what the individual samplers cannot see: the order and the record size.
    pub(crate) fn validate_shape(&self) -> Result<()> {
        check(self.top_alternatives <= MAX_TOP_ALTERNATIVES, "topAlternatives", "at most 1000", self.top_alternatives)?;
        for (i, stage) in self.order.iter().enumerate() {
            if self.order[..i].contains(stage) {
                return Err(Error::InvalidConfig(format!("order lists {stage:?} twice")));
            }
        }
        if let Some(missing) = Stage::LLAMA_CPP_ORDER
            .into_iter()
            .find(|&s| self.is_set(s) && !self.order.contains(&s) && self.mirostat.is_none())
        {
            return Err(Error::InvalidConfig(format!(
                "{missing:?} is set but missing from order {:?}",
                self.order
            )));
        }
        if let Some(m) = &self.mirostat {
            check(m.version == 1 || m.version == 2, "mirostat.version", "1 or 2", m.version)?;
        }
        Ok(())
    }
}
