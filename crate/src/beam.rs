//! Beam search as Hugging Face transformers defines it (`BeamSearchScorer` with
//! `BeamHypotheses`): each step extends every beam by every token, ranks the sums of log
//! probabilities, and keeps the best `beams` that do not end; an ending one (a stop token among
//! the first `beams` candidates) becomes a finished hypothesis, scored by its sum of log
//! probabilities over its length to the power `length_penalty`. `early_stopping` says when the
//! finished ones are final: as soon as there are `beams` of them (`true`), when no live beam can
//! score above the worst of them at its current length (`false`), or at its longest (`"never"`).
//! At the end, the live beams join the finished ones, and the best come first.
//!
//! This module is the search itself ([`BeamSearch`], fed each live beam's logits step by step);
//! the engine feeds the beams (`generate/beam_search.rs`).

use crate::error::{check, Result};
use serde::{Deserialize, Serialize};

/// When the finished hypotheses are final (HF's `early_stopping`: `true`, `false`, `"never"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(untagged)]
pub enum EarlyStopping {
    /// `true`: once `beams` hypotheses have finished; `false` (the default): once no live beam
    /// can beat the worst of them, judged at the current length.
    Flag(bool),
    /// `"never"`: judged at the longest length a beam can reach.
    Never(Never),
}

/// The `"never"` of [`EarlyStopping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "lowercase")]
pub enum Never {
    Never,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping::Flag(false)
    }
}

/// What a beam search is asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct BeamConfig {
    /// Beams kept at each step (1 is greedy decoding); at most 16.
    pub beams: usize,
    /// Most tokens after the prompt.
    pub max_tokens: usize,
    /// The exponent of the length a finished hypothesis's sum of log probabilities is divided
    /// by: above 0 favours longer ones.
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    /// Tokens that end a hypothesis; `None`: the tokenizer's end-of-text tokens.
    pub stop_tokens: Option<Vec<u32>>,
}

impl Default for BeamConfig {
    fn default() -> Self {
        Self { beams: 4, max_tokens: 16, length_penalty: 1.0, early_stopping: EarlyStopping::default(), stop_tokens: None }
    }
}

pub const MAX_BEAMS: usize = 16;

impl BeamConfig {
    pub fn check(&self) -> Result<()> {
        check((1..=MAX_BEAMS).contains(&self.beams), "beams", "from 1 to 16", self.beams)?;
        check(self.max_tokens >= 1, "maxTokens", "at least 1", self.max_tokens)?;
        check(self.length_penalty.is_finite(), "lengthPenalty", "a finite number", self.length_penalty)
    }
}

/// One extension of a beam: its token, and the beam's sum of log probabilities with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Which of the step's beams it extends.
    pub beam: usize,
    pub token: u32,
    /// The token's own log probability.
    pub log_prob: f64,
    /// The beam's sum of log probabilities, this token's included.
    pub score: f64,
}

/// `ln softmax(logits)` in f64.
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let sum: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    let log_sum = sum.ln() + max;
    logits.iter().map(|&x| x as f64 - log_sum).collect()
}

/// The `2 × beams` best extensions of the beams (each beam's sum so far and its next-token
/// logits), best first; ties go to the lower beam, then the lower token, as `torch.topk` over
/// the flattened scores does.
pub fn candidates(live: &[(f64, &[f32])], beams: usize) -> Vec<Candidate> {
    let mut all: Vec<Candidate> = Vec::new();
    for (beam, &(sum, logits)) in live.iter().enumerate() {
        let log_probs = log_softmax(logits);
        all.extend(log_probs.iter().enumerate().map(|(token, &log_prob)| Candidate { beam, token: token as u32, log_prob, score: sum + log_prob }));
    }
    let keep = (2 * beams).min(all.len());
    let order = |a: &Candidate, b: &Candidate| b.score.total_cmp(&a.score).then(a.beam.cmp(&b.beam)).then(a.token.cmp(&b.token));
    if keep < all.len() {
        all.select_nth_unstable_by(keep, order);
        all.truncate(keep);
    }
    all.sort_by(order);
    all
}

/// A finished hypothesis: its tokens (the stop token last, if it ended on one), the sum of their
/// log probabilities, and its score (the sum over the length to the power `length_penalty`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct Hypothesis {
    pub tokens: Vec<u32>,
    /// The search's node of its last token (see [`BeamNode`]).
    pub node: usize,
    pub sum_log_prob: f64,
    pub score: f64,
    /// The text of its tokens, the stop token's left out (set by the engine).
    pub text: String,
}

/// The best `beams` finished hypotheses so far (HF's `BeamHypotheses`).
#[derive(Debug)]
pub struct Hypotheses {
    beams: usize,
    length_penalty: f64,
    early_stopping: EarlyStopping,
    max_tokens: usize,
    kept: Vec<Hypothesis>,
    worst: f64,
}

impl Hypotheses {
    pub fn new(config: &BeamConfig) -> Self {
        Self { beams: config.beams, length_penalty: config.length_penalty, early_stopping: config.early_stopping, max_tokens: config.max_tokens, kept: Vec::new(), worst: 1e9 }
    }

    /// Offers a hypothesis of `length` generated tokens, ending at `node`; returns whether it
    /// was kept.
    pub fn add(&mut self, tokens: Vec<u32>, node: usize, sum_log_prob: f64, length: usize) -> bool {
        let score = sum_log_prob / (length as f64).powf(self.length_penalty);
        if self.kept.len() >= self.beams && score <= self.worst {
            return false;
        }
        self.kept.push(Hypothesis { tokens, node, sum_log_prob, score, text: String::new() });
        if self.kept.len() > self.beams {
            let (worst, _) = self.kept.iter().enumerate().min_by(|a, b| a.1.score.total_cmp(&b.1.score)).expect("not empty");
            self.kept.remove(worst);
            self.worst = self.kept.iter().map(|h| h.score).fold(f64::INFINITY, f64::min);
        } else {
            self.worst = self.worst.min(score);
        }
        true
    }

    /// Whether no live beam can do better: `best` is the best candidate's sum of log
    /// probabilities at `length` generated tokens.
    pub fn is_done(&self, best: f64, length: usize) -> bool {
        if self.kept.len() < self.beams {
            return false;
        }
        let attainable = |length: usize| best / (length as f64).powf(self.length_penalty);
        match self.early_stopping {
            EarlyStopping::Flag(true) => true,
            EarlyStopping::Flag(false) => self.worst >= attainable(length),
            EarlyStopping::Never(_) if self.length_penalty > 0.0 => self.worst >= attainable(self.max_tokens),
            EarlyStopping::Never(_) => self.worst >= attainable(length),
        }
    }

    /// The kept hypotheses, best first.
    pub fn into_sorted(mut self) -> Vec<Hypothesis> {
        self.kept.sort_by(|a, b| b.score.total_cmp(&a.score));
        self.kept
    }
}

/// A candidate of one step, as the tree view draws it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub struct BeamNode {
    /// Unique within the search.
    pub id: usize,
    /// The node of the beam it extends; none at the first step.
    pub parent: Option<usize>,
    pub token: u32,
    /// The token's text (set by the engine).
    pub text: String,
    /// The token's log probability after its beam.
    pub log_prob: f64,
    /// The beam's sum of log probabilities with this token.
    pub score: f64,
}

/// One step: the candidates kept as beams, those that finished a hypothesis, and those pruned;
/// on the last step, the hypotheses, best first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct BeamStep {
    pub step: usize,
    pub kept: Vec<BeamNode>,
    pub finished: Vec<BeamNode>,
    pub pruned: Vec<BeamNode>,
    pub results: Vec<Hypothesis>,
}

struct LiveBeam {
    tokens: Vec<u32>,
    score: f64,
    /// None for the prompt, before the first step.
    node: Option<usize>,
}

/// A beam search in progress: hand [`step`](Self::step) the logits after each live beam
/// ([`live`](Self::live)), first after the prompt alone, until it says it has finished.
pub struct BeamSearch {
    config: BeamConfig,
    stops: Vec<u32>,
    beams: Vec<LiveBeam>,
    hypotheses: Hypotheses,
    nodes: usize,
    step: usize,
}

impl BeamSearch {
    /// `config` checked, and its `max_tokens` already within the context.
    pub fn new(config: &BeamConfig, stops: Vec<u32>) -> Result<Self> {
        config.check()?;
        let beams = vec![LiveBeam { tokens: Vec::new(), score: 0.0, node: None }];
        Ok(Self { config: config.clone(), stops, beams, hypotheses: Hypotheses::new(config), nodes: 0, step: 0 })
    }

    /// The tokens after the prompt of each live beam, whose logits the next step takes.
    pub fn live(&self) -> impl Iterator<Item = &[u32]> {
        self.beams.iter().map(|b| &b.tokens[..])
    }

    /// Ranks the live beams' extensions (`logits[b]` after beam b) and keeps the best; the
    /// record's `results` are set on the last step, which this returns as `true`.
    pub fn step(&mut self, logits: &[Vec<f32>]) -> Result<(BeamStep, bool)> {
        check(logits.len() == self.beams.len(), "logits", "one vector per live beam", logits.len())?;
        let live: Vec<(f64, &[f32])> = self.beams.iter().zip(logits).map(|(b, l)| (b.score, &l[..])).collect();
        let ranked = candidates(&live, self.config.beams);
        let (k, step) = (self.config.beams, self.step);
        let mut record = BeamStep { step, ..Default::default() };
        let mut next = Vec::new();
        for (rank, c) in ranked.iter().enumerate() {
            let parent = &self.beams[c.beam];
            let node = BeamNode { id: self.nodes, parent: parent.node, token: c.token, text: String::new(), log_prob: c.log_prob, score: c.score };
            self.nodes += 1;
            let stop = self.stops.contains(&c.token);
            let tokens = || [&parent.tokens[..], &[c.token]].concat();
            if next.len() == k || (stop && rank >= k) {
                record.pruned.push(node);
            } else if stop {
                self.hypotheses.add(tokens(), node.id, c.score, step + 1);
                record.finished.push(node);
            } else {
                next.push(LiveBeam { tokens: tokens(), score: c.score, node: Some(node.id) });
                record.kept.push(node);
            }
        }
        self.step += 1;
        let done = self.hypotheses.is_done(ranked[0].score, step + 1);
        if !(done || next.is_empty() || self.step == self.config.max_tokens) {
            self.beams = next;
            return Ok((record, false));
        }
        if !done {
            for beam in next {
                let length = beam.tokens.len();
                self.hypotheses.add(beam.tokens, beam.node.expect("a kept beam has a node"), beam.score, length);
            }
        }
        self.beams.clear();
        record.results = std::mem::replace(&mut self.hypotheses, Hypotheses::new(&self.config)).into_sorted();
        Ok((record, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_rank_every_beams_extensions_by_their_sums() {
        // Two beams over 3 tokens: ln p of [1, 2, 3] and [3, 2, 1] shapes.
        let logits = [[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]];
        let c = candidates(&[(-1.0, &logits[0][..]), (-0.5, &logits[1][..])], 1);
        assert_eq!(c.iter().map(|c| (c.beam, c.token)).collect::<Vec<_>>(), [(1, 0), (0, 2)]);
        assert!((c[0].score - (-0.5 + log_softmax(&logits[1])[0])).abs() < 1e-12);
        // A tie goes to the lower beam.
        let tied = candidates(&[(0.0, &[1.0, 0.0][..]), (0.0, &[1.0, 0.0][..])], 1);
        assert_eq!((tied[0].beam, tied[1].beam), (0, 1));
    }

    #[test]
    fn hypotheses_keep_the_best_and_stop_as_early_stopping_says() {
        let config = BeamConfig { beams: 2, max_tokens: 10, length_penalty: 1.0, ..Default::default() };
        let mut h = Hypotheses::new(&config);
        assert!(h.add(vec![1], 0, -2.0, 2)); // -1
        assert!(!h.is_done(-0.1, 3), "fewer than `beams` finished");
        assert!(h.add(vec![2], 1, -6.0, 3)); // -2
        assert!(h.add(vec![3], 2, -3.0, 2)); // -1.5 pushes out -2
        assert!(!h.add(vec![4], 3, -9.0, 3)); // -3
        // The worst kept is -1.5: a live beam at -5 over 3 tokens (-1.67) cannot beat it.
        assert!(h.is_done(-5.0, 3));
        assert!(!h.is_done(-4.0, 3));
        // "never" judges at the longest length: -5 over 10 could still beat it.
        let mut never = Hypotheses::new(&BeamConfig { early_stopping: EarlyStopping::Never(Never::Never), ..config.clone() });
        never.add(vec![1], 0, -2.0, 2);
        never.add(vec![3], 1, -3.0, 2);
        assert!(!never.is_done(-5.0, 3));
        let mut first = Hypotheses::new(&BeamConfig { early_stopping: EarlyStopping::Flag(true), ..config });
        first.add(vec![1], 0, -20.0, 2);
        first.add(vec![3], 1, -30.0, 2);
        assert!(first.is_done(0.0, 3));
        assert_eq!(h.into_sorted().iter().map(|h| h.tokens[0]).collect::<Vec<_>>(), [1, 3]);
    }

    #[test]
    fn early_stopping_reads_as_hf_writes_it() {
        let read = |json: &str| serde_json::from_str::<BeamConfig>(json).map(|c| c.early_stopping);
        assert_eq!(read(r#"{"earlyStopping": true}"#).unwrap(), EarlyStopping::Flag(true));
        assert_eq!(read(r#"{"earlyStopping": "never"}"#).unwrap(), EarlyStopping::Never(Never::Never));
        assert_eq!(read("{}").unwrap(), EarlyStopping::Flag(false));
        assert!(read(r#"{"earlyStopping": "soon"}"#).is_err());
        assert!(BeamConfig { beams: 17, ..Default::default() }.check().is_err());
    }
}
