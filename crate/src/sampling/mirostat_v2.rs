use super::mirostat::{MirostatConfig, TargetSurprise};
use super::{Candidates, Sampler, StepRecord};
use crate::error::Result;
use std::f64::consts::LN_2;

/// Mirostat v2: drop every token whose surprise −log2 p exceeds μ (keeping at least the most
/// likely one), then sample from the rest.
#[derive(Debug, Clone)]
pub struct MirostatV2 {
    target: TargetSurprise,
}

impl MirostatV2 {
    pub fn new(config: &MirostatConfig) -> Result<Self> {
        Ok(Self { target: TargetSurprise::new(config)? })
    }
}

impl Sampler for MirostatV2 {
    fn name(&self) -> &'static str {
        "mirostatV2"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        // −log2 p ≤ μ  ⇔  ln p ≥ −μ·ln 2.
        candidates.keep_ln_prob_at_least(-(self.target.mu as f64) * LN_2);
        Ok(())
    }

    fn accept(&mut self, _token: u32, record: Option<&mut StepRecord>) {
        self.target.accept(record);
    }

    fn reset(&mut self) {
        self.target.reset();
    }
}
