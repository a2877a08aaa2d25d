//! Superposed decoding (Shen et al. 2024, reference code RAIVNLab/SuperposedDecoding): k drafts
//! from one forward pass per step, batch 1, one KV cache.
//!
//! Each step the model sees one input: the weighted sum of the embeddings of the drafts' last
//! tokens, weighted by the drafts' probabilities. Its single next-token distribution is shared
//! by all drafts; what keeps each draft coherent is an n-gram model of that draft's own
//! history, interpolated geometrically with the model's distribution.
//!
//! The decoder here is pure: it turns logits into the next drafts and the next superposition.
//! [`crate::generate::Engine`] feeds it the model.

use crate::error::{check, Result};
use crate::ngram::{NgramStore, MAX_ORDER};
use crate::sampling::{check_logits, top_m};
use serde::{Deserialize, Serialize};

/// The most drafts one run may keep.
pub const MAX_DRAFTS: usize = 16;

/// Superposed decoding's parameters. camelCase in JSON and JS. The defaults are the reference's
/// k = 3 configuration (`params/p15_d3_mixed.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SuperposedConfig {
    /// k: drafts kept alive and returned.
    pub drafts: usize,
    /// Weight of the n-gram term in [0, 1]; 0 uses the model alone (no store needed).
    pub alpha: f32,
    /// Applied to the logits before the top tokens are taken; low, so that the superposition
    /// follows its leading drafts.
    pub temperature: f32,
    /// How many of the model's top tokens each draft may extend with; default 3k.
    pub token_sample: Option<usize>,
    /// N-gram orders interpolated (2 = bigram … 6), each with the weight at the same index
    /// of `ngram_weights`. The weights need not sum to 1.
    pub ngram_orders: Vec<usize>,
    pub ngram_weights: Vec<f32>,
    /// Subtracted from a draft's step score when the n-gram store knows none of its tokens.
    pub penalty: f32,
}

impl Default for SuperposedConfig {
    fn default() -> Self {
        Self {
            drafts: 3,
            alpha: 0.54,
            temperature: 0.06,
            token_sample: None,
            ngram_orders: vec![2, 3, 4, 5, 6],
            ngram_weights: vec![0.01, 0.04, 0.15, 0.18, 0.12],
            penalty: 200.0,
        }
    }
}

impl SuperposedConfig {
    pub fn validate(&self) -> Result<()> {
        check((1..=MAX_DRAFTS).contains(&self.drafts), "superposed.drafts", "between 1 and 16", self.drafts)?;
        check((0.0..=1.0).contains(&self.alpha), "superposed.alpha", "between 0 and 1", self.alpha)?;
        let t = self.temperature;
        check(t.is_finite() && t > 0.0, "superposed.temperature", "a finite number above 0", t)?;
        if let Some(n) = self.token_sample {
            check(n >= 1, "superposed.tokenSample", "at least 1", n)?;
        }
        let orders = &self.ngram_orders;
        check(
            orders.len() == self.ngram_weights.len(),
            "superposed.ngramWeights",
            "one weight per n-gram order",
            format!("{} weights for {} orders", self.ngram_weights.len(), orders.len()),
        )?;
        for &order in orders {
            check((2..=MAX_ORDER).contains(&order), "superposed.ngramOrders", "orders between 2 and 6", order)?;
        }
        for &w in &self.ngram_weights {
            check(w.is_finite() && w >= 0.0, "superposed.ngramWeights", "finite numbers of at least 0", w)?;
        }
        let p = self.penalty;
        check(p.is_finite() && p >= 0.0, "superposed.penalty", "a finite number of at least 0", p)?;
        Ok(())
    }

    /// `token_sample`, or its default 3k.
    pub fn tokens_per_draft(&self) -> usize {
        self.token_sample.unwrap_or(3 * self.drafts)
    }

    /// Whether the n-gram term takes part (it needs a store).
    pub fn uses_ngrams(&self) -> bool {
        self.alpha > 0.0 && self.ngram_weights.iter().any(|&w| w > 0.0)
    }
}

/// One draft token in the tree of a run. Node ids are unique within a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub struct DraftNode {
    pub id: usize,
    /// The node this one extends; `None` on the first step (the prompt).
    pub parent: Option<usize>,
    pub token: u32,
    /// The token's text on its own (the engine fills it in).
    pub text: String,
    /// This step's log-score (natural log): the interpolated log-probability.
    pub score: f64,
    /// The draft's cumulative log-score: the parent's plus `score`.
    pub log_prob: f64,
    /// The model's probability of the token, after temperature and the top-token cut.
    pub model_prob: f64,
    /// The interpolated n-gram probability of the token after this draft's history.
    pub ngram_prob: f64,
    /// Its share of the next superposed input (live drafts only; 0 otherwise).
    pub weight: f32,
}

/// A finished draft, as returned at the end of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub struct FinalDraft {
    /// Its last node in the step records.
    pub node: usize,
    /// Generated ids, the stop token included when it ended with one.
    pub tokens: Vec<u32>,
    /// The generated text, without a stop token (the engine fills it in).
    pub text: String,
    pub log_prob: f64,
    /// `exp(−log_prob / tokens.len())`, the reference's ranking of drafts.
    pub perplexity: f64,
    /// Whether it ended with a stop token.
    pub stopped: bool,
}

/// What one superposed step decided.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub struct DraftStep {
    pub step: usize,
    /// The drafts alive after this step, best first.
    pub live: Vec<DraftNode>,
    /// Candidates that ended with a stop token this step (they join the finished pool).
    pub finished: Vec<DraftNode>,
    /// Candidates among the best 2k that were not kept.
    pub pruned: Vec<DraftNode>,
}

#[derive(Debug, Clone)]
struct Draft {
    tokens: Vec<u32>,
    log_prob: f64,
    node: Option<usize>,
}

impl Draft {
    fn result(&self, stop_tokens: &[u32]) -> FinalDraft {
        FinalDraft {
            node: self.node.unwrap_or(0),
            tokens: self.tokens.clone(),
            text: String::new(),
            log_prob: self.log_prob,
            perplexity: libm::exp(-self.log_prob / self.tokens.len().max(1) as f64),
            stopped: self.tokens.last().is_some_and(|t| stop_tokens.contains(t)),
        }
    }
}

/// One extension of one draft, before selection.
struct Candidate {
    draft: usize,
    token: u32,
    model_log_prob: f64,
    ngram_prob: f64,
    score: f64,
    /// 0 for a score the reference computes; 1 for a token the reference scores −∞ (see
    /// [`SuperposedDecoder::step`]).
    tier: u8,
}

/// The state of one superposed run.
#[derive(Debug, Clone)]
pub struct SuperposedDecoder {
    config: SuperposedConfig,
    live: Vec<Draft>,
    finished: Vec<Draft>,
    next_id: usize,
    steps: usize,
    top: Vec<u32>,
}

impl SuperposedDecoder {
    pub fn new(config: &SuperposedConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config: config.clone(),
            // All drafts start as the same empty draft; the first step branches it.
            live: vec![Draft { tokens: Vec::new(), log_prob: 0.0, node: None }],
            finished: Vec::new(),
            next_id: 0,
            steps: 0,
            top: Vec::new(),
        })
    }

    /// False once every draft has ended with a stop token.
    pub fn has_live_drafts(&self) -> bool {
        !self.live.is_empty()
    }

    /// Extends the drafts from the logits the model gave for the last input (the prompt, then
    /// each superposition). `prompt` precedes every draft in its n-gram history.
    ///
    /// Deviation from the reference, deliberately: where the n-gram store knows some of a
    /// draft's candidate tokens, the reference scores the others −∞ and can still select them
    /// (giving −∞ drafts, and NaN weights once all are). Here they rank after every finite
    /// candidate, scored like a draft the store knows nothing of: (1 − α)·log p − penalty.
    /// Whenever the reference selects only finite candidates, both choose the same.
    pub fn step(
        &mut self,
        logits: &[f32],
        prompt: &[u32],
        ngrams: Option<&NgramStore>,
        stop_tokens: &[u32],
    ) -> Result<DraftStep> {
        check_logits(logits)?;
        let k = self.config.drafts;
        let model_log_probs = self.model_log_probs(logits);
        let mut candidates = Vec::with_capacity(self.live.len() * self.top.len());
        let mut history = Vec::new();
        let mut ngram_probs = vec![0.0; self.top.len()];
        let ngrams = ngrams.filter(|_| self.config.uses_ngrams());
        let alpha = self.config.alpha as f64;
        for (d, draft) in self.live.iter().enumerate() {
            if let Some(store) = ngrams {
                history.clear();
                history.extend_from_slice(prompt);
                history.extend_from_slice(&draft.tokens);
                store.mixture(&history, &self.config.ngram_orders, &self.config.ngram_weights, &self.top, &mut ngram_probs);
            }
            let any_known = ngram_probs.iter().any(|&p| p > 0.0);
            for (j, &token) in self.top.iter().enumerate() {
                let lp = model_log_probs[j];
                let (step_score, tier) = match ngrams {
                    None => (lp, 0),
                    Some(_) if ngram_probs[j] > 0.0 => ((1.0 - alpha) * lp + alpha * libm::log(ngram_probs[j]), 0),
                    Some(_) => ((1.0 - alpha) * lp - self.config.penalty as f64, any_known as u8),
                };
                candidates.push(Candidate {
                    draft: d,
                    token,
                    model_log_prob: lp,
                    ngram_prob: ngram_probs[j],
                    score: step_score,
                    tier,
                });
            }
        }
        // Best first. The sort is stable: ties keep draft rank, then token rank.
        let total = |c: &Candidate| self.live[c.draft].log_prob + c.score;
        candidates.sort_by(|a, b| a.tier.cmp(&b.tier).then(total(b).total_cmp(&total(a))));
        candidates.truncate(2 * k);

        let mut record = DraftStep { step: self.steps, ..DraftStep::default() };
        let mut next_live = Vec::with_capacity(k);
        for c in &candidates {
            let parent = &self.live[c.draft];
            let draft = Draft {
                tokens: [&parent.tokens[..], &[c.token]].concat(),
                log_prob: parent.log_prob + c.score,
                node: Some(self.next_id),
            };
            let node = DraftNode {
                id: self.next_id,
                parent: parent.node,
                token: c.token,
                text: String::new(),
                score: c.score,
                log_prob: draft.log_prob,
                model_prob: libm::exp(c.model_log_prob),
                ngram_prob: c.ngram_prob,
                weight: 0.0,
            };
            self.next_id += 1;
            if stop_tokens.contains(&c.token) {
                record.finished.push(node);
                self.finished.push(draft);
            } else if next_live.len() < k {
                record.live.push(node);
                next_live.push(draft);
            } else {
                record.pruned.push(node);
            }
        }
        self.live = next_live;
        // The reference keeps the best k finished drafts.
        self.finished.sort_by(|a, b| b.log_prob.total_cmp(&a.log_prob));
        self.finished.truncate(k);
        for (node, (_, weight)) in record.live.iter_mut().zip(self.superposition()) {
            node.weight = weight;
        }
        self.steps += 1;
        Ok(record)
    }

    /// ln of the model's probabilities of its top tokens (kept in `self.top`), after
    /// temperature and renormalising over those tokens, as the reference's `get_top_k` does.
    fn model_log_probs(&mut self, logits: &[f32]) -> Vec<f64> {
        let n = self.config.tokens_per_draft().min(logits.len());
        top_m(logits, n, &mut self.top);
        let t = self.config.temperature as f64;
        let max = logits[self.top[0] as usize] as f64;
        let scaled: Vec<f64> = self.top.iter().map(|&i| (logits[i as usize] as f64 - max) / t).collect();
        let ln_z = libm::log(scaled.iter().map(|&s| libm::exp(s)).sum::<f64>());
        scaled.iter().map(|s| s - ln_z).collect()
    }

    /// The next input: each live draft's last token and weight, the softmax of the drafts'
    /// cumulative scores (summing to 1). Drafts that end in the same token add up in the
    /// embedding sum.
    pub fn superposition(&self) -> Vec<(u32, f32)> {
        let max = self.live.iter().map(|d| d.log_prob).fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = self.live.iter().map(|d| libm::exp(d.log_prob - max)).collect();
        let sum: f64 = exps.iter().sum();
        self.live
            .iter()
            .zip(&exps)
            .map(|(d, e)| (*d.tokens.last().expect("live drafts have tokens"), (e / sum) as f32))
            .collect()
    }

    /// The k drafts with the lowest perplexity among the live and the finished ones, best first.
    pub fn results(&self, stop_tokens: &[u32]) -> Vec<FinalDraft> {
        let mut all: Vec<FinalDraft> = self
            .live
            .iter()
            .chain(&self.finished)
            .filter(|d| !d.tokens.is_empty())
            .map(|d| d.result(stop_tokens))
            .collect();
        all.sort_by(|a, b| a.perplexity.total_cmp(&b.perplexity).then(a.node.cmp(&b.node)));
        all.truncate(self.config.drafts);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ngram::NgramBuilder;

    #[test]
    fn validates_every_parameter() {
        assert!(SuperposedConfig::default().validate().is_ok());
        let bad = [
            SuperposedConfig { drafts: 0, ..Default::default() },
            SuperposedConfig { alpha: 1.5, ..Default::default() },
            SuperposedConfig { alpha: f32::NAN, ..Default::default() },
            SuperposedConfig { temperature: 0.0, ..Default::default() },
            SuperposedConfig { token_sample: Some(0), ..Default::default() },
            SuperposedConfig { ngram_orders: vec![1], ngram_weights: vec![1.0], ..Default::default() },
            SuperposedConfig { ngram_weights: vec![0.1], ..Default::default() },
            SuperposedConfig { ngram_orders: vec![2], ngram_weights: vec![-1.0], ..Default::default() },
            SuperposedConfig { penalty: f32::INFINITY, ..Default::default() },
        ];
        for config in bad {
            let err = SuperposedDecoder::new(&config).unwrap_err().to_string();
            assert!(err.contains("superposed."), "{err}");
        }
    }

    #[test]
    fn first_step_branches_the_top_tokens_and_weights_sum_to_one() {
        let config = SuperposedConfig { alpha: 0.0, ..Default::default() };
        let mut decoder = SuperposedDecoder::new(&config).unwrap();
        let logits = [0.0, 0.3, 0.1, 0.2, -1.0, 0.25, 0.05];
        let step = decoder.step(&logits, &[0], None, &[6]).unwrap();
        let tokens: Vec<u32> = step.live.iter().map(|n| n.token).collect();
        assert_eq!(tokens, [1, 5, 3]);
        let finished: Vec<u32> = step.finished.iter().map(|n| n.token).collect();
        assert_eq!(finished, [6]);
        assert_eq!(step.pruned.len(), 2);
        let weights: f32 = step.live.iter().map(|n| n.weight).sum();
        assert!((weights - 1.0).abs() < 1e-6);
        assert!(step.live.windows(2).all(|w| w[0].weight >= w[1].weight));
        assert!(step.live.iter().all(|n| n.parent.is_none()));
    }

    #[test]
    fn the_ngram_term_steers_each_draft() {
        let mut builder = NgramBuilder::new(4, 0).unwrap();
        builder.add_document(&[0, 2, 0, 2, 1, 3]).unwrap();
        let store = builder.build().unwrap();
        let config = SuperposedConfig { drafts: 2, alpha: 0.9, ngram_orders: vec![2], ngram_weights: vec![1.0], ..Default::default() };
        let mut decoder = SuperposedDecoder::new(&config).unwrap();
        // The model slightly prefers 1, but after 0 the corpus only ever has 2.
        let step = decoder.step(&[0.0, 0.01, 0.0, -5.0], &[0], Some(&store), &[]).unwrap();
        assert_eq!(step.live[0].token, 2);
        assert_eq!(step.live[0].ngram_prob, 1.0);
        // Token 1 has no bigram after 0: it ranks after the finite candidate.
        assert_eq!(step.live[1].token, 1);
        assert!(step.live[1].score < -100.0);
    }

    #[test]
    fn refuses_non_finite_logits() {
        let mut decoder = SuperposedDecoder::new(&SuperposedConfig::default()).unwrap();
        assert!(decoder.step(&[0.0, f32::NAN], &[0], None, &[]).is_err());
    }
}
