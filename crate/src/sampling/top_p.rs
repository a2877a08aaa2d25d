use super::{Candidates, Rank, Sampler};
use crate::error::{check, Result};

/// Nucleus sampling (Holtzman et al. 2020): keeps the smallest set of most likely tokens whose
/// probability mass reaches p.
#[derive(Debug, Clone)]
pub struct TopP {
    p: f32,
}

impl TopP {
    pub fn new(p: f32) -> Result<Self> {
        check(p > 0.0 && p <= 1.0, "topP", "in (0, 1]", p)?;
        Ok(Self { p })
    }
}

impl Sampler for TopP {
    fn name(&self) -> &'static str {
        "topP"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        if self.p < 1.0 {
            candidates.keep_mass(self.p as f64, Rank::Probability);
        }
        Ok(())
    }
}
