//! `gemma3`: embeddings scaled by √hidden, per-head Q/K norms, norms after attention and the
//! feed-forward as well as before, a GELU-tanh gate, and a sliding window on five layers of
//! every six (`gemma3.cpp`: `load_swa_pattern(ml, 6)`) whose RoPE base defaults to 10000.
//! The converter stores every norm weight with its +1 added, so the norms are plain RMSNorms.
use super::{Activation, Architecture, SlidingWindow, BASE};

pub const GEMMA3: Architecture = Architecture {
    name: "gemma3",
    qk_norm: true,
    post_norms: true,
    activation: Activation::GeluTanh,
    scale_embeddings: true,
    sliding_window: Some(SlidingWindow { period: 6, local_rope_base: 10000.0 }),
    final_softcap: true,
    ..BASE
};
