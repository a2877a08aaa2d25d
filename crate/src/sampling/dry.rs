use super::dry_breakers::{RestartSequences, MAX_BREAKER_BYTES};
use super::{Candidates, Sampler, StepRecord};
use crate::error::{check, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// DRY, "don't repeat yourself" (koboldcpp's, as llama.cpp defines it): a token that would
/// extend a sequence already seen in the last `lastN` tokens, longer than `allowedLength`,
/// loses `multiplier · base^(length − allowedLength)` from its logit. A sequence breaker
/// (a newline, a colon, ...) ends a repetition: matches never reach across one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct DryConfig {
    /// The penalty's scale, ≥ 0; 0 is off.
    pub multiplier: f32,
    /// How fast the penalty grows with the length, ≥ 1.
    pub base: f32,
    /// Repetitions up to this long are free.
    pub allowed_length: usize,
    /// How many of the last tokens (prompt included) are searched; 0 is off.
    pub last_n: usize,
    /// Texts that end a repetition. They need a tokenizer: a bare sampler takes none.
    pub sequence_breakers: Vec<String>,
}

impl Default for DryConfig {
    /// llama.cpp's defaults, with the multiplier its documentation suggests (its default, 0, is off).
    fn default() -> Self {
        Self {
            multiplier: 0.8,
            base: 1.75,
            allowed_length: 2,
            last_n: 64,
            sequence_breakers: ["\n", ":", "\"", "*"].map(String::from).to_vec(),
        }
    }
}

impl DryConfig {
    pub fn validate(&self) -> Result<()> {
        let Self { multiplier, base, .. } = *self;
        check(multiplier.is_finite() && multiplier >= 0.0, "dry.multiplier", "a finite number >= 0", multiplier)?;
        check(base.is_finite() && base >= 1.0, "dry.base", "a finite number >= 1", base)?;
        check(self.allowed_length <= i32::MAX as usize, "dry.allowedLength", "at most 2^31 - 1", self.allowed_length)?;
        for breaker in &self.sequence_breakers {
            if breaker.is_empty() || breaker.len() > MAX_BREAKER_BYTES {
                return Err(Error::InvalidConfig(format!(
                    "dry.sequenceBreakers: {breaker:?} must be 1 to {MAX_BREAKER_BYTES} bytes long"
                )));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Dry {
    config: DryConfig,
    breakers: RestartSequences,
    /// The last `lastN` accepted tokens, oldest first.
    history: VecDeque<u32>,
    /// Tokens penalised at the last step, for its record.
    penalised: usize,
}

impl Dry {
    /// `breakers` are the config's sequence breakers as tokens ([`RestartSequences::from_breakers`]).
    pub fn new(config: DryConfig, breakers: RestartSequences) -> Result<Self> {
        config.validate()?;
        let history = VecDeque::with_capacity(config.last_n.min(1024));
        Ok(Self { config, breakers, history, penalised: 0 })
    }

    /// The `i`th token from the end of the history, 0 being the last.
    fn back(&self, i: usize) -> u32 {
        self.history[self.history.len() - 1 - i]
    }

    /// How far back a repetition may reach: up to the most recent complete breaker.
    fn repeat_limit(&self) -> usize {
        let n = self.history.len();
        for i in 0..n {
            let longest = self
                .breakers
                .tails(self.back(i))
                .iter()
                .filter(|tail| tail.len() <= i && tail.iter().enumerate().all(|(k, &t)| t == self.back(i - k - 1)))
                .map(Vec::len)
                .max();
            if let Some(longest) = longest {
                return i - longest;
            }
        }
        n
    }

    /// For each token that would continue a repetition of at least `allowedLength` tokens, the
    /// longest such repetition.
    fn repeats(&self, limit: usize) -> HashMap<u32, usize> {
        // z[k]: how many tokens the history's end shares with the history cut k tokens earlier
        // (the Z-function of the reversed history).
        let n = self.history.len();
        let mut z = vec![0usize; n];
        let (mut left, mut right) = (0, 0);
        for k in 1..n {
            let mut len = if k < right { z[k - left].min(right - k) } else { 0 };
            while k + len < n && self.back(len) == self.back(k + len) {
                len += 1;
            }
            z[k] = len;
            if k + len > right {
                (left, right) = (k, k + len);
            }
        }
        let mut longest = HashMap::new();
        for (k, &len) in z.iter().enumerate().skip(1) {
            let len = len.min(limit);
            if len >= self.config.allowed_length {
                // The token after the earlier copy is the one that would extend the repetition.
                let next = self.back(k - 1);
                let best = longest.entry(next).or_insert(len);
                *best = (*best).max(len);
            }
        }
        longest
    }
}

impl Sampler for Dry {
    fn name(&self) -> &'static str {
        "dry"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        self.penalised = 0;
        let DryConfig { multiplier, base, allowed_length, .. } = self.config;
        if multiplier == 0.0 || self.history.len() <= allowed_length {
            return Ok(());
        }
        let limit = self.repeat_limit();
        if limit < allowed_length {
            return Ok(());
        }
        // llama.cpp caps the exponent where base^exponent would overflow an f32.
        let max_exponent = if base > 1.000001 { (88.722_84f32 / base.ln()) as usize } else { usize::MAX };
        let vocab_size = candidates.vocab_size();
        let logits = candidates.logits_mut();
        for (token, length) in self.repeats(limit) {
            if self.breakers.breaks_alone(token) {
                continue;
            }
            let exponent = (length - allowed_length).min(max_exponent);
            let penalty = (multiplier as f64 * (base as f64).powf(exponent as f64)) as f32;
            *logits.get_mut(token as usize).ok_or(Error::TokenOutOfRange { token, vocab_size })? -= penalty;
            self.penalised += 1;
        }
        Ok(())
    }

    fn accept(&mut self, token: u32, record: Option<&mut StepRecord>) {
        if self.config.last_n == 0 {
            return;
        }
        if self.history.len() == self.config.last_n {
            self.history.pop_front();
        }
        self.history.push_back(token);
        if let Some(record) = record {
            record.dry_penalised = Some(self.penalised);
        }
    }

    fn reset(&mut self) {
        self.history.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DRY with multiplier 1 and base 2 over `history`, on logits of 0: what each token lost.
    fn penalties(history: &[u32], allowed_length: usize, breakers: &[Vec<u32>]) -> Vec<f32> {
        let config = DryConfig { multiplier: 1.0, base: 2.0, allowed_length, last_n: 64, sequence_breakers: Vec::new() };
        let mut dry = Dry::new(config, RestartSequences::from_token_sequences(breakers)).unwrap();
        history.iter().for_each(|&t| dry.accept(t, None));
        let mut c = Candidates::from_logits(&[0.0; 5]).unwrap();
        dry.apply(&mut c).unwrap();
        c.logits().iter().map(|x| -x).collect()
    }

    #[test]
    fn penalises_the_tokens_that_would_extend_a_repetition() {
        // llama.cpp's example, a b c c b c y a b c: emitting c would repeat "a b c" (3 tokens),
        // y "b c" (2) and b "c" (1); each costs 2^(length − allowed).
        let (a, b, c, y) = (0, 1, 2, 3);
        let history = [a, b, c, c, b, c, y, a, b, c];
        assert_eq!(penalties(&history, 1, &[]), [0.0, 1.0, 4.0, 2.0, 0.0]);
        assert_eq!(penalties(&history, 2, &[]), [0.0, 0.0, 2.0, 1.0, 0.0]);
        // y breaks alone: never penalised, and no repetition reaches across it (the last y is 3
        // tokens back, so "a b c" is still counted).
        assert_eq!(penalties(&history, 1, &[vec![y]]), [0.0, 1.0, 4.0, 0.0, 0.0]);
        // A breaker "b c" ending the history leaves nothing to repeat.
        assert_eq!(penalties(&history, 1, &[vec![b, c]]), [0.0; 5]);
    }

    #[test]
    fn refuses_bad_settings() {
        let bad = [
            DryConfig { multiplier: -1.0, ..DryConfig::default() },
            DryConfig { base: 0.5, ..DryConfig::default() },
            DryConfig { sequence_breakers: vec![String::new()], ..DryConfig::default() },
            DryConfig { sequence_breakers: vec!["x".repeat(41)], ..DryConfig::default() },
        ];
        for (config, expected) in bad.into_iter().zip(["dry.multiplier must be", "dry.base must be", "must be 1 to 40 bytes", "must be 1 to 40 bytes"]) {
            let err = Dry::new(config, RestartSequences::default()).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
