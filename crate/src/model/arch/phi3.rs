//! `phi3`: Phi-3 and Phi-3.5 mini. Fused `attn_qkv` (any architecture may fuse it) and a fused
//! `ffn_up` holding gate then up; LongRoPE factors in the 128k variants. llama.cpp ignores its
//! `sliding_window` key (`phi3.cpp`), and so does this crate.
use super::{Architecture, RopeFactors, BASE};

pub const PHI3: Architecture =
    Architecture { name: "phi3", rope_factors: RopeFactors::ShortLong, fused_gate_up: true, ..BASE };
