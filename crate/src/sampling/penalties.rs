use super::{Candidates, Sampler, StepRecord};
use crate::error::{check, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Penalties over the last `lastN` accepted tokens (prompt included), as llama.cpp and the
/// OpenAI API define them: repetition divides a positive logit (multiplies a negative one) by
/// `repetition` once per distinct token (CTRL); presence subtracts a flat amount from every
/// token seen; frequency subtracts per occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PenaltyConfig {
    pub last_n: usize,
    pub repetition: f32,
    pub presence: f32,
    pub frequency: f32,
}

impl Default for PenaltyConfig {
    fn default() -> Self {
        Self { last_n: 64, repetition: 1.0, presence: 0.0, frequency: 0.0 }
    }
}

impl PenaltyConfig {
    pub fn is_active(&self) -> bool {
        self.last_n > 0 && (self.repetition != 1.0 || self.presence != 0.0 || self.frequency != 0.0)
    }
}

#[derive(Debug, Clone)]
pub struct Penalties {
    config: PenaltyConfig,
    history: VecDeque<u32>,
    counts: HashMap<u32, u32>,
}

impl Penalties {
    pub fn new(config: PenaltyConfig) -> Result<Self> {
        let PenaltyConfig { repetition, presence, frequency, .. } = config;
        check(repetition.is_finite() && repetition > 0.0, "penalties.repetition", "a number > 0", repetition)?;
        check(presence.is_finite(), "penalties.presence", "a finite number", presence)?;
        check(frequency.is_finite(), "penalties.frequency", "a finite number", frequency)?;
        // `lastN` bounds the history, it is not its size: the history holds the tokens seen so
        // far and grows with them. Reserving `lastN` up front made `lastN: 2^40` ask for 4 TB
        // (found by tests/fuzz.rs).
        let history = VecDeque::with_capacity(config.last_n.min(1024));
        Ok(Self { config, history, counts: HashMap::new() })
    }
}

impl Sampler for Penalties {
    fn name(&self) -> &'static str {
        "penalties"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        let vocab_size = candidates.vocab_size();
        let logits = candidates.logits_mut();
        let PenaltyConfig { repetition, presence, frequency, .. } = self.config;
        for (&token, &count) in &self.counts {
            let logit = logits
                .get_mut(token as usize)
                .ok_or(Error::TokenOutOfRange { token, vocab_size })?;
            *logit = if *logit > 0.0 { *logit / repetition } else { *logit * repetition };
            *logit -= presence + frequency * count as f32;
        }
        Ok(())
    }

    fn accept(&mut self, token: u32, _record: Option<&mut StepRecord>) {
        if self.config.last_n == 0 {
            return;
        }
        if self.history.len() == self.config.last_n {
            let old = self.history.pop_front().expect("history is full");
            if let Some(count) = self.counts.get_mut(&old) {
                *count -= 1;
                if *count == 0 {
                    self.counts.remove(&old);
                }
            }
        }
        self.history.push_back(token);
        *self.counts.entry(token).or_default() += 1;
    }

    fn reset(&mut self) {
        self.history.clear();
        self.counts.clear();
    }
}
