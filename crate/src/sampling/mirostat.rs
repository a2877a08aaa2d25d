//! What Mirostat v1 and v2 share (Basu et al., ICLR 2021): a target surprise τ in bits and a
//! learning rate η steering the truncation level μ.

use super::StepRecord;
use crate::error::{check, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct MirostatConfig {
    /// 1 (Zipf estimate, adaptive top-k) or 2 (surprise threshold).
    pub version: u8,
    /// Target surprise in bits.
    pub tau: f32,
    pub eta: f32,
}

impl Default for MirostatConfig {
    /// τ = 5 and η = 0.1, as llama.cpp ships them.
    fn default() -> Self {
        Self { version: 2, tau: 5.0, eta: 0.1 }
    }
}

/// The feedback loop: μ starts at 2τ and after each token moves by −η·(surprise − τ).
///
/// Deliberate choice, as in the paper's reference code (and unlike llama.cpp): the surprise fed
/// back is that of the full temperature-applied distribution, not of the truncated and
/// renormalised one, so that the observed cross-entropy is what converges to τ.
#[derive(Debug, Clone)]
pub struct TargetSurprise {
    tau: f32,
    eta: f32,
    pub mu: f32,
}

impl TargetSurprise {
    pub fn new(config: &MirostatConfig) -> Result<Self> {
        let MirostatConfig { tau, eta, .. } = *config;
        check(tau.is_finite() && tau > 0.0, "mirostat.tau", "a number > 0", tau)?;
        check(eta.is_finite() && eta > 0.0, "mirostat.eta", "a number > 0", eta)?;
        Ok(Self { tau, eta, mu: 2.0 * tau })
    }

    /// Reports the μ this step used, then updates it.
    pub fn accept(&mut self, record: Option<&mut StepRecord>) {
        if let Some(record) = record {
            record.mu = Some(self.mu);
            self.mu -= self.eta * (record.surprise_bits - self.tau);
        }
    }

    pub fn reset(&mut self) {
        self.mu = 2.0 * self.tau;
    }
}
