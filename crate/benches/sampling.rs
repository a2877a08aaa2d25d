//! Sampler speed over V = 49152 logits (SmolLM2's vocabulary), against two baselines measured
//! in the same run: one plain softmax pass (the floor) and a naive full-sort implementation of
//! the default chain. Prints the ratios after criterion's own report.
//!
//!     cargo bench --bench sampling

mod common;

use common::mean_ns;
use criterion::{BenchmarkId, Criterion};
use decoding_playground::math::{exp_nonpositive, exp_weights, max_value};
use decoding_playground::sampling::{Chain, SamplerConfig};
use std::hint::black_box;

const VOCAB: usize = 49152;

/// Deterministic uniform numbers in (0, 1) without another dependency.
fn uniforms(seed: u64) -> impl FnMut() -> f64 {
    let mut bits = common::splitmix(seed);
    move || (bits() >> 11) as f64 / (1u64 << 53) as f64 + 1e-17
}

/// Zipf-like logits (exponent 1.1 in rank) with Gumbel noise, ranks scattered over the ids.
fn zipf_logits() -> Vec<f32> {
    let mut u = uniforms(7);
    (0..VOCAB)
        .map(|i| {
            let rank = (i * 7919) % VOCAB;
            (-1.1 * ((1 + rank) as f64).ln() - 0.4 * (-u().ln()).ln()) as f32
        })
        .collect()
}

/// SmolLM2-135M's real next-token logits after "Once upon a time, there was a little"
/// (written by models/dump_logits.py).
fn smollm2_logits() -> Vec<f32> {
    include_bytes!("data/smollm2_logits.f32")
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// One textbook softmax writing every probability: the floor any sampler pays.
fn softmax(logits: &[f32], probs: &mut Vec<f32>) {
    let (z, _) = exp_weights(logits, 1.0, max_value(logits), probs);
    let inv = (1.0 / z) as f32;
    probs.iter_mut().for_each(|p| *p *= inv);
}

/// The default chain done the obvious way: full softmax, full sort, cut, renormalise.
fn naive_default_chain(logits: &[f32], u: f64, probs: &mut Vec<f32>, order: &mut Vec<u32>) -> (u32, f32, Vec<u32>) {
    softmax(logits, probs);
    let entropy: f32 = probs.iter().filter(|&&p| p > 0.0).map(|&p| -p * p.log2()).sum();
    order.clear();
    order.extend(0..logits.len() as u32);
    order.sort_by(|&a, &b| probs[b as usize].total_cmp(&probs[a as usize]));
    let top_k = &order[..40];
    let mass: f32 = top_k.iter().map(|&t| probs[t as usize]).sum();
    let mut cumulative = 0.0;
    let nucleus = 1 + top_k.iter().position(|&t| {
        cumulative += probs[t as usize] / mass;
        cumulative >= 0.95
    }).unwrap_or(39);
    let max = logits[top_k[0] as usize];
    let weights: Vec<f32> = top_k[..nucleus].iter().map(|&t| exp_nonpositive((logits[t as usize] - max) / 0.8)).collect();
    let target = u as f32 * weights.iter().sum::<f32>();
    let mut acc = 0.0;
    let pick = weights.iter().position(|&w| { acc += w; acc > target }).unwrap_or(nucleus - 1);
    (top_k[pick], entropy, order[..10].to_vec())
}

fn strategies() -> Vec<(&'static str, SamplerConfig)> {
    let only = |f: fn(&mut SamplerConfig)| {
        let mut c = SamplerConfig::temperature(1.0);
        f(&mut c);
        c
    };
    vec![
        ("default_chain", SamplerConfig::default()),
        ("greedy", SamplerConfig::greedy()),
        ("temperature", SamplerConfig::temperature(0.8)),
        ("top_k_40", only(|c| c.top_k = Some(40))),
        ("top_p_0.95", only(|c| c.top_p = Some(0.95))),
        ("min_p_0.05", only(|c| c.min_p = Some(0.05))),
        ("typical_0.95", only(|c| c.typical_p = Some(0.95))),
        ("mirostat_v1", SamplerConfig::mirostat(1, 5.0, 0.1)),
        ("mirostat_v2", SamplerConfig::mirostat(2, 5.0, 0.1)),
    ]
}

fn bench(c: &mut Criterion, shape: &str, logits: &[f32]) {
    let mut group = c.benchmark_group(format!("sampling_{shape}"));
    let mut probs = Vec::with_capacity(VOCAB);
    group.bench_function("softmax_floor", |b| b.iter(|| softmax(black_box(logits), &mut probs)));
    let mut order = Vec::with_capacity(VOCAB);
    let mut u = uniforms(3);
    group.bench_function("naive_full_sort_chain", |b| {
        b.iter(|| naive_default_chain(black_box(logits), u(), &mut probs, &mut order))
    });
    for (name, config) in strategies() {
        let mut chain = Chain::new(&config).unwrap();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| chain.sample(black_box(logits)).unwrap())
        });
    }
    group.finish();
}

fn main() {
    let mut c = common::criterion();
    let shapes = [("zipf", zipf_logits()), ("smollm2", smollm2_logits())];
    for (shape, logits) in &shapes {
        bench(&mut c, shape, logits);
    }
    c.final_summary();

    println!("\nSampler cost per step, V = {VOCAB} (mean of criterion's samples, same run)");
    println!("{:<24} {:>10} {:>12} {:>12}  {:>10} {:>12} {:>12}", "strategy", "zipf µs", "÷ softmax", "naive ÷ it", "smollm2 µs", "÷ softmax", "naive ÷ it");
    let rows: Vec<&str> = ["softmax_floor", "naive_full_sort_chain"].into_iter()
        .chain(strategies().iter().map(|(n, _)| *n)).collect();
    for name in rows {
        print!("{name:<24}");
        for (shape, _) in &shapes {
            let group = format!("sampling_{shape}");
            let t = mean_ns(&group, name);
            let floor = mean_ns(&group, "softmax_floor");
            let naive = mean_ns(&group, "naive_full_sort_chain");
            print!(" {:>10.1} {:>11.2}× {:>11.1}×", t / 1e3, t / floor, naive / t);
        }
        println!();
    }
    println!("Targets for default_chain: ≤ 2× softmax, ≥ 10× faster than the naive full sort.");
}
