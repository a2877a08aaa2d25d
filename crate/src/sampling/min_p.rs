use super::{Candidates, Sampler};
use crate::error::{check, Result};

/// Keeps the tokens whose probability is at least `min_p` times the top token's. Since
/// p_i / p_max = exp(scale·(logit_i − max)), that is one pass comparing logits: no exp, no sort.
#[derive(Debug, Clone)]
pub struct MinP {
    min_p: f32,
}

impl MinP {
    pub fn new(min_p: f32) -> Result<Self> {
        check((0.0..=1.0).contains(&min_p), "minP", "in [0, 1]", min_p)?;
        Ok(Self { min_p })
    }
}

impl Sampler for MinP {
    fn name(&self) -> &'static str {
        "minP"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        if self.min_p > 0.0 {
            let threshold = candidates.max_logit() + self.min_p.ln() / candidates.scale();
            candidates.keep_logits_at_least(threshold);
        }
        Ok(())
    }
}
