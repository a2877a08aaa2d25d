//! `llama`: Llama 1–3, TinyLlama, SmolLM2. The converter permutes Q/K rows for adjacent-pair
//! RoPE; Llama 3 files carry `rope_freqs`.
use super::{Architecture, RopeFactors, RopePairs, BASE};

pub const LLAMA: Architecture =
    Architecture { name: "llama", rope_pairs: RopePairs::Adjacent, rope_factors: RopeFactors::Freqs, ..BASE };
