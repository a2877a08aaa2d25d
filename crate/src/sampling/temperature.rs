use super::{Candidates, Sampler};
use crate::error::{check, Result};

/// Divides the logits by the temperature. Temperature 0 means greedy: only the most likely
/// token stays.
#[derive(Debug, Clone)]
pub struct Temperature {
    temperature: f32,
}

/// Below this a positive temperature overflows the inverse scale; use 0 for greedy instead.
pub const MIN_TEMPERATURE: f32 = 1e-4;

impl Temperature {
    pub fn new(temperature: f32) -> Result<Self> {
        check(
            temperature == 0.0 || (temperature.is_finite() && temperature >= MIN_TEMPERATURE),
            "temperature",
            "0 (greedy) or a finite number >= 0.0001",
            temperature,
        )?;
        Ok(Self { temperature })
    }
}

impl Sampler for Temperature {
    fn name(&self) -> &'static str {
        if self.temperature == 0.0 { "greedy" } else { "temperature" }
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        if self.temperature == 0.0 {
            candidates.rank_head(1);
            candidates.keep_head(1);
        } else {
            candidates.divide_temperature(self.temperature);
        }
        Ok(())
    }
}
