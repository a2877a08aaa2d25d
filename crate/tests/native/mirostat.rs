//! Mirostat against values worked out by hand, and against its promise: observed surprise
//! tracks τ.
use crate::common;

use decoding_playground::sampling::{mirostat_k, zipf_exponent, Chain, SamplerConfig};

/// Exact Zipf logits: p_i ∝ (i + 1)^(−s).
fn zipf_logits(vocab: usize, s: f64) -> Vec<f32> {
    (0..vocab).map(|i| (-s * ((i + 1) as f64).ln()) as f32).collect()
}

fn zipf_surprise_bits(vocab: usize, s: f64, token: u32) -> f64 {
    let z: f64 = (1..=vocab).map(|r| (r as f64).powf(-s)).sum();
    -(((token + 1) as f64).powf(-s) / z).log2()
}

#[test]
fn zipf_exponent_recovers_an_exact_zipf_law() {
    // b_i = ln(p_i / p_{i+1}) = s·ln((i+2)/(i+1)) = s·t_i, so the least-squares fit is s.
    let gaps = (0..99).map(|i| 1.2 * ((i as f64 + 2.0) / (i as f64 + 1.0)).ln());
    assert!((zipf_exponent(gaps) - 1.2).abs() < 1e-12);
}

#[test]
fn k_formula_matches_the_hand_computation() {
    // s = 1.2, μ = 6, N = 1000: ε = 0.2; N^(−ε) = 10^(−0.6) = 0.2511886;
    // ε·2^μ = 12.8; 12.8 / (1 − 0.2511886) = 17.093706; 17.093706^(1/1.2) = 10.650368.
    assert!((mirostat_k(1.2, 6.0, 1000.0) - 10.650368).abs() < 1e-5);
    // ε → 0 uses the limit ε / (1 − N^(−ε)) → 1/ln N: (2^3 / ln 1000)^1 = 1.158131.
    assert!((mirostat_k(1.0, 3.0, 1000.0) - 8.0 / 1000f64.ln()).abs() < 1e-9);
    assert!(mirostat_k(0.0, 3.0, 1000.0).is_infinite(), "a flat estimate keeps everything");
}

#[test]
fn v1_keeps_the_formula_k_and_updates_mu_by_the_surprise_error() {
    let logits = zipf_logits(1000, 1.2);
    let mut chain = Chain::new(&SamplerConfig::mirostat(1, 3.0, 0.1)).unwrap();
    let first = chain.sample(&logits).unwrap();
    assert_eq!(first.mu, Some(6.0), "μ starts at 2τ");
    assert_eq!(first.kept, 10, "⌊10.65⌋");
    let surprise = zipf_surprise_bits(1000, 1.2, first.token);
    assert!((first.surprise_bits as f64 - surprise).abs() < 1e-4, "surprise is −log2 p in bits");
    let second = chain.sample(&logits).unwrap();
    let expected_mu = 6.0 - 0.1 * (surprise - 3.0);
    assert!((second.mu.unwrap() as f64 - expected_mu).abs() < 1e-5, "{:?} vs {expected_mu}", second.mu);
}

#[test]
fn v2_keeps_tokens_with_surprise_at_most_mu() {
    // μ = 6 bits keeps p ≥ 1/64: ranks 1..9 of this Zipf law (p_9 = 0.0165, p_10 = 0.0145).
    let mut chain = Chain::new(&SamplerConfig::mirostat(2, 3.0, 0.1)).unwrap();
    let record = chain.sample(&zipf_logits(1000, 1.2)).unwrap();
    assert_eq!(record.kept, 9);
    assert!(record.token < 9);
}

#[test]
fn observed_surprise_tracks_tau() {
    for version in [1, 2] {
        for tau in [3.0, 5.0] {
            let mut chain = Chain::new(&SamplerConfig::mirostat(version, tau, 0.2)).unwrap();
            for step in 0..400 {
                chain.sample(&common::synthetic_logits(4000, 11, step)).unwrap();
            }
            let mean = chain.perplexity().mean_surprise_bits();
            assert!((mean - tau as f64).abs() < 0.35, "v{version} τ={tau}: mean surprise {mean}");
        }
    }
}

#[test]
fn mu_resets_per_generation() {
    let logits = zipf_logits(500, 1.1);
    let mut chain = Chain::new(&SamplerConfig::mirostat(2, 2.0, 1.0)).unwrap();
    for _ in 0..5 {
        chain.sample(&logits).unwrap();
    }
    chain.reset();
    assert_eq!(chain.sample(&logits).unwrap().mu, Some(4.0));
}
