use super::candidates::top_m;
use crate::math::{exp_weights, max_value};
use serde::{Deserialize, Serialize};
use std::f64::consts::LN_2;

/// What one decoding step saw. Probabilities, surprise and entropy are taken over the full
/// vocabulary after logit processors and temperature, before any truncation, so strategies
/// can be compared on one scale. With temperature 0 (greedy) that distribution would be
/// one-hot and say nothing, so greedy steps report the untempered (temperature 1) model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub token: u32,
    pub prob: f32,
    /// −log2 prob.
    pub surprise_bits: f32,
    pub entropy_bits: f32,
    /// How many tokens the truncation left in play.
    pub kept: usize,
    /// The most likely tokens, best first.
    pub top: Vec<Alternative>,
    /// 2^(mean surprise) over this generation so far, this step included.
    pub perplexity: f32,
    /// Mirostat's truncation level (bits) used at this step, when Mirostat is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mu: Option<f32>,
    /// The temperature dynamic temperature chose at this step, when it is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// How many top choices XTC removed at this step (0 when its coin said no), when it is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xtc_removed: Option<usize>,
    /// How many tokens DRY penalised at this step for extending a repetition, when it is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_penalised: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct Alternative {
    pub token: u32,
    pub prob: f32,
    /// The token's text, from the engine (a bare sampler has no tokenizer: absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Running perplexity of one generation: 2^(mean surprise in bits).
#[derive(Debug, Clone, Copy, Default)]
pub struct PerplexityMeter {
    total_bits: f64,
    steps: u64,
}

impl PerplexityMeter {
    pub fn add(&mut self, surprise_bits: f32) {
        self.total_bits += surprise_bits as f64;
        self.steps += 1;
    }

    pub fn mean_surprise_bits(&self) -> f64 {
        if self.steps == 0 { 0.0 } else { self.total_bits / self.steps as f64 }
    }

    pub fn perplexity(&self) -> f64 {
        libm::exp2(self.mean_surprise_bits())
    }
}

/// The full (untruncated) distribution at inverse temperature `scale`, from one exp pass.
#[derive(Clone, Copy)]
pub(crate) struct FullDistribution {
    pub max: f32,
    pub scale: f32,
    /// Z = Σ e_i with e_i = exp(d_i), d_i = scale·(x_i − max).
    pub z: f64,
    pub ln_z: f64,
    /// Σ e_i·d_i, for the entropy H = ln Z − Σ e_i·d_i / Z.
    pub weighted: f64,
}

impl FullDistribution {
    /// ln p of a token with this logit.
    pub fn ln_prob(&self, logit: f32) -> f64 {
        (self.scale * (logit - self.max)) as f64 - self.ln_z
    }
}

/// Leaves every e_i in `weights`, so that a draw over the whole vocabulary can reuse them.
pub(crate) fn full_distribution(logits: &[f32], scale: f32, weights: &mut Vec<f32>) -> FullDistribution {
    let max = max_value(logits);
    let (z, weighted) = exp_weights(logits, scale, max, weights);
    FullDistribution { max, scale, z, ln_z: libm::log(z), weighted }
}

/// The step record: the chosen token and the entropy under `full`, and a partial selection
/// for the alternatives.
pub(crate) fn describe_step(
    logits: &[f32],
    full: &FullDistribution,
    token: u32,
    kept: usize,
    top_alternatives: usize,
    scratch: &mut Vec<u32>,
) -> StepRecord {
    let FullDistribution { z, ln_z, weighted, .. } = *full;
    let ln_prob = |x: f32| full.ln_prob(x);
    let token_ln_prob = ln_prob(logits[token as usize]);
    top_m(logits, top_alternatives, scratch);
    StepRecord {
        token,
        prob: libm::exp(token_ln_prob) as f32,
        surprise_bits: (-token_ln_prob / LN_2) as f32,
        entropy_bits: ((ln_z - weighted / z) / LN_2).max(0.0) as f32,
        kept,
        top: scratch
            .iter()
            .map(|&id| Alternative { token: id, prob: libm::exp(ln_prob(logits[id as usize])) as f32, text: None })
            .collect(),
        perplexity: 0.0,
        mu: None,
        temperature: None,
        xtc_removed: None,
        dry_penalised: None,
    }
}
