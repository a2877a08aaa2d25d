//! The samplers taken from llama.cpp (DRY, XTC, top-n-σ, dynamic temperature) and HF
//! transformers (epsilon, eta) against their references: crate/tests/fixtures/samplers/
//! reference.json holds random logits and histories with the probabilities llama.cpp's own
//! samplers and a transcription of HF's warpers leave (models/sampler_references.py,
//! `models/build.sh samplers`). Goal of issue 25: max |Δp| ≤ 1e-6 for each.
use crate::common::tiny;
use decoding_playground::model::gguf::GgufHeader;
use decoding_playground::sampling::{AdaptivePConfig, Chain, DryConfig, DynamicTemperatureConfig, SamplerConfig, Stage, XtcConfig};
use decoding_playground::tokenizer::TextTokenizer;
use serde_json::Value;
use std::collections::BTreeMap;

const FIXTURE: &str = include_str!("../fixtures/samplers/reference.json");
const GOAL: f64 = 1e-6;

fn number(params: &Value, key: &str) -> f32 {
    params[key].as_f64().unwrap_or_else(|| panic!("{key} in {params}")) as f32
}

/// The chain that runs the case's sampler alone (temperature 1 unless the case sets one).
fn config(sampler: &str, params: &Value) -> SamplerConfig {
    let mut config = SamplerConfig::temperature(1.0);
    match sampler {
        "topNSigma" => config.top_n_sigma = Some(number(params, "n")),
        "xtc" => config.xtc = Some(XtcConfig { probability: number(params, "probability"), threshold: number(params, "threshold") }),
        "dynamicTemperature" => {
            config.temperature = number(params, "temperature");
            config.dynamic_temperature =
                Some(DynamicTemperatureConfig { range: number(params, "range"), exponent: number(params, "exponent") });
        }
        "dry" => config.dry = Some(serde_json::from_value::<DryConfig>(params.clone()).unwrap()),
        "epsilonCutoff" | "etaCutoff" => {
            config.temperature = number(params, "temperature");
            config.order = Stage::HF_ORDER.to_vec();
            let cutoff = Some(number(params, "cutoff"));
            if sampler == "epsilonCutoff" { config.epsilon_cutoff = cutoff } else { config.eta_cutoff = cutoff }
        }
        other => panic!("no sampler {other}"),
    }
    config
}

#[test]
fn each_sampler_matches_its_reference_within_1e6() {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    assert_eq!(fixture["vocab"], "models/tiny/model.gguf");
    let tokenizer = TextTokenizer::from_gguf(&GgufHeader::read(&mut &tiny::GGUF[..]).unwrap()).unwrap();
    // Per sampler: the worst |Δp|, the cases, and the cases where the sampler moved some
    // probability by more than 1e-3 (a fixture where it does nothing would prove nothing).
    let mut worst: BTreeMap<String, (f64, usize, usize)> = BTreeMap::new();
    for case in fixture["cases"].as_array().unwrap().iter().filter(|c| c["sampler"] != "adaptiveP") {
        let sampler = case["sampler"].as_str().unwrap();
        let logits: Vec<f32> = serde_json::from_value(case["logits"].clone()).unwrap();
        let expected: Vec<f64> = serde_json::from_value(case["probs"].clone()).unwrap();
        let mut chain = Chain::with_vocab(&config(sampler, &case["params"]), Some(&tokenizer)).unwrap();
        for token in case["history"].as_array().unwrap() {
            chain.accept(token.as_u64().unwrap() as u32);
        }
        let mut got = vec![0.0; logits.len()];
        for (id, p) in chain.distribution(&logits).unwrap() {
            got[id as usize] = p;
        }
        let max_delta = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        let untouched = Chain::new(&SamplerConfig::temperature(1.0)).unwrap().distribution(&logits).unwrap();
        let untouched: Vec<f64> = untouched.into_iter().map(|(_, p)| p).collect();
        let entry = worst.entry(sampler.to_string()).or_default();
        entry.0 = entry.0.max(max_delta(&got, &expected));
        entry.1 += 1;
        entry.2 += usize::from(max_delta(&untouched, &expected) > 1e-3);
    }
    for (sampler, (delta, cases, changed)) in &worst {
        println!("{sampler:>20}: max |Δp| = {delta:.2e} over {cases} cases, {changed} of which it changed (goal ≤ {GOAL:.0e})");
    }
    assert_eq!(worst.len(), 6, "every sampler has cases: {:?}", worst.keys());
    for (sampler, (delta, _, changed)) in &worst {
        assert!(*delta <= GOAL, "{sampler}: max |Δp| = {delta:.3e}");
        assert!(*changed >= 2, "{sampler} changed the distribution in {changed} cases: regenerate a stronger fixture");
    }
}

/// Adaptive-p over several steps: each step's distribution as llama.cpp's leaves it, then the
/// token llama.cpp drew is accepted, which moves both samplers' averages alike.
#[test]
fn adaptive_p_matches_llama_cpps_step_after_step() {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let (mut worst, mut steps, mut changed) = (0.0f64, 0, 0);
    for case in fixture["cases"].as_array().unwrap().iter().filter(|c| c["sampler"] == "adaptiveP") {
        let params: AdaptivePConfig = serde_json::from_value(case["params"].clone()).unwrap();
        let mut chain = Chain::new(&SamplerConfig { adaptive_p: Some(params), ..SamplerConfig::temperature(1.0) }).unwrap();
        for step in case["steps"].as_array().unwrap() {
            let logits: Vec<f32> = serde_json::from_value(step["logits"].clone()).unwrap();
            let expected: Vec<f64> = serde_json::from_value(step["probs"].clone()).unwrap();
            let mut got = vec![0.0; logits.len()];
            for (id, p) in chain.distribution(&logits).unwrap() {
                got[id as usize] = p;
            }
            worst = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(worst, f64::max);
            let untouched: Vec<f64> = Chain::new(&SamplerConfig::temperature(1.0)).unwrap().distribution(&logits).unwrap().into_iter().map(|(_, p)| p).collect();
            changed += usize::from(untouched.iter().zip(&expected).any(|(a, b)| (a - b).abs() > 1e-3));
            chain.accept(step["drawn"].as_u64().unwrap() as u32);
            steps += 1;
        }
    }
    println!("          adaptiveP: max |Δp| = {worst:.2e} over {steps} steps, {changed} of which it changed (goal ≤ {GOAL:.0e})");
    assert!(steps >= 20 && changed >= steps / 2, "{steps} steps, {changed} changed");
    assert!(worst <= GOAL, "adaptiveP: max |Δp| = {worst:.3e}");
}
