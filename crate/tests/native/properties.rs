//! Property tests of every truncation against its definition, computed naively in f64.
use crate::common;

use decoding_playground::sampling::{
    Candidates, Chain, MinP, MirostatConfig, MirostatV1, MirostatV2, SamplerConfig, Sampler,
    Temperature, TopK, TopP, Typical,
};
use proptest::prelude::*;

/// Slack for comparisons at a boundary, where f32 logits and f64 references may round apart.
const EPS: f64 = 1e-5;

fn logits() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-15.0f32..15.0, 1..400)
}

/// Softmax in f64 at inverse temperature `scale`.
fn softmax(logits: &[f32], scale: f64) -> Vec<f64> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let e: Vec<f64> = logits.iter().map(|&x| (scale * (x as f64 - max)).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

fn kept(c: &Candidates) -> Vec<u32> {
    let mut ids = Vec::new();
    c.for_each(|id, _| ids.push(id));
    ids.sort_unstable();
    ids
}

fn dropped(c: &Candidates) -> Vec<u32> {
    let keep = kept(c);
    (0..c.vocab_size() as u32).filter(|id| keep.binary_search(id).is_err()).collect()
}

fn apply(sampler: &mut dyn Sampler, logits: &[f32]) -> Candidates {
    let mut c = Candidates::from_logits(logits).unwrap();
    sampler.apply(&mut c).unwrap();
    c
}

/// A mass-based truncation keeps the best-ranked tokens, reaches `mass`, and is minimal.
fn assert_smallest_prefix(c: &Candidates, probs: &[f64], rank: impl Fn(u32) -> f64, mass: f64) {
    let keep = kept(c);
    let worst_kept = keep.iter().map(|&i| rank(i)).fold(f64::INFINITY, f64::min);
    let best_dropped = dropped(c).iter().map(|&i| rank(i)).fold(f64::NEG_INFINITY, f64::max);
    assert!(worst_kept >= best_dropped - EPS, "kept {worst_kept} ranks below dropped {best_dropped}");
    let kept_mass: f64 = keep.iter().map(|&i| probs[i as usize]).sum();
    assert!(kept_mass >= mass - EPS, "kept mass {kept_mass} < {mass}");
    let weakest = keep.iter().copied().min_by(|&a, &b| rank(a).total_cmp(&rank(b))).unwrap();
    let without_weakest = kept_mass - probs[weakest as usize];
    assert!(keep.len() == 1 || without_weakest < mass + EPS, "not minimal: {without_weakest} >= {mass}");
}

proptest! {
    #[test]
    fn probabilities_sum_to_one_after_every_transform(
        logits in logits(), k in 1usize..50, p in 0.05f32..1.0, min_p in 0.0f32..1.0,
        temperature in 0.1f32..3.0, tau in 0.5f32..8.0,
    ) {
        let mirostat = MirostatConfig { version: 1, tau, eta: 0.1 };
        let mut chain: Vec<Box<dyn Sampler>> = vec![
            Box::new(Temperature::new(temperature).unwrap()),
            Box::new(Typical::new(p).unwrap()),
            Box::new(MirostatV2::new(&mirostat).unwrap()),
            Box::new(TopP::new(p).unwrap()),
            Box::new(TopK::new(k).unwrap()),
            Box::new(MirostatV1::new(&mirostat).unwrap()),
            Box::new(MinP::new(min_p).unwrap()),
        ];
        let mut c = Candidates::from_logits(&logits).unwrap();
        for sampler in &mut chain {
            sampler.apply(&mut c).unwrap();
            let total: f64 = c.probabilities().iter().map(|&(_, p)| p).sum();
            prop_assert!((total - 1.0).abs() < 1e-6, "{} left mass {total}", sampler.name());
            prop_assert!(!c.is_empty());
        }
    }

    #[test]
    fn top_k_keeps_exactly_the_k_best(logits in logits(), k in 1usize..500) {
        let c = apply(&mut TopK::new(k).unwrap(), &logits);
        let mut expected: Vec<u32> = (0..logits.len() as u32).collect();
        expected.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]).then(a.cmp(&b)));
        expected.truncate(k);
        expected.sort_unstable();
        prop_assert_eq!(kept(&c), expected);
    }

    #[test]
    fn top_p_keeps_the_smallest_prefix_reaching_p(logits in logits(), p in 0.01f32..1.0, t in 0.2f32..2.0) {
        let mut c = Candidates::from_logits(&logits).unwrap();
        Temperature::new(t).unwrap().apply(&mut c).unwrap();
        TopP::new(p).unwrap().apply(&mut c).unwrap();
        let probs = softmax(&logits, 1.0 / t as f64);
        assert_smallest_prefix(&c, &probs, |i| probs[i as usize], p as f64);
    }

    #[test]
    fn min_p_keeps_exactly_the_tokens_above_min_p_times_the_best(logits in logits(), min_p in 0.0f32..=1.0) {
        let c = apply(&mut MinP::new(min_p).unwrap(), &logits);
        let probs = softmax(&logits, 1.0);
        let p_max = probs.iter().cloned().fold(0.0, f64::max);
        let keep = kept(&c);
        for (i, &p) in probs.iter().enumerate() {
            let ratio = p / p_max;
            if (ratio - min_p as f64).abs() > EPS {
                prop_assert_eq!(keep.binary_search(&(i as u32)).is_ok(), ratio >= min_p as f64, "token {}", i);
            }
        }
    }

    #[test]
    fn typical_keeps_the_most_typical_prefix_reaching_p(logits in logits(), p in 0.01f32..1.0) {
        let c = apply(&mut Typical::new(p).unwrap(), &logits);
        let probs = softmax(&logits, 1.0);
        let entropy: f64 = probs.iter().filter(|&&q| q > 0.0).map(|&q| -q * q.ln()).sum();
        let typicality = |i: u32| -((-probs[i as usize].ln()) - entropy).abs();
        assert_smallest_prefix(&c, &probs, typicality, p as f64);
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence(seed in any::<u64>(), which in 0usize..4) {
        let config = [
            SamplerConfig::default(),
            SamplerConfig::temperature(1.3),
            SamplerConfig::mirostat(1, 3.0, 0.2),
            SamplerConfig::mirostat(2, 4.0, 0.5),
        ][which].clone();
        let config = SamplerConfig { seed, ..config };
        let run = || {
            let mut chain = Chain::new(&config).unwrap();
            (0..12).map(|s| chain.sample(&common::synthetic_logits(500, 3, s)).unwrap().token).collect::<Vec<_>>()
        };
        prop_assert_eq!(run(), run());
    }
}

#[test]
fn top_k_breaks_ties_towards_the_lower_id() {
    let c = apply(&mut TopK::new(3).unwrap(), &[1.0, 2.0, 1.0, 2.0, 1.0, 1.0]);
    assert_eq!(kept(&c), [1, 3, 0]
        .iter().copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>());
    let c = apply(&mut TopK::new(2).unwrap(), &[5.0; 8]);
    assert_eq!(kept(&c), [0, 1]);
}

#[test]
fn reset_replays_the_generation() {
    let mut chain = Chain::new(&SamplerConfig::mirostat(2, 3.0, 0.3)).unwrap();
    let run = |chain: &mut Chain| {
        (0..10).map(|s| chain.sample(&common::synthetic_logits(300, 1, s)).unwrap()).collect::<Vec<_>>()
    };
    let first = run(&mut chain);
    chain.reset();
    assert_eq!(run(&mut chain), first, "μ, RNG and perplexity all restart");
}
