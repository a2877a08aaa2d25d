use super::{Candidates, Sampler, StepRecord};
use crate::error::{check, Result};
use serde::{Deserialize, Serialize};

/// llama.cpp's adaptive-p (its PR 17927): steers the probability of the chosen tokens toward
/// `target`. Each step it reshapes the kept distribution around an adapted target, which is
/// `2 · target − the moving average of the chosen tokens' probabilities` (before the reshaping;
/// `decay` weighs the past): tokens whose probability is near it get the highest logits. It
/// runs last, after every other stage, as in llama.cpp, where it also draws.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdaptivePConfig {
    /// The probability to aim the chosen tokens at, in [0, 1].
    pub target: f32,
    /// The moving average's decay, in [0, 0.99]: it remembers about 1 / (1 − decay) tokens.
    pub decay: f32,
}

// llama.cpp's transform: quadratic near the target, linear in the tails.
const DISTRIBUTION_WIDTH: f32 = 0.3;
const PEAK_LOGIT_VALUE: f32 = 5.0;
const SHARPNESS: f32 = 10.0;

#[derive(Debug, Clone)]
pub struct AdaptiveP {
    config: AdaptivePConfig,
    /// Σ p_i · decay^i and Σ decay^i over the chosen tokens, most recent first.
    weighted_sum: f32,
    total_weight: f32,
    /// The probabilities before the reshaping of the last step, for the token chosen next.
    pending: Vec<(u32, f32)>,
}

impl AdaptiveP {
    pub fn new(config: AdaptivePConfig) -> Result<Self> {
        check((0.0..=1.0).contains(&config.target), "adaptiveP.target", "in [0, 1]", config.target)?;
        check((0.0..=0.99).contains(&config.decay), "adaptiveP.decay", "in [0, 0.99]", config.decay)?;
        let mut sampler = Self { config, weighted_sum: 0.0, total_weight: 0.0, pending: Vec::new() };
        sampler.reset();
        Ok(sampler)
    }

    /// The probability this step aims at.
    fn adapted_target(&self) -> f32 {
        let target = self.config.target;
        let adapted = if self.total_weight == 0.0 { target } else { 2.0 * target - self.weighted_sum / self.total_weight };
        adapted.clamp(0.0, 1.0)
    }
}

impl Sampler for AdaptiveP {
    fn name(&self) -> &'static str {
        "adaptiveP"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        // The kept probabilities in f32, summed in id order, as llama.cpp's softmax does: the
        // transform is steep enough near the target to show a rounding of p.
        let scale = candidates.scale();
        self.pending.clear();
        candidates.for_each(|id, logit| self.pending.push((id, logit * scale)));
        let max = self.pending.iter().fold(f32::NEG_INFINITY, |m, &(_, l)| m.max(l));
        let mut sum = 0.0f32;
        for (_, x) in &mut self.pending {
            *x = (*x - max).exp();
            sum += *x;
        }
        self.pending.iter_mut().for_each(|(_, p)| *p /= sum);
        let target = self.adapted_target();
        // The new logits are the distribution itself: no temperature applies to them.
        candidates.divide_temperature(scale);
        let logits = candidates.logits_mut();
        for &(id, p) in &self.pending {
            // A banned token stays banned.
            if logits[id as usize] == f32::NEG_INFINITY {
                continue;
            }
            let dist = ((p - target) / DISTRIBUTION_WIDTH).abs();
            logits[id as usize] = PEAK_LOGIT_VALUE - SHARPNESS * dist * dist / (1.0 + dist);
        }
        Ok(())
    }

    fn accept(&mut self, token: u32, _record: Option<&mut StepRecord>) {
        // Only a token chosen from the last step's distribution moves the average (not the
        // prompt's), as llama.cpp counts only the token it drew.
        if let Some(&(_, p)) = std::mem::take(&mut self.pending).iter().find(|(id, _)| *id == token) {
            self.weighted_sum = p + self.config.decay * self.weighted_sum;
            self.total_weight = 1.0 + self.config.decay * self.total_weight;
        }
    }

    fn reset(&mut self) {
        self.weighted_sum = self.config.target / (1.0 - self.config.decay);
        self.total_weight = 1.0 / (1.0 - self.config.decay);
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_nearest_the_adapted_target_gets_the_highest_logit() {
        // Probabilities ~0.58, 0.21, 0.21 (logits 1, 0, 0); target 0.2 with a history at 0.2.
        let mut sampler = AdaptiveP::new(AdaptivePConfig { target: 0.2, decay: 0.5 }).unwrap();
        let mut c = Candidates::from_logits(&[1.0, 0.0, 0.0]).unwrap();
        sampler.apply(&mut c).unwrap();
        assert!(c.logit(1) > c.logit(0) && c.logit(1) == c.logit(2));
        // Choosing the likely token raises the average above 0.2, so the next target drops.
        let before = sampler.adapted_target();
        sampler.accept(0, None);
        assert!(sampler.adapted_target() < before);
        // A prompt token (no distribution pending) leaves it.
        let now = sampler.adapted_target();
        sampler.accept(2, None);
        assert_eq!(sampler.adapted_target(), now);
        assert!(AdaptiveP::new(AdaptivePConfig { target: 1.5, decay: 0.5 }).is_err());
        assert!(AdaptiveP::new(AdaptivePConfig { target: 0.5, decay: 1.0 }).is_err());
    }
}
