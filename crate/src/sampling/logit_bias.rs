use super::{Candidates, Sampler};
use crate::error::{check, Error, Result};
use serde::{Deserialize, Serialize};

/// A fixed amount added to one token's logit; `-Infinity` bans the token. JSON has no
/// infinity, so there the ban is written as the string `"-Infinity"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct TokenBias {
    pub token: u32,
    #[serde(with = "number_or_ban")]
    #[cfg_attr(target_arch = "wasm32", tsify(type = "number | \"-Infinity\""))]
    pub bias: f32,
}

mod number_or_ban {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    const BAN: &str = "-Infinity";

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Bias {
        Number(f32),
        Word(String),
    }

    pub fn serialize<S: Serializer>(bias: &f32, s: S) -> Result<S::Ok, S::Error> {
        if *bias == f32::NEG_INFINITY { s.serialize_str(BAN) } else { s.serialize_f32(*bias) }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        match Bias::deserialize(d)? {
            Bias::Number(bias) => Ok(bias),
            Bias::Word(word) if word == BAN => Ok(f32::NEG_INFINITY),
            Bias::Word(other) => Err(D::Error::custom(format!("bias must be a number or \"{BAN}\", got \"{other}\""))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LogitBias {
    biases: Vec<TokenBias>,
}

impl LogitBias {
    pub fn new(biases: Vec<TokenBias>) -> Result<Self> {
        for b in &biases {
            check(
                b.bias.is_finite() || b.bias == f32::NEG_INFINITY,
                "logitBias.bias",
                "a finite number or -Infinity",
                b.bias,
            )?;
        }
        Ok(Self { biases })
    }
}

impl Sampler for LogitBias {
    fn name(&self) -> &'static str {
        "logitBias"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        let vocab_size = candidates.vocab_size();
        let logits = candidates.logits_mut();
        for b in &self.biases {
            let logit = logits
                .get_mut(b.token as usize)
                .ok_or(Error::TokenOutOfRange { token: b.token, vocab_size })?;
            *logit += b.bias;
        }
        if self.biases.iter().any(|b| b.bias == f32::NEG_INFINITY) {
            if candidates.max_logit() == f32::NEG_INFINITY {
                return Err(Error::AllTokensBanned);
            }
            // Banned tokens leave the kept set, so that the reported count is honest.
            candidates.keep_logits_at_least(f32::MIN);
        }
        Ok(())
    }
}
