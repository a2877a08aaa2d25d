//! The decoder's layer loop, written once for every architecture and both backends: the tract
//! graph and the WebGPU dispatches each implement [`Builder`], and [`build`] drives it over a
//! model's weights. What differs between architectures is only which optional steps run.

use super::params::LayerRope;
use super::Activation;
use crate::model::weights::{Matrix, ModelWeights};

/// A matrix's place in a block (its tensor name, and where a backend keeps its output).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Role {
    Q,
    K,
    V,
    AttnOut,
    Gate,
    Up,
    Down,
}

impl Role {
    pub fn tensor(self) -> &'static str {
        match self {
            Role::Q => "attn_q",
            Role::K => "attn_k",
            Role::V => "attn_v",
            Role::AttnOut => "attn_output",
            Role::Gate => "ffn_gate",
            Role::Up => "ffn_up",
            Role::Down => "ffn_down",
        }
    }
}

/// A norm's place: its tensor name (per layer, or `output_norm`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NormRole {
    Attn,
    /// Per head, over `head_dim` values (Q's or K's).
    QHead,
    KHead,
    PostAttn,
    Ffn,
    PostFfn,
    Output,
}

impl NormRole {
    pub fn tensor(self, layer: usize) -> String {
        let name = match self {
            NormRole::Output => return "output_norm.weight".into(),
            NormRole::Attn => "attn_norm",
            NormRole::QHead => "attn_q_norm",
            NormRole::KHead => "attn_k_norm",
            NormRole::PostAttn => "post_attention_norm",
            NormRole::Ffn => "ffn_norm",
            NormRole::PostFfn => "post_ffw_norm",
        };
        format!("blk.{layer}.{name}.weight")
    }
}

/// The operations a backend provides. Values are `[tokens × width]` activations.
pub trait Builder {
    type Value: Clone;
    /// `x · by`.
    fn scale(&mut self, x: Self::Value, by: f32) -> Self::Value;
    /// RMSNorm over each row (or over each head's `head_dim` values, for the head roles).
    fn norm(&mut self, x: &Self::Value, layer: usize, role: NormRole, weight: &[f32]) -> Self::Value;
    /// `x · Wᵀ (+ bias)`.
    fn project(&mut self, x: &Self::Value, layer: usize, role: Role, w: &Matrix, bias: Option<&[f32]>) -> Self::Value;
    /// RoPE on Q and K, the KV cache, causal (and, in local layers, sliding-window) attention.
    fn attention(&mut self, layer: usize, q: Self::Value, k: Self::Value, v: Self::Value) -> Self::Value;
    /// `act(gate) · up`.
    fn gated(&mut self, gate: Self::Value, up: Self::Value, act: Activation) -> Self::Value;
    /// `x + branch`.
    fn residual(&mut self, x: Self::Value, branch: Self::Value) -> Self::Value;
}

/// The whole decoder over `input` (the embeddings): returns the final norm's output, which the
/// backend projects to logits itself (only the rows it needs).
pub fn build<B: Builder>(b: &mut B, w: &ModelWeights, input: B::Value) -> B::Value {
    let p = &w.params;
    let mut x = input;
    if p.arch.scale_embeddings {
        x = b.scale(x, (p.hidden_size as f32).sqrt());
    }
    for (i, l) in w.layers.iter().enumerate() {
        let h = b.norm(&x, i, NormRole::Attn, &l.attn_norm);
        let mut q = b.project(&h, i, Role::Q, &l.q, l.q_bias.as_deref());
        let mut k = b.project(&h, i, Role::K, &l.k, l.k_bias.as_deref());
        let v = b.project(&h, i, Role::V, &l.v, l.v_bias.as_deref());
        if let Some([q_norm, k_norm]) = &l.qk_norms {
            q = b.norm(&q, i, NormRole::QHead, q_norm);
            k = b.norm(&k, i, NormRole::KHead, k_norm);
        }
        let attended = b.attention(i, q, k, v);
        let mut out = b.project(&attended, i, Role::AttnOut, &l.o, None);
        if let Some([post_attn, _]) = &l.post_norms {
            out = b.norm(&out, i, NormRole::PostAttn, post_attn);
        }
        x = b.residual(x, out);

        let h = b.norm(&x, i, NormRole::Ffn, &l.ffn_norm);
        let gate = b.project(&h, i, Role::Gate, &l.gate, None);
        let up = b.project(&h, i, Role::Up, &l.up, None);
        let act = b.gated(gate, up, p.arch.activation);
        let mut out = b.project(&act, i, Role::Down, &l.down, None);
        if let Some([_, post_ffn]) = &l.post_norms {
            out = b.norm(&out, i, NormRole::PostFfn, post_ffn);
        }
        x = b.residual(x, out);
    }
    b.norm(&x, p.num_layers, NormRole::Output, &w.output_norm)
}

/// RoPE's inverse frequencies of one layer, `freq_scale · base^(−2i/head_dim) / factor_i`, as
/// llama.cpp's rope computes its angles. libm's pow in f64, so that the tables do not depend on
/// the platform.
pub fn inverse_frequencies(rope: &LayerRope, head_dim: usize, factors: Option<&[f32]>) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| {
            let f = rope.freq_scale as f64 / libm::pow(rope.base as f64, (2 * i) as f64 / head_dim as f64);
            (f / factors.map_or(1.0, |ff| ff[i] as f64)) as f32
        })
        .collect()
}

/// llama.cpp's final soft-cap, `cap · tanh(logits / cap)`, in place.
pub fn soft_cap(cap: Option<f32>, logits: &mut [f32]) {
    if let Some(cap) = cap {
        logits.iter_mut().for_each(|z| *z = cap * (*z / cap).tanh());
    }
}
