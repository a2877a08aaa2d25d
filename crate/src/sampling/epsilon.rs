use super::{Candidates, Sampler};
use crate::error::{check, Result};

/// Epsilon sampling (Hewitt et al. 2022), as HF's `EpsilonLogitsWarper` defines it: drop the
/// tokens whose probability is below the cut-off ε, keeping at least the most likely one.
#[derive(Debug, Clone)]
pub struct Epsilon {
    epsilon: f32,
}

impl Epsilon {
    pub fn new(epsilon: f32) -> Result<Self> {
        check(epsilon > 0.0 && epsilon < 1.0, "epsilonCutoff", "in (0, 1)", epsilon)?;
        Ok(Self { epsilon })
    }
}

impl Sampler for Epsilon {
    fn name(&self) -> &'static str {
        "epsilon"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        candidates.keep_ln_prob_at_least((self.epsilon as f64).ln());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_tokens_below_epsilon_but_never_the_best() {
        // Probabilities 0.5, 0.3, 0.2.
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        for (epsilon, kept) in [(0.25, 2), (0.1, 3), (0.9, 1)] {
            let mut c = Candidates::from_logits(&logits).unwrap();
            Epsilon::new(epsilon).unwrap().apply(&mut c).unwrap();
            assert_eq!(c.len(), kept, "ε = {epsilon}");
        }
        for bad in [0.0, 1.0, -0.1, f32::NAN] {
            let err = Epsilon::new(bad).unwrap_err().to_string();
            assert!(err.contains("epsilonCutoff must be in (0, 1)"), "{err}");
        }
    }
}
