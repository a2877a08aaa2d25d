//! With a fixed seed and many draws, the empirical token frequencies must match the
//! truncated, renormalised distribution (Pearson's chi-square).
use decoding_playground::sampling::{Chain, SamplerConfig};

const DRAWS: usize = 40_000;

/// Draws `DRAWS` tokens from fixed logits and returns Pearson's statistic against `expected`
/// (token → probability) and the degrees of freedom.
fn chi_square(config: SamplerConfig, logits: &[f32], expected: &[(u32, f64)]) -> (f64, usize) {
    let mut chain = Chain::new(&config).unwrap();
    let mut counts = vec![0usize; logits.len()];
    for _ in 0..DRAWS {
        counts[chain.sample(logits).unwrap().token as usize] += 1;
    }
    let outside: usize = counts.iter().enumerate()
        .filter(|(id, _)| !expected.iter().any(|&(t, _)| t as usize == *id))
        .map(|(_, &n)| n).sum();
    assert_eq!(outside, 0, "tokens outside the truncated set were drawn");
    let stat = expected.iter().map(|&(t, p)| {
        let e = p * DRAWS as f64;
        (counts[t as usize] as f64 - e).powi(2) / e
    }).sum();
    (stat, expected.len() - 1)
}

/// Logits with a known order: token i has logit 3 − 0.25·i.
fn ladder(vocab: usize) -> Vec<f32> {
    (0..vocab).map(|i| 3.0 - 0.25 * i as f32).collect()
}

/// Softmax at `temperature` over the first `n` tokens of the ladder.
fn renormalised(logits: &[f32], n: usize, temperature: f64) -> Vec<(u32, f64)> {
    let w: Vec<f64> = logits[..n].iter().map(|&x| (x as f64 / temperature).exp()).collect();
    let z: f64 = w.iter().sum();
    w.iter().enumerate().map(|(i, &v)| (i as u32, v / z)).collect()
}

/// Chi-square critical values at p = 0.001.
fn critical(dof: usize) -> f64 {
    match dof { 4 => 18.47, 7 => 24.32, 9 => 27.88, 29 => 58.30, _ => panic!("add dof {dof}") }
}

#[test]
fn top_k_then_temperature_draws_match_the_renormalised_top_k() {
    let logits = ladder(30);
    let config = SamplerConfig { seed: 17, temperature: 0.7, top_k: Some(10), top_p: None, ..Default::default() };
    let (stat, dof) = chi_square(config, &logits, &renormalised(&logits, 10, 0.7));
    assert!(stat < critical(dof), "chi-square {stat:.2} with {dof} dof");
}

#[test]
fn top_p_draws_match_the_renormalised_nucleus() {
    let logits = ladder(30);
    // Mass of the top 8 at temperature 1 is 0.8707 and of the top 7 is 0.8305: p = 0.85 keeps 8.
    let config = SamplerConfig { seed: 5, temperature: 1.0, top_k: None, top_p: Some(0.85), ..Default::default() };
    let (stat, dof) = chi_square(config, &logits, &renormalised(&logits, 8, 1.0));
    assert!(stat < critical(dof), "chi-square {stat:.2} with {dof} dof");
}

#[test]
fn min_p_draws_match_the_renormalised_survivors() {
    let logits = ladder(30);
    // p_i / p_max = exp(−0.25·i) ≥ 0.3 keeps i ≤ 4.
    let config = SamplerConfig { seed: 9, temperature: 1.0, top_k: None, top_p: None, min_p: Some(0.3), ..Default::default() };
    let (stat, dof) = chi_square(config, &logits, &renormalised(&logits, 5, 1.0));
    assert!(stat < critical(dof), "chi-square {stat:.2} with {dof} dof");
}

#[test]
fn whole_vocabulary_draws_match_the_softmax() {
    let logits = ladder(30);
    let (stat, dof) = chi_square(SamplerConfig { seed: 3, ..SamplerConfig::temperature(1.5) }, &logits, &renormalised(&logits, 30, 1.5));
    assert!(stat < critical(dof), "chi-square {stat:.2} with {dof} dof");
}
