use super::{Candidates, Rank, Sampler};
use crate::error::{check, Result};

/// Locally typical sampling (Meister et al. 2023), as HF's `TypicalLogitsWarper` does it:
/// rank tokens by how close their surprise −ln p is to the entropy H, and keep the smallest
/// such prefix whose mass reaches `p`.
#[derive(Debug, Clone)]
pub struct Typical {
    p: f32,
}

impl Typical {
    pub fn new(p: f32) -> Result<Self> {
        check(p > 0.0 && p <= 1.0, "typicalP", "in (0, 1]", p)?;
        Ok(Self { p })
    }
}

impl Sampler for Typical {
    fn name(&self) -> &'static str {
        "typical"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        if self.p < 1.0 {
            let entropy_nats = candidates.entropy_nats();
            candidates.keep_mass(self.p as f64, Rank::Typicality { entropy_nats });
        }
        Ok(())
    }
}
