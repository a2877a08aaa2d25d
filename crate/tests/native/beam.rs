//! Beam search against the reference (models/beam_reference.py: Hugging Face's beam scorer in
//! numpy): over synthetic logits that both compute alike, the same hypotheses with the same
//! scores to the last bits; over the tiny model's and SmolLM2's ONNX exports (tract here,
//! onnxruntime there), the same hypotheses in the same order, their scores as close as the two
//! runtimes' logits allow.
use crate::common;

use common::smollm2::model_file;
use decoding_playground::beam::{BeamConfig, BeamSearch, BeamStep, Hypothesis};
use decoding_playground::generate::Engine;
use decoding_playground::tokenizer::TextTokenizer;
use decoding_playground::{Error, LanguageModel, TractModel};
use pollster::block_on;
use std::ops::ControlFlow;

const FIXTURE: &str = include_str!("../fixtures/beam_reference.json");

fn search<M: LanguageModel>(engine: &mut Engine<M>, prompt: &str, config: &BeamConfig) -> (Vec<Hypothesis>, Vec<BeamStep>) {
    let mut steps = Vec::new();
    let results = block_on(engine.beam_search(prompt, config, async |_, step| {
        steps.push(step);
        ControlFlow::Continue(())
    }))
    .unwrap();
    (results, steps)
}

/// models/beam_reference.py's `synthetic_logits`: FNV-1a over the tokens, mixed with each id.
fn synthetic_logits(sequence: &[u32]) -> Vec<f32> {
    let h = sequence.iter().fold(2166136261u32, |h, &t| (h ^ (t + 1)).wrapping_mul(16777619));
    (0..50u32)
        .map(|v| {
            let x = h ^ (v + 1).wrapping_mul(2654435761);
            let x = (x ^ (x >> 15)).wrapping_mul(2246822519);
            let x = x ^ (x >> 13);
            (x as f64 / 4294967296.0 * 6.0) as f32
        })
        .collect()
}

fn tokens_of(results: &serde_json::Value) -> Vec<Vec<u32>> {
    results.as_array().unwrap().iter().map(|r| serde_json::from_value(r["tokens"].clone()).unwrap()).collect()
}

#[test]
fn the_search_itself_matches_the_reference_on_synthetic_logits() {
    let fixture: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    let mut cases = 0;
    let mut worst: f64 = 0.0;
    for case in fixture["cases"].as_array().unwrap().iter().filter(|c| c["model"] == "synthetic") {
        let config: BeamConfig = serde_json::from_value(case["config"].clone()).unwrap();
        let prompt: Vec<u32> = serde_json::from_value(case["prompt"].clone()).unwrap();
        let mut search = BeamSearch::new(&config, config.stop_tokens.clone().unwrap()).unwrap();
        let mut logits = vec![synthetic_logits(&prompt)];
        let results = loop {
            let (record, finished) = search.step(&logits).unwrap();
            if finished {
                break record.results;
            }
            logits = search.live().map(|tokens| synthetic_logits(&[&prompt[..], tokens].concat())).collect();
        };
        assert_eq!(results.iter().map(|h| h.tokens.clone()).collect::<Vec<_>>(), tokens_of(&case["results"]), "{case}");
        for (got, want) in results.iter().zip(case["results"].as_array().unwrap()) {
            worst = worst.max((got.score - want["score"].as_f64().unwrap()).abs()).max((got.sum_log_prob - want["sumLogProb"].as_f64().unwrap()).abs());
        }
        cases += 1;
    }
    println!("beam search vs the reference on synthetic logits, {cases} configurations: identical hypotheses, max |Δ score| {worst:.2e}");
    assert!(cases == 6 && worst <= 1e-12, "{cases} cases, {worst:e}");
}

#[test]
fn beam_search_gives_the_reference_hypotheses_and_scores() {
    let fixture: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    let prompt = fixture["prompt"].as_str().unwrap();
    let mut tiny = common::tiny::engine();
    let mut smollm2 = model_file("model.onnx").map(|path| {
        let dir = path.parent().unwrap();
        let model = TractModel::from_bytes_with_config_json(&std::fs::read(&path).unwrap(), &std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        Engine::new(model, TextTokenizer::from_bytes(&std::fs::read(dir.join("tokenizer.json")).unwrap()).unwrap()).unwrap()
    });
    // Per model: the worst |Δ score| and the worst |Δ sum of log probabilities|.
    let mut worst = std::collections::BTreeMap::<&str, (f64, f64)>::new();
    for case in fixture["cases"].as_array().unwrap() {
        let config: BeamConfig = serde_json::from_value(case["config"].clone()).unwrap();
        let name = case["model"].as_str().unwrap();
        let engine = match name {
            "synthetic" => continue,
            "tiny" => &mut tiny,
            _ => match smollm2.as_mut() {
                Some(engine) => engine,
                None => continue,
            },
        };
        let (results, steps) = search(engine, prompt, &config);
        let want = case["results"].as_array().unwrap();
        assert_eq!(results.iter().map(|h| h.tokens.clone()).collect::<Vec<_>>(), tokens_of(&case["results"]), "{case}");
        let worst = worst.entry(name).or_default();
        for (got, want) in results.iter().zip(want) {
            worst.0 = worst.0.max((got.score - want["score"].as_f64().unwrap()).abs());
            worst.1 = worst.1.max((got.sum_log_prob - want["sumLogProb"].as_f64().unwrap()).abs());
        }
        // Each step keeps at most `beams` candidates, and the last one holds the results.
        assert!(steps.iter().all(|s| s.kept.len() <= config.beams && s.kept.len() + s.finished.len() + s.pruned.len() == 2 * config.beams));
        assert_eq!(steps.last().unwrap().results, results);
    }
    // The runtimes' logits differ by up to ~5e-6 (tract vs onnxruntime, f32), and a score sums
    // up to 16 tokens' log probabilities: the search itself is compared exactly above.
    for (name, (score, sum)) in worst {
        println!("beam search vs the reference, {name}: identical hypotheses, max |Δ score| {score:.2e}, max |Δ sum of log p| {sum:.2e}");
        assert!(score <= 1e-4 && sum <= 1e-4, "{name}: max |Δ score| {score:e}, |Δ sum| {sum:e}");
    }
}

#[test]
fn beam_search_refuses_bad_settings_and_can_be_cancelled() {
    let mut engine = common::tiny::engine();
    let prompt = "Once upon a time";
    let bad = |json: &str| serde_json::from_str::<BeamConfig>(json).map_err(|e| e.to_string()).and_then(|c| c.check().map_err(|e| e.to_string()));
    assert!(bad(r#"{"beams": 0}"#).unwrap_err().contains("beams"));
    assert!(bad(r#"{"maxTokens": 0}"#).unwrap_err().contains("maxTokens"));
    assert!(bad(r#"{"width": 3}"#).unwrap_err().contains("width"));
    let config = BeamConfig { beams: 3, max_tokens: 12, stop_tokens: Some(vec![]), ..Default::default() };
    let mut seen = 0;
    let cancelled = block_on(engine.beam_search(prompt, &config, async |_, _| {
        seen += 1;
        if seen == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }));
    assert_eq!(cancelled, Err(Error::Cancelled));
    // The engine goes on: twelve tokens in each of three hypotheses.
    let (results, _) = search(&mut engine, prompt, &config);
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|h| h.tokens.len() == 12));
    assert!(results.windows(2).all(|w| w[0].score >= w[1].score));
}
