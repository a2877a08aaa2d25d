//! The working set of one decoding step: which tokens are still in play, and at what
//! temperature. Samplers narrow it; the chain draws from what is left.

use crate::error::{Error, Result};
use crate::math::{exp_nonpositive, exp_weights, max_value};
use std::cmp::Ordering;

/// Token candidates for one step.
///
/// The vocabulary-sized logits are kept dense and never sorted. Until a sampler truncates,
/// the whole vocabulary is in play and no id list exists; truncations produce a short id
/// list. Temperature is lazy: it multiplies `scale` instead of rewriting every logit, so the
/// probability of token `i` is `exp(scale·(logit_i − max)) / Z` over the kept set.
#[derive(Debug, Default)]
pub struct Candidates {
    logits: Vec<f32>,
    scale: f32,
    /// The kept ids when `whole_vocab` is false.
    ids: Vec<u32>,
    whole_vocab: bool,
    /// `ids` is in rank order: logit descending, ties by lower id.
    sorted: bool,
    /// The best-ranked ids of the whole vocabulary, filled by [`Candidates::rank_head`].
    head: Vec<u32>,
    /// Per-token exp weights, reused by every whole-vocabulary pass.
    weights: Vec<f32>,
}

/// Probabilities of the kept set at the current scale, in a form that needs no exp to compare.
#[derive(Debug, Clone, Copy)]
pub struct Normalizer {
    pub max_logit: f32,
    pub scale: f32,
    /// ln Σ exp(scale·(logit − max)) over the kept set.
    pub ln_z: f64,
}

impl Normalizer {
    /// Natural log of the probability of a token with this logit.
    pub fn ln_prob(&self, logit: f32) -> f64 {
        (self.scale * (logit - self.max_logit)) as f64 - self.ln_z
    }

    pub fn prob(&self, logit: f32) -> f64 {
        libm::exp(self.ln_prob(logit))
    }
}

/// How tokens are ordered when a mass-based truncation walks them best-first.
#[derive(Debug, Clone, Copy)]
pub enum Rank {
    /// Most probable first (top-p).
    Probability,
    /// Surprise closest to the entropy first (locally typical sampling).
    Typicality { entropy_nats: f64 },
}

impl Rank {
    /// Distance from the best possible rank: 0 is best.
    fn key(&self, norm: &Normalizer, logit: f32) -> f32 {
        match *self {
            Rank::Probability => norm.scale * (norm.max_logit - logit),
            Rank::Typicality { entropy_nats } => ((-norm.ln_prob(logit)) - entropy_nats).abs() as f32,
        }
    }
}

impl Candidates {
    /// Starts a step from raw model logits, which must be finite.
    pub fn reset(&mut self, logits: &[f32]) -> Result<()> {
        check_logits(logits)?;
        self.logits.clear();
        self.logits.extend_from_slice(logits);
        self.scale = 1.0;
        self.ids.clear();
        self.whole_vocab = true;
        self.sorted = false;
        Ok(())
    }

    pub fn from_logits(logits: &[f32]) -> Result<Self> {
        let mut candidates = Self::default();
        candidates.reset(logits)?;
        Ok(candidates)
    }

    pub fn vocab_size(&self) -> usize {
        self.logits.len()
    }

    /// Number of tokens still in play.
    pub fn len(&self) -> usize {
        if self.whole_vocab {
            self.logits.len()
        } else {
            self.ids.len()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn logit(&self, token: u32) -> f32 {
        self.logits[token as usize]
    }

    /// The dense logits, for processors that run before any truncation (bias, penalties).
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    pub fn logits_mut(&mut self) -> &mut [f32] {
        // Before any truncation, or after a logit bias's ban alone (penalties follow it): that
        // keeps the unbanned ids unsorted, a set that changing their logits leaves valid. The
        // assertion once demanded the whole vocabulary, and a ban with penalties panicked in
        // debug builds (found by tests/fuzz.rs).
        debug_assert!(self.whole_vocab || !self.sorted, "logit processors run before truncation");
        &mut self.logits
    }

    /// Inverse temperature applied so far.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    pub fn divide_temperature(&mut self, temperature: f32) {
        self.scale /= temperature;
    }

    /// Kept ids, in the chain's current order. `None` while the whole vocabulary is kept.
    pub fn kept_ids(&self) -> Option<&[u32]> {
        (!self.whole_vocab).then_some(&self.ids[..])
    }

    /// Calls `f(id, logit)` for every kept token, in a fixed order.
    pub fn for_each(&self, mut f: impl FnMut(u32, f32)) {
        if self.whole_vocab {
            for (id, &logit) in self.logits.iter().enumerate() {
                f(id as u32, logit);
            }
        } else {
            for &id in &self.ids {
                f(id, self.logits[id as usize]);
            }
        }
    }

    pub fn max_logit(&self) -> f32 {
        if self.whole_vocab {
            return max_value(&self.logits);
        }
        let mut max = f32::NEG_INFINITY;
        self.for_each(|_, logit| max = max.max(logit));
        max
    }

    /// One pass of exp over the kept set.
    pub fn normalizer(&mut self) -> Normalizer {
        let max_logit = self.max_logit();
        let scale = self.scale;
        let z = if self.whole_vocab {
            exp_weights(&self.logits, scale, max_logit, &mut self.weights).0
        } else {
            let weight = |logit: f32| exp_nonpositive(scale * (logit - max_logit)) as f64;
            self.ids.iter().map(|&id| weight(self.logits[id as usize])).sum()
        };
        Normalizer { max_logit, scale, ln_z: libm::log(z) }
    }

    /// Shannon entropy (nats) of the kept set at the current scale.
    pub fn entropy_nats(&mut self) -> f64 {
        let norm = self.normalizer();
        let mut entropy = 0.0;
        self.for_each(|_, logit| {
            let ln_p = norm.ln_prob(logit);
            // Banned tokens (p = 0) add nothing, as 0·ln 0 = 0.
            if ln_p > f64::NEG_INFINITY {
                entropy -= libm::exp(ln_p) * ln_p;
            }
        });
        entropy
    }

    /// Probabilities of the kept tokens, renormalised over the kept set.
    pub fn probabilities(&mut self) -> Vec<(u32, f64)> {
        let norm = self.normalizer();
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|id, logit| out.push((id, norm.prob(logit))));
        out
    }

    /// Puts the best `m` kept tokens (by logit) at the front, in rank order, and returns how
    /// many there are. Read them with [`Candidates::head`].
    pub fn rank_head(&mut self, m: usize) -> usize {
        if self.whole_vocab {
            top_m(&self.logits, m, &mut self.head);
            self.head.len()
        } else {
            self.sort_kept();
            m.min(self.ids.len())
        }
    }

    /// The ranked front of the kept set prepared by the last [`Candidates::rank_head`].
    pub fn head(&self, len: usize) -> &[u32] {
        if self.whole_vocab {
            &self.head[..len]
        } else {
            &self.ids[..len]
        }
    }

    /// Keeps only the first `n` ranked tokens. Call after [`Candidates::rank_head`] with
    /// `m >= n`.
    pub fn keep_head(&mut self, n: usize) {
        if self.whole_vocab {
            std::mem::swap(&mut self.ids, &mut self.head);
            self.whole_vocab = false;
            self.sorted = true;
        }
        self.ids.truncate(n.max(1));
    }

    /// Keeps the tokens whose logit is at least `threshold`, and always the best one.
    /// One pass, no sort.
    pub fn keep_logits_at_least(&mut self, threshold: f32) {
        // Clamped from below so that banned (−∞) tokens never count as kept.
        let threshold = threshold.min(self.max_logit()).max(f32::MIN);
        if self.whole_vocab {
            self.ids.clear();
            let ids = &mut self.ids;
            ids.extend(
                self.logits
                    .iter()
                    .enumerate()
                    .filter(|(_, &logit)| logit >= threshold)
                    .map(|(id, _)| id as u32),
            );
            self.whole_vocab = false;
            self.sorted = false;
        } else {
            let logits = &self.logits;
            self.ids.retain(|&id| logits[id as usize] >= threshold);
        }
    }

    /// Keeps the tokens whose probability over the kept set is at least `e^min_ln_prob`, and
    /// always the best one. Used by the cut-offs defined on probabilities (epsilon, eta,
    /// Mirostat v2): ln p ≥ m  ⇔  logit ≥ max + (m + ln Z) / scale, so one pass, no exp per token.
    pub fn keep_ln_prob_at_least(&mut self, min_ln_prob: f64) {
        let norm = self.normalizer();
        let threshold = norm.max_logit + ((min_ln_prob + norm.ln_z) / norm.scale as f64) as f32;
        self.keep_logits_at_least(threshold);
    }

    /// Keeps the tokens for which `keep(id, logit)` holds, in their current order. The caller
    /// makes sure at least one stays.
    pub fn retain(&mut self, mut keep: impl FnMut(u32, f32) -> bool) {
        if self.whole_vocab {
            self.ids.clear();
            let ids = &mut self.ids;
            ids.extend((0..self.logits.len() as u32).filter(|&id| keep(id, self.logits[id as usize])));
            self.whole_vocab = false;
            self.sorted = false;
        } else {
            let logits = &self.logits;
            self.ids.retain(|&id| keep(id, logits[id as usize]));
        }
    }

    /// Keeps the smallest set of tokens, taken best-first by `rank`, whose probability mass
    /// reaches `mass` (at least one).
    pub fn keep_mass(&mut self, mass: f64, rank: Rank) {
        let norm = self.normalizer();
        let key = |logit: f32| rank.key(&norm, logit);
        if !self.whole_vocab {
            // Kept sets are short: sort them.
            let logits = &self.logits;
            self.ids.sort_unstable_by(|&a, &b| {
                key(logits[a as usize]).total_cmp(&key(logits[b as usize])).then(a.cmp(&b))
            });
            let mut cumulative = 0.0;
            let keep = self.ids.iter().position(|&id| {
                cumulative += norm.prob(logits[id as usize]);
                cumulative >= mass
            });
            self.ids.truncate(keep.map_or(self.ids.len(), |last| last + 1).max(1));
            self.sorted = matches!(rank, Rank::Probability);
            return;
        }
        // The whole vocabulary: a histogram of the keys finds the bucket where the mass is
        // reached, and only that bucket is sorted (llama.cpp does the same for top-k).
        const BUCKETS: usize = 512;
        // Keys past this (p below e^−32 of the best, for top-p) share the last bucket.
        const KEY_RANGE: f32 = 32.0;
        let bucket = |logit: f32| ((key(logit) * (BUCKETS as f32 / KEY_RANGE)) as usize).min(BUCKETS - 1);
        let mut bucket_mass = [0.0f64; BUCKETS];
        for (&logit, &weight) in self.logits.iter().zip(&self.weights) {
            bucket_mass[bucket(logit)] += weight as f64;
        }
        let target = mass * bucket_mass.iter().sum::<f64>();
        let mut cumulative = 0.0;
        let boundary = bucket_mass
            .iter()
            .position(|&m| {
                cumulative += m;
                cumulative >= target
            })
            .unwrap_or(BUCKETS - 1);
        let mut cumulative: f64 = bucket_mass[..boundary].iter().sum();
        self.ids.clear();
        self.head.clear();
        for (id, (&logit, &weight)) in self.logits.iter().zip(&self.weights).enumerate() {
            if weight > 0.0 {
                match bucket(logit).cmp(&boundary) {
                    Ordering::Less => self.ids.push(id as u32),
                    Ordering::Equal => self.head.push(id as u32),
                    Ordering::Greater => {}
                }
            }
        }
        let (logits, weights) = (&self.logits, &self.weights);
        self.head.sort_unstable_by(|&a, &b| {
            key(logits[a as usize]).total_cmp(&key(logits[b as usize])).then(a.cmp(&b))
        });
        for &id in &self.head {
            if cumulative >= target && !self.ids.is_empty() {
                break;
            }
            cumulative += weights[id as usize] as f64;
            self.ids.push(id);
        }
        self.whole_vocab = false;
        self.sorted = false;
    }

    fn sort_kept(&mut self) {
        if !self.sorted {
            let logits = &self.logits;
            self.ids.sort_unstable_by(|&a, &b| rank_order(logits, a, b));
            self.sorted = true;
        }
    }
}

/// Refuses empty logits and any NaN or infinity.
pub(crate) fn check_logits(logits: &[f32]) -> Result<()> {
    if logits.is_empty() {
        return Err(Error::EmptyLogits);
    }
    // A branch-free check vectorises; the slow search runs only on failure.
    if !logits.iter().fold(true, |ok, x| ok & x.is_finite()) {
        let index = logits.iter().position(|x| !x.is_finite()).unwrap_or(0);
        return Err(Error::NonFiniteLogit { index, value: logits[index] });
    }
    Ok(())
}

/// Higher value first; ties go to the lower id, so every truncation is deterministic.
fn rank_order(values: &[f32], a: u32, b: u32) -> Ordering {
    values[b as usize]
        .total_cmp(&values[a as usize])
        .then(a.cmp(&b))
}

/// Writes the ids of the `m` largest finite-or-positive-infinite values into `out`, best
/// first (ties: lower id first). Values of −∞ (banned tokens) are never selected.
///
/// One pass: a buffer collects values above a running threshold and is compacted to the best
/// `m` when it doubles, which raises the threshold. Most chunks are skipped by a branch-free
/// comparison that the compiler vectorises, so the cost is close to reading the values once.
pub fn top_m(values: &[f32], m: usize, out: &mut Vec<u32>) {
    out.clear();
    if m == 0 {
        return;
    }
    let capacity = 2 * m.max(32);
    let mut threshold = f32::NEG_INFINITY;
    const CHUNK: usize = 64;
    for (c, chunk) in values.chunks(CHUNK).enumerate() {
        if !chunk.iter().fold(false, |any, &v| any | (v > threshold)) {
            continue;
        }
        for (j, &v) in chunk.iter().enumerate() {
            if v > threshold {
                out.push((c * CHUNK + j) as u32);
                if out.len() >= capacity {
                    compact(values, m, out);
                    threshold = values[out[m - 1] as usize];
                }
            }
        }
    }
    compact(values, m, out);
}

fn compact(values: &[f32], m: usize, out: &mut Vec<u32>) {
    if out.len() > m {
        out.select_nth_unstable_by(m - 1, |&a, &b| rank_order(values, a, b));
        out.truncate(m);
    }
    out.sort_unstable_by(|&a, &b| rank_order(values, a, b));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_m_matches_a_full_sort_including_ties() {
        let values: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32).collect();
        let mut expected: Vec<u32> = (0..1000).collect();
        expected.sort_by(|&a, &b| rank_order(&values, a, b));
        let mut out = Vec::new();
        for m in [1, 5, 40, 64, 100, 999, 1000, 2000] {
            top_m(&values, m, &mut out);
            assert_eq!(out, expected[..m.min(1000)], "m = {m}");
        }
    }

    #[test]
    fn top_m_skips_banned_tokens() {
        let values = [f32::NEG_INFINITY, 1.0, f32::NEG_INFINITY, 0.5];
        let mut out = Vec::new();
        top_m(&values, 4, &mut out);
        assert_eq!(out, [1, 3]);
    }

    #[test]
    fn rejects_empty_and_non_finite_logits() {
        assert_eq!(Candidates::from_logits(&[]).unwrap_err(), Error::EmptyLogits);
        let err = Candidates::from_logits(&[0.0, f32::NAN]).unwrap_err();
        assert!(matches!(err, Error::NonFiniteLogit { index: 1, .. }), "{err}");
        let err = Candidates::from_logits(&[f32::INFINITY]).unwrap_err();
        assert!(err.to_string().contains("must be finite"), "{err}");
    }
}
