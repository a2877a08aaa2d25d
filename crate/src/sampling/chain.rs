use super::candidates::Candidates;
use super::config::{SamplerConfig, Stage};
use super::record::{describe_step, full_distribution, FullDistribution, PerplexityMeter, StepRecord};
use super::{
    LogitBias, MinP, MirostatV1, MirostatV2, Penalties, Sampler, Temperature, TopK, TopP, Typical,
};
use crate::error::Result;
use crate::math::exp_nonpositive;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// An ordered list of samplers, the state of one generation (RNG, penalty history, Mirostat's
/// μ, running perplexity) and the buffers reused from step to step.
#[derive(Debug)]
pub struct Chain {
    samplers: Vec<Box<dyn Sampler>>,
    seed: u64,
    rng: ChaCha8Rng,
    top_alternatives: usize,
    meter: PerplexityMeter,
    candidates: Candidates,
    weights: Vec<f32>,
    scratch: Vec<u32>,
}

impl Chain {
    pub fn new(config: &SamplerConfig) -> Result<Self> {
        config.validate_shape()?;
        let mut samplers: Vec<Box<dyn Sampler>> = Vec::new();
        if !config.logit_bias.is_empty() {
            samplers.push(Box::new(LogitBias::new(config.logit_bias.clone())?));
        }
        // Built even when inactive so that its parameters are still validated.
        let penalties = Penalties::new(config.penalties)?;
        if config.penalties.is_active() {
            samplers.push(Box::new(penalties));
        }
        let temperature = Temperature::new(config.temperature)?;
        if let Some(mirostat) = &config.mirostat {
            samplers.push(Box::new(temperature));
            samplers.push(match mirostat.version {
                1 => Box::new(MirostatV1::new(mirostat)?),
                _ => Box::new(MirostatV2::new(mirostat)?),
            });
        } else {
            for stage in &config.order {
                let sampler: Box<dyn Sampler> = match stage {
                    Stage::Temperature => Box::new(temperature.clone()),
                    Stage::TopK => match config.top_k {
                        Some(k) => Box::new(TopK::new(k)?),
                        None => continue,
                    },
                    Stage::TopP => match config.top_p {
                        Some(p) => Box::new(TopP::new(p)?),
                        None => continue,
                    },
                    Stage::MinP => match config.min_p {
                        Some(p) => Box::new(MinP::new(p)?),
                        None => continue,
                    },
                    Stage::Typical => match config.typical_p {
                        Some(p) => Box::new(Typical::new(p)?),
                        None => continue,
                    },
                };
                samplers.push(sampler);
            }
        }
        Ok(Self {
            samplers,
            seed: config.seed,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            top_alternatives: config.top_alternatives,
            meter: PerplexityMeter::default(),
            candidates: Candidates::default(),
            weights: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// The names of the samplers in the order they run.
    pub fn stages(&self) -> Vec<&'static str> {
        self.samplers.iter().map(|s| s.name()).collect()
    }

    /// Picks the next token from one step's logits and records what the step saw.
    pub fn sample(&mut self, logits: &[f32]) -> Result<StepRecord> {
        self.candidates.reset(logits)?;
        for sampler in &mut self.samplers {
            sampler.apply(&mut self.candidates)?;
        }
        let full = full_distribution(self.candidates.logits(), self.candidates.scale(), &mut self.weights);
        let token = self.draw(&full);
        let mut record = describe_step(
            self.candidates.logits(),
            &full,
            token,
            self.candidates.len(),
            self.top_alternatives,
            &mut self.scratch,
        );
        self.meter.add(record.surprise_bits);
        record.perplexity = self.meter.perplexity() as f32;
        for sampler in &mut self.samplers {
            sampler.accept(token, Some(&mut record));
        }
        Ok(record)
    }

    /// Tells the chain about a token it did not choose (the prompt), for the penalties.
    pub fn accept(&mut self, token: u32) {
        for sampler in &mut self.samplers {
            sampler.accept(token, None);
        }
    }

    /// Starts a new generation: same seed, fresh μ, history and perplexity.
    pub fn reset(&mut self) {
        self.rng = ChaCha8Rng::seed_from_u64(self.seed);
        self.meter = PerplexityMeter::default();
        for sampler in &mut self.samplers {
            sampler.reset();
        }
    }

    pub fn perplexity(&self) -> &PerplexityMeter {
        &self.meter
    }

    /// Inverse-CDF draw from the kept tokens, renormalised. Always consumes exactly one
    /// uniform number.
    fn draw(&mut self, full: &FullDistribution) -> u32 {
        // 53 random bits give a uniform f64 in [0, 1), the same on every platform.
        let u = (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let c = &self.candidates;
        let total = match c.kept_ids() {
            // Nothing was truncated: `weights` already holds the full distribution's.
            None => full.z,
            Some(ids) => {
                let (max, scale) = (c.max_logit(), c.scale());
                self.weights.clear();
                self.weights.extend(ids.iter().map(|&id| exp_nonpositive(scale * (c.logit(id) - max))));
                self.weights.iter().map(|&w| w as f64).sum()
            }
        };
        let target = u * total;
        let mut cumulative = 0.0f64;
        let mut chosen = None;
        let mut last_positive = 0;
        for (i, &w) in self.weights.iter().enumerate() {
            if w > 0.0 {
                last_positive = i;
                cumulative += w as f64;
                if cumulative > target {
                    chosen = Some(i);
                    break;
                }
            }
        }
        let index = chosen.unwrap_or(last_positive);
        match c.kept_ids() {
            Some(ids) => ids[index],
            None => index as u32,
        }
    }
}
