use super::{Candidates, Sampler, StepRecord, MIN_TEMPERATURE};
use crate::error::{check, Result};
use serde::{Deserialize, Serialize};

/// Dynamic temperature, llama.cpp's `temp_ext`: the temperature of each step is taken from
/// [temperature − range, temperature + range] (floored at 0) by the normalised entropy of the
/// kept candidates, raised to `exponent`: a confident step is cooled, an uncertain one heated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DynamicTemperatureConfig {
    /// How far the temperature may move from the base one, ≥ 0; 0 is plain temperature.
    pub range: f32,
    /// Shapes the map from entropy to temperature, ≥ 0; 1 is linear.
    pub exponent: f32,
}

#[derive(Debug, Clone)]
pub struct DynamicTemperature {
    min_temperature: f32,
    max_temperature: f32,
    exponent: f32,
    /// The temperature of the last step, for its record.
    used: Option<f32>,
}

impl DynamicTemperature {
    /// Only for `range > 0`: with 0, llama.cpp's `temp_ext` is plain temperature.
    pub fn new(temperature: f32, config: DynamicTemperatureConfig) -> Result<Self> {
        let DynamicTemperatureConfig { range, exponent } = config;
        check(range.is_finite() && range >= 0.0, "dynamicTemperature.range", "a finite number >= 0", range)?;
        check(exponent.is_finite() && exponent >= 0.0, "dynamicTemperature.exponent", "a finite number >= 0", exponent)?;
        Ok(Self {
            min_temperature: (temperature - range).max(0.0),
            max_temperature: temperature + range,
            exponent,
            used: None,
        })
    }

    /// The temperature for a step whose entropy is `fraction` of the most it could be.
    pub fn temperature_at(&self, fraction: f64) -> f32 {
        let spread = (self.max_temperature - self.min_temperature) as f64;
        (self.min_temperature as f64 + spread * fraction.powf(self.exponent as f64)) as f32
    }
}

impl Sampler for DynamicTemperature {
    fn name(&self) -> &'static str {
        "dynamicTemperature"
    }

    fn apply(&mut self, candidates: &mut Candidates) -> Result<()> {
        self.used = None;
        // One candidate has no entropy to normalise; llama.cpp leaves it as it is.
        if candidates.len() <= 1 {
            return Ok(());
        }
        let max_entropy = (candidates.len() as f64).ln();
        let temperature = self.temperature_at(candidates.entropy_nats() / max_entropy);
        if temperature >= MIN_TEMPERATURE {
            candidates.divide_temperature(temperature);
        } else {
            // A temperature of 0 keeps the most likely token, as llama.cpp's does. Below
            // MIN_TEMPERATURE the inverse scale could overflow to ∞; such a step is greedy anyway
            // unless two logits lie within about 1e-4 of each other.
            candidates.rank_head(1);
            candidates.keep_head(1);
        }
        self.used = Some(temperature);
        Ok(())
    }

    fn accept(&mut self, _token: u32, record: Option<&mut StepRecord>) {
        if let Some(record) = record {
            record.temperature = self.used;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(range: f32, exponent: f32) -> DynamicTemperatureConfig {
        DynamicTemperatureConfig { range, exponent }
    }

    #[test]
    fn a_flat_distribution_gets_the_top_temperature_and_a_peaked_one_less() {
        let mut sampler = DynamicTemperature::new(1.0, config(0.5, 1.0)).unwrap();
        let mut flat = Candidates::from_logits(&[0.0; 8]).unwrap();
        sampler.apply(&mut flat).unwrap();
        assert!((sampler.used.unwrap() - 1.5).abs() < 1e-6, "{:?}", sampler.used);
        assert!((flat.scale() - 1.0 / 1.5).abs() < 1e-6);
        let mut peaked = Candidates::from_logits(&[8.0, 0.0, 0.0, 0.0]).unwrap();
        sampler.apply(&mut peaked).unwrap();
        let used = sampler.used.unwrap();
        assert!((0.5..1.0).contains(&used), "{used}");
    }

    #[test]
    fn the_range_floors_at_zero_and_zero_means_greedy() {
        // A high exponent sends a low entropy to exactly 0.
        let mut sampler = DynamicTemperature::new(0.2, config(0.5, 100.0)).unwrap();
        assert_eq!(sampler.temperature_at(0.0), 0.0);
        let mut c = Candidates::from_logits(&[30.0, 0.0, 0.0]).unwrap();
        sampler.apply(&mut c).unwrap();
        assert_eq!(c.kept_ids(), Some(&[0u32][..]));
    }

    #[test]
    fn refuses_negative_or_non_finite_settings() {
        for (range, exponent, name) in [(-0.1, 1.0, "range"), (f32::NAN, 1.0, "range"), (0.5, -1.0, "exponent"), (0.5, f32::INFINITY, "exponent")] {
            let err = DynamicTemperature::new(1.0, config(range, exponent)).unwrap_err().to_string();
            assert!(err.starts_with(&format!("dynamicTemperature.{name} must be")), "{err}");
        }
    }
}
