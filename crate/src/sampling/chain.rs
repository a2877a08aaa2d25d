use super::candidates::Candidates;
use super::config::{SamplerConfig, Stage};
use super::record::{describe_step, full_distribution, FullDistribution, PerplexityMeter, StepRecord};
use super::dry_breakers::{BreakerVocab, RestartSequences};
use super::{
    AdaptiveP, Dry, DryConfig, DynamicTemperature, Epsilon, Eta, LogitBias, MinP, MirostatV1, MirostatV2, Penalties, Sampler,
    Temperature, TopK, TopNSigma, TopP, Typical, Xtc,
};
use crate::error::{Error, Result};
use crate::math::exp_nonpositive;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// The sampler of one ordered stage, `None` when its setting is absent.
fn stage_sampler(config: &SamplerConfig, stage: Stage) -> Result<Option<Box<dyn Sampler>>> {
    fn boxed(sampler: impl Sampler + 'static) -> Option<Box<dyn Sampler>> {
        Some(Box::new(sampler))
    }
    Ok(match stage {
        Stage::Temperature => match config.dynamic_temperature {
            // llama.cpp's temp_ext with a range of 0 is plain temperature.
            Some(dynamic) if dynamic.range > 0.0 => boxed(DynamicTemperature::new(config.temperature, dynamic)?),
            _ => boxed(Temperature::new(config.temperature)?),
        },
        Stage::TopK => config.top_k.map(TopK::new).transpose()?.and_then(boxed),
        Stage::TopP => config.top_p.map(TopP::new).transpose()?.and_then(boxed),
        Stage::MinP => config.min_p.map(MinP::new).transpose()?.and_then(boxed),
        Stage::Typical => config.typical_p.map(Typical::new).transpose()?.and_then(boxed),
        Stage::TopNSigma => config.top_n_sigma.map(TopNSigma::new).transpose()?.and_then(boxed),
        Stage::Xtc => config.xtc.map(|xtc| Xtc::new(xtc, config.seed)).transpose()?.and_then(boxed),
        Stage::Epsilon => config.epsilon_cutoff.map(Epsilon::new).transpose()?.and_then(boxed),
        Stage::Eta => config.eta_cutoff.map(Eta::new).transpose()?.and_then(boxed),
    })
}

/// DRY's breakers as tokens. Without a tokenizer only an empty list can be honoured; refusing
/// the rest says so, where ignoring them would let repetitions run across a newline unnoticed.
fn dry_breakers(dry: &DryConfig, vocab: Option<&dyn BreakerVocab>) -> Result<RestartSequences> {
    match vocab {
        Some(vocab) => RestartSequences::from_breakers(&dry.sequence_breakers, vocab),
        None if dry.sequence_breakers.is_empty() => Ok(RestartSequences::default()),
        None => Err(Error::InvalidConfig(
            "dry.sequenceBreakers are text and this sampler has no tokenizer: set them to [] or sample through a model".into(),
        )),
    }
}

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
    /// A chain without a tokenizer: DRY's sequence breakers, which are text, must be empty.
    pub fn new(config: &SamplerConfig) -> Result<Self> {
        Self::with_vocab(config, None)
    }

    /// A chain whose DRY sequence breakers are tokenized with `vocab`.
    pub fn with_vocab(config: &SamplerConfig, vocab: Option<&dyn BreakerVocab>) -> Result<Self> {
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
        if let Some(dry) = &config.dry {
            samplers.push(Box::new(Dry::new(dry.clone(), dry_breakers(dry, vocab)?)?));
        }
        let temperature = Temperature::new(config.temperature)?;
        if let Some(mirostat) = &config.mirostat {
            samplers.push(Box::new(temperature));
            samplers.push(match mirostat.version {
                1 => Box::new(MirostatV1::new(mirostat)?),
                _ => Box::new(MirostatV2::new(mirostat)?),
            });
        } else {
            for &stage in &config.order {
                samplers.extend(stage_sampler(config, stage)?);
            }
            if let Some(adaptive) = config.adaptive_p {
                samplers.push(Box::new(AdaptiveP::new(adaptive)?));
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
        self.narrow(logits)?;
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

    /// What the chain would draw from for these logits: each kept token with its probability,
    /// renormalised over the kept set. The samplers run (XTC tosses its coin) but nothing is
    /// drawn or recorded.
    pub fn distribution(&mut self, logits: &[f32]) -> Result<Vec<(u32, f64)>> {
        self.narrow(logits)?;
        Ok(self.candidates.probabilities())
    }

    /// Runs every sampler over the step's logits.
    fn narrow(&mut self, logits: &[f32]) -> Result<()> {
        self.candidates.reset(logits)?;
        for sampler in &mut self.samplers {
            sampler.apply(&mut self.candidates)?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::XtcConfig;

    /// 40 tokens from a chain over fixed logits that keep several tokens likely.
    fn tokens(config: &SamplerConfig) -> Vec<u32> {
        let logits: Vec<f32> = (0..32).map(|i| ((i * 7) % 11) as f32 * 0.4).collect();
        let mut chain = Chain::new(config).unwrap();
        (0..40).map(|_| chain.sample(&logits).unwrap().token).collect()
    }

    #[test]
    fn xtc_keeps_a_seed_reproducible_and_leaves_the_draws_alone() {
        let plain = SamplerConfig { seed: 11, ..SamplerConfig::temperature(1.0) };
        let xtc = SamplerConfig { xtc: Some(XtcConfig { probability: 0.5, threshold: 0.05 }), ..plain.clone() };
        assert_eq!(tokens(&xtc), tokens(&xtc), "the same seed gives the same tokens");
        // XTC changes some steps (it fires on about half), but never shifts the draw's numbers:
        // where it did not fire, the token is the plain chain's.
        let (with, without) = (tokens(&xtc), tokens(&plain));
        let same = with.iter().zip(&without).filter(|(a, b)| a == b).count();
        assert!(same > 5 && same < 40, "{same} of 40 steps agree");
    }

    #[test]
    fn a_set_stage_missing_from_the_order_and_text_breakers_without_a_tokenizer_are_errors() {
        let config = SamplerConfig { epsilon_cutoff: Some(0.01), order: vec![Stage::Temperature], ..SamplerConfig::temperature(1.0) };
        let err = Chain::new(&config).unwrap_err().to_string();
        assert!(err.contains("Epsilon is set but missing from order"), "{err}");
        let config = SamplerConfig { dry: Some(DryConfig::default()), ..SamplerConfig::default() };
        let err = Chain::new(&config).unwrap_err().to_string();
        assert!(err.contains("dry.sequenceBreakers are text"), "{err}");
        let config = SamplerConfig { dry: Some(DryConfig { sequence_breakers: Vec::new(), ..DryConfig::default() }), ..config };
        assert_eq!(Chain::new(&config).unwrap().stages(), ["dry", "topK", "topP", "temperature"]);
    }
}
