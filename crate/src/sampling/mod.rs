//! The decoding core: each strategy is one short file behind the [`Sampler`] trait, and a
//! [`Chain`] runs them in an explicit order over one step's logits.

mod candidates;
mod chain;
mod config;
mod dry;
mod dry_breakers;
mod dynamic_temperature;
mod epsilon;
mod eta;
mod logit_bias;
mod min_p;
mod mirostat;
mod mirostat_v1;
mod mirostat_v2;
mod penalties;
pub(crate) mod record;
mod temperature;
mod top_k;
mod adaptive_p;
mod top_n_sigma;
mod top_p;
mod typical;
mod xtc;

pub(crate) use candidates::check_logits;
pub use candidates::{top_m, Candidates, Normalizer, Rank};
pub use chain::Chain;
pub use config::{SamplerConfig, Stage, MAX_TOP_ALTERNATIVES};
pub use dry::{Dry, DryConfig};
pub use dry_breakers::{BreakerVocab, RestartSequences};
pub use dynamic_temperature::{DynamicTemperature, DynamicTemperatureConfig};
pub use epsilon::Epsilon;
pub use eta::Eta;
pub use logit_bias::{LogitBias, TokenBias};
pub use min_p::MinP;
pub use mirostat::{MirostatConfig, TargetSurprise};
pub use mirostat_v1::{mirostat_k, zipf_exponent, MirostatV1};
pub use mirostat_v2::MirostatV2;
pub use penalties::{Penalties, PenaltyConfig};
pub use record::{Alternative, PerplexityMeter, StepRecord};
pub use temperature::{Temperature, MIN_TEMPERATURE};
pub use top_k::TopK;
pub use adaptive_p::{AdaptiveP, AdaptivePConfig};
pub use top_n_sigma::TopNSigma;
pub use top_p::TopP;
pub use typical::Typical;
pub use xtc::{Xtc, XtcConfig};

use crate::error::Result;

/// One step of a sampler chain, like a llama.cpp sampler object or an HF LogitsProcessor.
pub trait Sampler: Send + std::fmt::Debug {
    fn name(&self) -> &'static str;

    /// Narrows or rescales the candidates.
    fn apply(&mut self, candidates: &mut Candidates) -> Result<()>;

    /// The token that was chosen. `record` is `None` for tokens the chain did not sample
    /// (the prompt), which only feed histories.
    fn accept(&mut self, _token: u32, _record: Option<&mut StepRecord>) {}

    /// Forgets per-generation state.
    fn reset(&mut self) {}
}
