//! The generation loop on the tiny model: determinism (and the fixture wasm must match),
//! streaming, stop tokens, cancellation and bad input.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use pollster::block_on;
use common::tiny::{engine, PROMPT};
use decoding_playground::generate::{FinishReason, GenerateConfig, GeneratedStep, Step};
use decoding_playground::{Error, LanguageModel};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Case {
    name: String,
    config: serde_json::Value,
    tokens: Vec<u32>,
    text: String,
}

/// The token steps of a sampled (not superposed) generation.
fn tokens_of(steps: Vec<Step>) -> Vec<GeneratedStep> {
    steps.into_iter().map(|s| s.as_token().expect("a sampled step").clone()).collect()
}

fn config(json: &serde_json::Value) -> GenerateConfig {
    serde_json::from_value(json.clone()).unwrap()
}

#[test]
fn generations_match_the_fixture_that_wasm_replays() {
    for (model, engine, fixture, file, _, _) in common::tiny::models() {
        let mut cases: Vec<Case> = serde_json::from_str(fixture).unwrap();
        let mut engine = engine();
        for case in &mut cases {
            let steps = tokens_of(block_on(engine.generate(PROMPT, &config(&case.config), |_| {}, || false)).unwrap());
            let tokens: Vec<u32> = steps.iter().map(|s| s.record.token).collect();
            let text: String = steps.iter().map(|s| s.text.as_str()).collect();
            if std::env::var_os("UPDATE_FIXTURES").is_some() {
                (case.tokens, case.text) = (tokens, text);
            } else {
                assert_eq!(tokens, case.tokens, "{model}: {}", case.name);
                assert_eq!(text, case.text, "{model}: {}", case.name);
            }
        }
        if std::env::var_os("UPDATE_FIXTURES").is_some() {
            let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
            std::fs::write(path, serde_json::to_string_pretty(&cases).unwrap() + "\n").unwrap();
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_tokens_and_streamed_text_is_the_decoded_text() {
    let mut engine = engine();
    let config = GenerateConfig { max_tokens: 40, ..Default::default() };
    let run = |engine: &mut decoding_playground::generate::Engine<_>| {
        tokens_of(block_on(engine.generate(PROMPT, &config, |_| {}, || false)).unwrap())
    };
    let (first, second) = (run(&mut engine), run(&mut engine));
    assert_eq!(first, second);
    let ids: Vec<u32> = first.iter().filter(|s| s.finish != Some(FinishReason::Stop)).map(|s| s.record.token).collect();
    let streamed: String = first.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(streamed, engine.tokenizer.decode(&ids).unwrap());
    assert_eq!(first.last().unwrap().finish.is_some(), true);
    assert!(first[..first.len() - 1].iter().all(|s| s.finish.is_none()));
}

#[test]
fn a_stop_token_ends_the_generation() {
    let mut engine = engine();
    let greedy = GenerateConfig {
        max_tokens: 10,
        stop_tokens: Some(vec![]),
        sampler: decoding_playground::SamplerConfig::greedy(),
        superposed: None,
    };
    let free = tokens_of(block_on(engine.generate(PROMPT, &greedy, |_| {}, || false)).unwrap());
    assert_eq!(free.len(), 10);
    assert_eq!(free[9].finish, Some(FinishReason::Length));
    let stop = free[3].record.token;
    let first_stop = free.iter().position(|s| s.record.token == stop).unwrap();
    let stopped = GenerateConfig { stop_tokens: Some(vec![stop]), ..greedy };
    let steps = tokens_of(block_on(engine.generate(PROMPT, &stopped, |_| {}, || false)).unwrap());
    assert_eq!(steps.len(), first_stop + 1);
    assert_eq!(steps.last().unwrap().finish, Some(FinishReason::Stop));
    assert_eq!(steps.last().unwrap().text, "", "the stop token shows no text");
}

#[test]
fn cancellation_takes_effect_within_a_step() {
    let mut engine = engine();
    let seen = std::cell::Cell::new(0);
    let result = block_on(engine.generate(PROMPT, &GenerateConfig::default(), |_| seen.set(seen.get() + 1), || seen.get() >= 3));
    assert_eq!(result.unwrap_err(), Error::Cancelled);
    assert_eq!(seen.get(), 3);
    assert!(block_on(engine.generate(PROMPT, &GenerateConfig::default(), |_| {}, || false)).is_ok(), "usable after");
}

#[test]
fn bad_requests_are_clear_errors() {
    let mut engine = engine();
    let ok = GenerateConfig::default();
    assert_eq!(block_on(engine.start("", &ok)).err().unwrap(), Error::EmptyPrompt);
    let context = engine.model().context_length();
    let long = "a b ".repeat(context);
    let err = block_on(engine.start(&long, &ok)).err().unwrap().to_string();
    assert!(err.contains(&format!("the context holds {context}")), "{err}");
    for max_tokens in [0, 1_000_000_000] {
        let err = block_on(engine.start(PROMPT, &GenerateConfig { max_tokens, ..ok.clone() })).err().unwrap().to_string();
        assert!(err.starts_with(&format!("maxTokens must be at least 1 and at most the context left after the prompt, got {max_tokens}")), "{err}");
    }
    let bad_sampler = serde_json::json!({"sampler": {"topP": 2.0}});
    assert!(block_on(engine.start(PROMPT, &config(&bad_sampler))).err().unwrap().to_string().contains("topP"));
}

#[test]
fn log_probs_are_the_teacher_forced_log_softmax_of_each_next_token() {
    let mut engine = engine();
    let ids = engine.tokenizer.encode(PROMPT).unwrap();
    let got = block_on(engine.log_probs(&ids)).unwrap();
    engine.model_mut().reset();
    let logits = block_on(engine.model_mut().prefill_all_logits(&ids)).unwrap();
    let vocab = engine.model().vocab_size();
    for (i, &next) in ids[1..].iter().enumerate() {
        let row = &logits[i * vocab..(i + 1) * vocab];
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let ln_z = row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln() + max;
        assert!((got[i] - (row[next as usize] as f64 - ln_z)).abs() < 1e-5, "position {i}");
    }
    assert!(matches!(block_on(engine.log_probs(&ids[..1])), Err(Error::InvalidParameter { .. })));
}
