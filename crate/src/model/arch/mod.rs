//! What each decoder architecture is, in one small file per architecture: the facts that set it
//! apart from `llama` (RoPE layout, norms, activation, scalings, sliding window). Everything else
//! is shared and written once:
//! - [`params`] reads the `{arch}.*` metadata keys and lists the tensors a file must hold;
//! - [`decoder`] is the layer loop, written against a [`decoder::Builder`] that the tract graph
//!   and the WebGPU dispatches both implement.
//!
//! The facts are llama.cpp's (`src/models/<arch>.cpp`, `llama-model.cpp`), since llama.cpp
//! defines what a GGUF of each architecture means.

pub mod decoder;
pub mod params;

mod gemma3;
mod llama;
mod phi3;
mod qwen2;
mod qwen3;

pub use llama::llama_permutation;

use crate::error::{Error, Result};

/// One architecture's departures from a plain pre-norm, SiLU-gated, RoPE decoder.
#[derive(Debug, PartialEq)]
pub struct Architecture {
    /// `general.architecture`, and the prefix of its metadata keys.
    pub name: &'static str,
    /// Which head dimensions RoPE rotates together in the file's Q/K rows.
    pub rope_pairs: RopePairs,
    /// Which RoPE frequency-factor tensors the file may hold.
    pub rope_factors: RopeFactors,
    /// Per-head RMSNorm of Q and K before RoPE (`attn_q_norm`, `attn_k_norm`).
    pub qk_norm: bool,
    /// RMSNorm of each block's attention and feed-forward outputs before the residual add
    /// (`post_attention_norm`, `post_ffw_norm`).
    pub post_norms: bool,
    /// The feed-forward gate's activation.
    pub activation: Activation,
    /// The embeddings are scaled by √hidden before the first layer.
    pub scale_embeddings: bool,
    /// `gate|up` fused in one `ffn_up` tensor (gate first), with no `ffn_gate`.
    pub fused_gate_up: bool,
    /// The sliding-window layout when the file sets `{arch}.attention.sliding_window`: the
    /// default period of the layer pattern (each period's last layer is global), and the RoPE
    /// base of the local layers when `{arch}.rope.freq_base_swa` is absent. `None`: the key is
    /// ignored, as llama.cpp ignores it for phi3.
    pub sliding_window: Option<SlidingWindow>,
    /// Reads `{arch}.final_logit_softcapping`.
    pub final_softcap: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopePairs {
    /// llama.cpp's converter permutes `llama` Q/K rows so that RoPE rotates adjacent pairs
    /// (`GGML_ROPE_TYPE_NORMAL`); the loader puts them back in half-split order.
    Adjacent,
    /// Dimension i turns with i + head_dim/2 (`GGML_ROPE_TYPE_NEOX`), the layout the kernels use.
    Halves,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeFactors {
    None,
    /// `rope_freqs` (Llama 3's scaling, written by the converter as per-frequency divisors).
    Freqs,
    /// `rope_factors_short`/`rope_factors_long` (Phi-3's LongRoPE), chosen by context length.
    ShortLong,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Silu,
    /// ggml's GELU, the tanh form.
    GeluTanh,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlidingWindow {
    pub period: usize,
    pub local_rope_base: f32,
}

/// The plain decoder every architecture here departs from.
const BASE: Architecture = Architecture {
    name: "",
    rope_pairs: RopePairs::Halves,
    rope_factors: RopeFactors::None,
    qk_norm: false,
    post_norms: false,
    activation: Activation::Silu,
    scale_embeddings: false,
    fused_gate_up: false,
    sliding_window: None,
    final_softcap: false,
};

/// Every architecture this crate runs.
pub const ARCHITECTURES: [&Architecture; 5] =
    [&llama::LLAMA, &qwen2::QWEN2, &qwen3::QWEN3, &gemma3::GEMMA3, &phi3::PHI3];

impl Architecture {
    /// The architecture a GGUF's `general.architecture` names.
    pub fn named(name: &str) -> Result<&'static Architecture> {
        ARCHITECTURES.iter().copied().find(|a| a.name == name).ok_or_else(|| {
            let known: Vec<_> = ARCHITECTURES.iter().map(|a| a.name).collect();
            Error::Model(format!("architecture `{name}` is not supported (supported: {})", known.join(", ")))
        })
    }

    /// `{arch}.{key}`.
    pub fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.name)
    }
}
