use super::{Candidates, Sampler};
use crate::error::{check, Result};

/// Top-n-σ (Tang et al. 2024), as llama.cpp's `top-n-sigma` defines it: keep the tokens whose
/// logit is within `n` standard deviations of the best one, the mean and deviation taken over
/// the kept, unbanned logits. Both ends scale alike with temperature, so the cut does not
/// depend on where temperature sits in the chain.
#[derive(Debug, Clone)]
pub struct TopNSigma {
    n: f32,
}

impl TopNSigma {
    pub fn new(n: f32) -> Result<Self> {
        check(n.is_finite() && n > 0.0, "topNSigma", "a finite number > 0", n)?;
        Ok(Self { n })
    }
}

impl Sampler for TopNSigma {
    fn name(&self) -> &'static str {
        "topNSigma"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        if candidates.len() <= 1 {
            return Ok(());
        }
        let (mut count, mut sum, mut max) = (0usize, 0.0f64, f32::NEG_INFINITY);
        candidates.for_each(|_, logit| {
            // Banned tokens (−∞) are not part of the spread, as in llama.cpp.
            if logit > f32::NEG_INFINITY {
                count += 1;
                sum += logit as f64;
                max = max.max(logit);
            }
        });
        let mean = sum / count.max(1) as f64;
        let mut squares = 0.0f64;
        candidates.for_each(|_, logit| {
            if logit > f32::NEG_INFINITY {
                squares += (logit as f64 - mean).powi(2);
            }
        });
        let sigma = (squares / count.max(1) as f64).sqrt();
        candidates.keep_logits_at_least((max as f64 - self.n as f64 * sigma) as f32);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_logits_within_n_deviations_of_the_best() {
        // Mean 0 and σ = √3.2 ≈ 1.79: n = 1 cuts at 0.21, n = 2 at −1.58, n = 3 at −3.37.
        let logits = [2.0, -2.0, 2.0, -2.0, 0.0];
        for (n, expected) in [(1.0, vec![0, 2]), (2.0, vec![0, 2, 4]), (3.0, vec![0, 1, 2, 3, 4])] {
            let mut c = Candidates::from_logits(&logits).unwrap();
            TopNSigma::new(n).unwrap().apply(&mut c).unwrap();
            let kept: Vec<u32> = c.probabilities().iter().map(|&(id, _)| id).collect();
            assert_eq!(kept, expected, "n = {n}");
        }
    }

    #[test]
    fn ignores_banned_tokens_and_refuses_bad_n() {
        let mut c = Candidates::from_logits(&[1.0, 0.0, f32::MIN]).unwrap();
        c.logits_mut()[2] = f32::NEG_INFINITY;
        TopNSigma::new(0.5).unwrap().apply(&mut c).unwrap();
        // σ over {1, 0} is 0.5: the cut is at 0.75.
        assert_eq!(c.kept_ids(), Some(&[0u32][..]));
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let err = TopNSigma::new(bad).unwrap_err().to_string();
            assert!(err.contains("topNSigma must be a finite number > 0"), "{err}");
        }
    }
}
