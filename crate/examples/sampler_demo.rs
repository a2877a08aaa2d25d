//! A tour of the samplers on a synthetic language model, until the real model lands:
//! every strategy runs 300 steps with one seed and prints what its step records saw.
//!
//!     cargo run --release --example sampler_demo

use decoding_playground::sampling::{Chain, PenaltyConfig, SamplerConfig};
use std::time::Instant;

const VOCAB: usize = 49152;
const STEPS: usize = 300;

/// A stand-in LM: Zipf-shaped logits whose ranking depends on the previous token, so
/// penalties and repetition have something to act on.
fn synthetic_lm(previous: u32, step: usize) -> Vec<f32> {
    let shift = (previous as usize * 7919 + step * 104_729) % VOCAB;
    (0..VOCAB)
        .map(|i| {
            let rank = (i * 2_654_435_761 + shift) % VOCAB;
            let noise = ((i * 31 + step * 17) % 101) as f32 / 101.0;
            -1.05 * ((1 + rank) as f32).ln() + 0.8 * noise
        })
        .collect()
}

fn main() {
    let only = |f: fn(&mut SamplerConfig)| {
        let mut config = SamplerConfig::temperature(1.0);
        f(&mut config);
        config
    };
    let strategies = [
        ("greedy", SamplerConfig::greedy()),
        ("default (top-k 40, top-p 0.95, T 0.8)", SamplerConfig::default()),
        ("temperature 1.0", SamplerConfig::temperature(1.0)),
        ("top-k 5", only(|c| c.top_k = Some(5))),
        ("top-p 0.9", only(|c| c.top_p = Some(0.9))),
        ("min-p 0.1", only(|c| c.min_p = Some(0.1))),
        ("typical 0.9", only(|c| c.typical_p = Some(0.9))),
        ("repetition penalty 1.3", SamplerConfig {
            penalties: PenaltyConfig { repetition: 1.3, ..Default::default() },
            ..SamplerConfig::default()
        }),
        ("mirostat v1, tau 5", SamplerConfig::mirostat(1, 5.0, 0.1)),
        ("mirostat v2, tau 5", SamplerConfig::mirostat(2, 5.0, 0.1)),
        ("mirostat v2, tau 8", SamplerConfig::mirostat(2, 8.0, 0.1)),
    ];
    println!("{STEPS} steps over a synthetic {VOCAB}-token model, seed 42\n");
    println!(
        "{:<38} {:>9} {:>9} {:>8} {:>9} {:>7} {:>9} {:>10}",
        "strategy", "surprise", "entropy", "ppl", "kept", "μ", "distinct", "µs/step"
    );
    for (name, config) in strategies {
        let mut chain = Chain::new(&SamplerConfig { seed: 42, ..config }).expect("valid config");
        let (mut previous, mut entropy, mut kept, mut tokens, mut mu) = (0, 0.0, 0.0, Vec::new(), None);
        let mut sampling_time = std::time::Duration::ZERO;
        for step in 0..STEPS {
            let logits = synthetic_lm(previous, step);
            let start = Instant::now();
            let record = chain.sample(&logits).expect("finite logits");
            sampling_time += start.elapsed();
            entropy += record.entropy_bits as f64 / STEPS as f64;
            kept += record.kept as f64 / STEPS as f64;
            mu = record.mu;
            previous = record.token;
            tokens.push(record.token);
        }
        tokens.sort_unstable();
        tokens.dedup();
        let meter = chain.perplexity();
        println!(
            "{:<38} {:>9.2} {:>9.2} {:>8.1} {:>9.1} {:>7} {:>8}% {:>10.0}",
            name,
            meter.mean_surprise_bits(),
            entropy,
            meter.perplexity(),
            kept,
            mu.map_or("-".into(), |m| format!("{m:.2}")),
            tokens.len() * 100 / STEPS,
            sampling_time.as_secs_f64() * 1e6 / STEPS as f64,
        );
    }
    println!("\nsurprise and entropy in bits; ppl = 2^(mean surprise); kept = tokens left after truncation.");
    println!("Mirostat steers the mean surprise to τ.");
}
