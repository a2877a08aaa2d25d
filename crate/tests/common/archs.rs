//! The tiny GGUF of every architecture (`models/tiny_archs.py`, F32 weights) with llama.cpp's
//! logits at every position on the same file, and the check against them (issue 22's goal:
//! max |Δ logit| ≤ 1e-3 × the logits' range, the same top-1 token at every position).

use serde_json::Value;

use super::{argmax, json_ids, nll};

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../../../models/tiny/archs/", $name, ".gguf")) as &[u8],
            include_str!(concat!("../../../models/tiny/archs/", $name, ".json")),
        )
    };
}

pub const FIXTURES: [(&str, &[u8], &str); 6] =
    [fixture!("llama3"), fixture!("qwen2"), fixture!("qwen3"), fixture!("gemma3"), fixture!("phi3"), fixture!("phi3-longrope")];

/// The context llama.cpp ran with (n_ctx 64, which it rounds up to 256): it chooses LongRoPE's
/// short factors, and so must the engine.
pub const CONTEXT: usize = 256;

pub struct Reference {
    pub ids: Vec<u32>,
    pub logits: Vec<f32>,
    pub vocab: usize,
    pub range: f32,
}

impl Reference {
    pub fn parse(json: &str) -> Self {
        let v: Value = serde_json::from_str(json).unwrap();
        let logits: Vec<f32> = v["logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let range = logits.iter().fold(f32::MIN, |a, &b| a.max(b)) - logits.iter().fold(f32::MAX, |a, &b| a.min(b));
        Reference { ids: json_ids(&v["ids"]), logits, vocab: v["vocab_size"].as_u64().unwrap() as usize, range }
    }

    /// `ln p(ids[i] | ids[..i])` for i ≥ 1, from llama.cpp's logits.
    pub fn log_probs(&self) -> Vec<f64> {
        let rows = self.logits.chunks_exact(self.vocab);
        rows.zip(&self.ids[1..]).map(|(row, &id)| -nll(row, id)).collect()
    }

    /// Checks `got` (every position's logits) against llama.cpp's and prints the figures.
    pub fn check(&self, name: &str, backend: &str, got: &[f32]) {
        assert_eq!(got.len(), self.logits.len(), "{name} on {backend}: one row of logits per position");
        let diff = got.iter().zip(&self.logits).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        let rows = || got.chunks_exact(self.vocab).zip(self.logits.chunks_exact(self.vocab));
        let top1 = rows().filter(|(a, b)| argmax(a) == argmax(b)).count();
        let relative = diff / self.range;
        println!(
            "{name:14} {backend:7} max |Δ logit| {diff:.2e} = {relative:.1e} × range {:.2} (goal ≤ 1e-3); top-1 {top1}/{} (goal all)",
            self.range,
            self.ids.len()
        );
        assert!(relative <= 1e-3, "{name} on {backend}: max |Δ| {diff} is {relative:e} of the range");
        assert_eq!(top1, self.ids.len(), "{name} on {backend}: top-1 differs from llama.cpp's");
    }
}
