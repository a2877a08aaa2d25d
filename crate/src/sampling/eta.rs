use super::{Candidates, Sampler};
use crate::error::{check, Result};

/// Eta sampling (Hewitt et al. 2022), as HF's `EtaLogitsWarper` defines it: the cut-off adapts
/// to the entropy H of the distribution, η = min(ε, √ε·e^−H), and the tokens below it are
/// dropped, keeping at least the most likely one. A flat distribution (high H) is cut less.
#[derive(Debug, Clone)]
pub struct Eta {
    epsilon: f32,
}

impl Eta {
    pub fn new(epsilon: f32) -> Result<Self> {
        check(epsilon > 0.0 && epsilon < 1.0, "etaCutoff", "in (0, 1)", epsilon)?;
        Ok(Self { epsilon })
    }

    /// The cut-off for a distribution of entropy `entropy_nats`.
    pub fn cutoff(&self, entropy_nats: f64) -> f64 {
        let epsilon = self.epsilon as f64;
        epsilon.min(epsilon.sqrt() * (-entropy_nats).exp())
    }
}

impl Sampler for Eta {
    fn name(&self) -> &'static str {
        "eta"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        let cutoff = self.cutoff(candidates.entropy_nats());
        candidates.keep_ln_prob_at_least(cutoff.ln());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_falls_as_the_entropy_rises() {
        let eta = Eta::new(0.01).unwrap();
        // √0.01 = 0.1: e^−H caps it from H = ln 10 on.
        assert_eq!(eta.cutoff(0.0), 0.01f32 as f64);
        assert!((eta.cutoff(5.0) - 0.1 * (-5.0f64).exp()).abs() < 1e-9, "{}", eta.cutoff(5.0));
        for bad in [0.0, 1.0, f32::NAN] {
            let err = Eta::new(bad).unwrap_err().to_string();
            assert!(err.contains("etaCutoff must be in (0, 1)"), "{err}");
        }
    }

    #[test]
    fn a_uniform_distribution_keeps_everything() {
        // H = ln 4, so η = min(0.2, √0.2/4) ≈ 0.11 < 0.25 = every p.
        let mut c = Candidates::from_logits(&[0.0; 4]).unwrap();
        Eta::new(0.2).unwrap().apply(&mut c).unwrap();
        assert_eq!(c.len(), 4);
    }
}
