use super::{Candidates, Sampler, StepRecord};
use crate::error::{check, Result};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// XTC, "exclude top choices", as llama.cpp defines it: with chance `probability` at each step,
/// drop every token whose probability is at least `threshold` except the least likely of them,
/// so the model steps off its most obvious path while a still-plausible choice stays.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct XtcConfig {
    /// The chance that a step applies the cut, in [0, 1].
    pub probability: f32,
    /// The probability a token needs to count as a top choice, in [0, 0.5].
    pub threshold: f32,
}

#[derive(Debug, Clone)]
pub struct Xtc {
    config: XtcConfig,
    seed: u64,
    rng: ChaCha8Rng,
    /// Top choices removed at the last step, for its record.
    removed: usize,
}

impl Xtc {
    pub fn new(config: XtcConfig, seed: u64) -> Result<Self> {
        let XtcConfig { probability, threshold } = config;
        check((0.0..=1.0).contains(&probability), "xtc.probability", "in [0, 1]", probability)?;
        // Above 0.5 at most one token can reach it, and XTC always keeps one: it would do nothing.
        check((0.0..=0.5).contains(&threshold), "xtc.threshold", "in [0, 0.5]", threshold)?;
        Ok(Self { config, seed, rng: rng_for(seed), removed: 0 })
    }
}

/// XTC's coin has its own stream of the chain's seed: the same seed gives the same coins, and
/// the chain's draw still takes exactly one number per step, so runs with and without XTC share
/// their draws.
fn rng_for(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    rng
}

impl Sampler for Xtc {
    fn name(&self) -> &'static str {
        "xtc"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        self.removed = 0;
        if self.config.probability <= 0.0 || candidates.len() < 2 {
            return Ok(());
        }
        // 24 random bits: a uniform f32 in [0, 1), like llama.cpp's.
        let chance = (self.rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
        if chance > self.config.probability {
            return Ok(());
        }
        let norm = candidates.normalizer();
        let min_ln_prob = (self.config.threshold as f64).ln();
        // The least likely top choice: the lowest logit at or above the threshold, and on a tie
        // the one ranked last (higher id), which is the one llama.cpp's sorted walk stops at.
        let mut last_top: Option<(u32, f32)> = None;
        let mut tops = 0;
        candidates.for_each(|id, logit| {
            if norm.ln_prob(logit) >= min_ln_prob {
                tops += 1;
                if last_top.is_none_or(|(last_id, last_logit)| (logit, last_id) < (last_logit, id)) {
                    last_top = Some((id, logit));
                }
            }
        });
        if let (true, Some((keep_id, _))) = (tops >= 2, last_top) {
            candidates.retain(|id, logit| id == keep_id || norm.ln_prob(logit) < min_ln_prob);
            self.removed = tops - 1;
        }
        Ok(())
    }

    fn accept(&mut self, _token: u32, record: Option<&mut StepRecord>) {
        if let Some(record) = record {
            record.xtc_removed = Some(self.removed);
        }
    }

    fn reset(&mut self) {
        self.rng = rng_for(self.seed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept_after(probability: f32, threshold: f32, probs: &[f32]) -> Vec<u32> {
        let logits: Vec<f32> = probs.iter().map(|p| p.ln()).collect();
        let mut c = Candidates::from_logits(&logits).unwrap();
        Xtc::new(XtcConfig { probability, threshold }, 7).unwrap().apply(&mut c).unwrap();
        let mut kept: Vec<u32> = c.probabilities().iter().map(|&(id, _)| id).collect();
        kept.sort();
        kept
    }

    #[test]
    fn drops_the_top_choices_but_the_least_likely_of_them() {
        assert_eq!(kept_after(1.0, 0.15, &[0.3, 0.1, 0.4, 0.2]), [1, 3]);
        // One token above the threshold: nothing to exclude.
        assert_eq!(kept_after(1.0, 0.35, &[0.3, 0.1, 0.4, 0.2]), [0, 1, 2, 3]);
        // Probability 0 never fires.
        assert_eq!(kept_after(0.0, 0.2, &[0.3, 0.1, 0.4, 0.2]), [0, 1, 2, 3]);
    }

    #[test]
    fn the_same_seed_fires_on_the_same_steps() {
        let fired = |seed| {
            let mut xtc = Xtc::new(XtcConfig { probability: 0.5, threshold: 0.1 }, seed).unwrap();
            (0..64)
                .map(|_| {
                    let mut c = Candidates::from_logits(&[1.0, 1.0, 0.0]).unwrap();
                    xtc.apply(&mut c).unwrap();
                    c.len() < 3
                })
                .collect::<Vec<bool>>()
        };
        let first = fired(3);
        assert_eq!(first, fired(3));
        assert!(first.contains(&true) && first.contains(&false), "a coin of 0.5 lands both ways in 64 steps");
    }

    #[test]
    fn refuses_settings_out_of_range() {
        for (probability, threshold, name) in [(1.5, 0.1, "xtc.probability"), (0.5, 0.6, "xtc.threshold"), (f32::NAN, 0.1, "xtc.probability")] {
            let err = Xtc::new(XtcConfig { probability, threshold }, 0).unwrap_err().to_string();
            assert!(err.starts_with(name), "{err}");
        }
    }
}
