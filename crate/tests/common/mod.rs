//! Shared by the native and the wasm tests: deterministic synthetic logits and the fixtures of
//! token ids that both platforms must reproduce exactly.
#![allow(dead_code)]

pub mod archs;
pub mod failing;
#[cfg(not(target_arch = "wasm32"))]
pub mod smollm2;
pub mod tiny;
pub mod tokenizers;

use rand_chacha::ChaCha8Rng;
#[cfg(not(target_arch = "wasm32"))]
use std::path::PathBuf;
use rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

pub const FIXTURE_JSON: &str = include_str!("../fixtures/sampler_ids.json");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixtureCase {
    pub name: String,
    pub vocab: usize,
    pub logits_seed: u64,
    pub steps: usize,
    /// A SamplerConfig as JS would pass it.
    pub config: serde_json::Value,
    pub tokens: Vec<u32>,
}

pub fn fixture_cases() -> Vec<FixtureCase> {
    serde_json::from_str(FIXTURE_JSON).expect("fixtures/sampler_ids.json parses")
}

/// Zipf-shaped logits with Gumbel noise, a different permutation per step. Built from a
/// ChaCha stream and pure-Rust libm, so every platform gets the same bits.
pub fn synthetic_logits(vocab: usize, seed: u64, step: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(step as u64));
    let offset = (rng.next_u64() % vocab as u64) as usize;
    (0..vocab)
        .map(|i| {
            let rank = (i * 7919 + offset) % vocab;
            let u = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            let gumbel = -libm::log(-libm::log(u));
            (-1.1 * libm::log(1.0 + rank as f64) + 0.4 * gumbel) as f32
        })
        .collect()
}

/// A JSON array of token ids.
pub fn json_ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().expect("an array of ids").iter().map(|x| x.as_u64().expect("an id") as u32).collect()
}

/// The index of the largest logit.
pub fn argmax(v: &[f32]) -> u32 {
    (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).expect("non-empty") as u32
}

/// −log p(`target`) under one row of logits, in f64.
pub fn nll(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    (sum.ln() + max) - logits[target as usize] as f64
}

/// Teacher-forced perplexity of `ids` from the logits at every position (rows of `vocab`): row i
/// predicts `ids[i + 1]`.
pub fn perplexity(logits: &[f32], ids: &[u32], vocab: usize) -> f64 {
    let total: f64 = ids[1..].iter().enumerate().map(|(i, &target)| nll(&logits[i * vocab..][..vocab], target)).sum();
    (total / (ids.len() - 1) as f64).exp()
}

/// The greedy ids after `prompt`: one prefill, then one cached step per token.
#[cfg(not(target_arch = "wasm32"))]
pub fn greedy(model: &mut impl decoding_playground::LanguageModel, prompt: &[u32], n: usize) -> Vec<u32> {
    use pollster::block_on;
    let mut ids = vec![argmax(&block_on(model.prefill(prompt)).unwrap())];
    while ids.len() < n {
        ids.push(argmax(&block_on(model.step_token(*ids.last().unwrap())).unwrap()));
    }
    ids
}

/// How two backends' logits (rows of `vocab`) agree: the largest |a − b|, and at how many rows
/// the 10 most probable tokens are the same set.
pub fn logit_agreement(a: &[f32], b: &[f32], vocab: usize) -> (f32, usize) {
    assert_eq!(a.len(), b.len());
    let top10 = |row: &[f32]| {
        let mut ids: Vec<usize> = (0..row.len()).collect();
        ids.select_nth_unstable_by(10.min(row.len() - 1), |&x, &y| row[y].total_cmp(&row[x]));
        ids.truncate(10);
        ids.sort_unstable();
        ids
    };
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    let same = a.chunks_exact(vocab).zip(b.chunks_exact(vocab)).filter(|(x, y)| top10(x) == top10(y)).count();
    (diff, same)
}

/// A memory figure of this process from /proc/self/status (`VmRSS`: resident now, `VmHWM`: the
/// peak), in bytes; `None` where the kernel does not report it.
#[cfg(not(target_arch = "wasm32"))]
pub fn process_memory(field: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    kb.split_whitespace().next()?.parse::<usize>().ok().map(|kb| kb * 1024)
}

/// A file that models/build.sh makes (git-ignored), or `None`, after saying why, when it is
/// missing and may be: the full test run (scripts/test.sh sets DECODING_PLAYGROUND_REQUIRE_MODELS)
/// and CI require it, so a test there cannot pass by skipping.
#[cfg(not(target_arch = "wasm32"))]
pub fn built_file(path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let required = std::env::var_os("DECODING_PLAYGROUND_REQUIRE_MODELS").is_some() || std::env::var("CI").as_deref() == Ok("true");
    assert!(!required, "{} is missing and required here: run models/build.sh first", path.display());
    println!("SKIPPED: {} is missing (build it with models/build.sh)", path.display());
    None
}
