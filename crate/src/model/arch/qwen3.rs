//! `qwen3`: Qwen2 without biases, with a per-head RMSNorm of Q and K before RoPE (its head_dim,
//! `qwen3.attention.key_length`, is not hidden / heads: the params read it for every arch).
use super::{Architecture, BASE};

pub const QWEN3: Architecture = Architecture { name: "qwen3", qk_norm: true, ..BASE };
