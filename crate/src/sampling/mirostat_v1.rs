use super::mirostat::{MirostatConfig, TargetSurprise};
use super::{Candidates, Sampler, StepRecord};
use crate::error::Result;

/// Mirostat v1: estimate the Zipf exponent ŝ of the distribution from its top m = 100
/// tokens, then keep the top k with the paper's formula (N = vocabulary size)
///     k = ((ε̂ · 2^μ) / (1 − N^(−ε̂)))^(1/ŝ),  ε̂ = ŝ − 1,
/// and k = max(1, ⌊k⌋). Deviation: the reference script uses round(k) + 1 and N = 50000; we
/// follow llama.cpp's floor with the true vocabulary size.
#[derive(Debug, Clone)]
pub struct MirostatV1 {
    target: TargetSurprise,
}

/// Tokens used for the Zipf estimate, as in the paper.
const ZIPF_TOKENS: usize = 100;

impl MirostatV1 {
    pub fn new(config: &MirostatConfig) -> Result<Self> {
        Ok(Self { target: TargetSurprise::new(config)? })
    }
}

/// Least-squares Zipf exponent from log-probability gaps of the ranked head:
/// ŝ = Σ t_i b_i / Σ t_i², t_i = ln((i+2)/(i+1)), b_i = ln(p_i / p_{i+1}).
/// `ln_prob_gaps` holds b_i, which is scale·(logit_i − logit_{i+1}) and so needs no exp.
pub fn zipf_exponent(ln_prob_gaps: impl Iterator<Item = f64>) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (i, b) in ln_prob_gaps.enumerate() {
        let t = libm::log((i as f64 + 2.0) / (i as f64 + 1.0));
        num += t * b;
        den += t * t;
    }
    num / den
}

/// The paper's k for exponent `s`, truncation level `mu` (bits) and vocabulary size `n`,
/// before rounding. A flat or undefined estimate (ŝ ≤ 0, or NaN) gives +∞: keep everything.
pub fn mirostat_k(s: f64, mu: f64, n: f64) -> f64 {
    if !(s > 0.0) {
        return f64::INFINITY;
    }
    let eps = s - 1.0;
    // ε̂ / (1 − N^(−ε̂)) tends to 1 / ln N as ε̂ → 0.
    let ratio = if eps.abs() < 1e-9 { 1.0 / libm::log(n) } else { eps / (1.0 - libm::pow(n, -eps)) };
    libm::pow(ratio * libm::exp2(mu), 1.0 / s)
}

impl Sampler for MirostatV1 {
    fn name(&self) -> &'static str {
        "mirostatV1"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        if candidates.len() < 2 {
            return Ok(());
        }
        let ranked = candidates.rank_head(ZIPF_TOKENS);
        let scale = candidates.scale() as f64;
        let head = candidates.head(ranked);
        let gaps = head
            .windows(2)
            .map(|w| scale * (candidates.logit(w[0]) - candidates.logit(w[1])) as f64);
        let s = zipf_exponent(gaps);
        let k = mirostat_k(s, self.target.mu as f64, candidates.vocab_size() as f64);
        let k = if k.is_finite() { (k as usize).max(1) } else { usize::MAX };
        if k < candidates.len() {
            let ranked = candidates.rank_head(k);
            candidates.keep_head(ranked);
        }
        Ok(())
    }

    fn accept(&mut self, _token: u32, record: Option<&mut StepRecord>) {
        self.target.accept(record);
    }

    fn reset(&mut self) {
        self.target.reset();
    }
}
