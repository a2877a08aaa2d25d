//! The generation loop on the tiny model: determinism (and the fixture wasm must match),
//! streaming, stop tokens, cancellation and bad input.
use crate::common;

use pollster::block_on;
use common::failing::FailingModel;
use common::tiny::{engine, PROMPT};
use decoding_playground::generate::{Engine, FinishReason, GenerateConfig, GeneratedStep, Step};
use decoding_playground::tokenizer::TextTokenizer;
use decoding_playground::{Error, LanguageModel, TractModel};
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
    assert_eq!(streamed, engine.tokenizer().decode(&ids).unwrap());
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
        ..Default::default()
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
fn a_stop_string_ends_the_generation_before_it_and_is_never_streamed() {
    let mut engine = engine();
    let greedy = GenerateConfig { max_tokens: 24, stop_tokens: Some(vec![]), sampler: decoding_playground::SamplerConfig::greedy(), ..Default::default() };
    let free = tokens_of(block_on(engine.generate(PROMPT, &greedy, |_| {}, || false)).unwrap());
    let text: String = free.iter().map(|s| s.text.as_str()).collect();
    // A stop string that starts inside one token's text and ends inside a later one's.
    let mut cut = text.len() / 3;
    while !text.is_char_boundary(cut) || !text.is_char_boundary(cut + 3) {
        cut += 1;
    }
    let stop = text[cut..].chars().take(3).collect::<String>();
    let before = &text[..text.find(&stop).unwrap()];
    let config = GenerateConfig { stop_strings: vec![stop.clone(), "never in this text \u{1}".into()], ..greedy };
    let steps = tokens_of(block_on(engine.generate(PROMPT, &config, |_| {}, || false)).unwrap());
    let streamed: Vec<&str> = steps.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(streamed.concat(), before, "stop string {stop:?}");
    assert_eq!(steps.last().unwrap().finish, Some(FinishReason::Stop));
    assert!(steps.len() < free.len());
    assert_eq!(steps.iter().map(|s| s.record.token).collect::<Vec<_>>(), free[..steps.len()].iter().map(|s| s.record.token).collect::<Vec<_>>());
    // Without a match the held-back text comes out at the end: the whole text, as without stops.
    let unmatched = GenerateConfig { stop_strings: vec!["never in this text \u{1}".into()], ..config };
    let steps = tokens_of(block_on(engine.generate(PROMPT, &unmatched, |_| {}, || false)).unwrap());
    assert_eq!(steps.iter().map(|s| s.text.as_str()).collect::<String>(), text);
}

#[test]
fn alternatives_carry_their_text() {
    let mut engine = engine();
    let steps = tokens_of(block_on(engine.generate(PROMPT, &GenerateConfig { max_tokens: 3, ..Default::default() }, |_| {}, || false)).unwrap());
    for alternative in steps.iter().flat_map(|s| &s.record.top) {
        assert_eq!(alternative.text.as_deref(), Some(engine.tokenizer().decode(&[alternative.token]).unwrap().as_str()));
    }
    assert!(steps[0].record.top.len() >= 2);
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
    let err = block_on(engine.start(PROMPT, &GenerateConfig { max_tokens: 0, ..ok.clone() })).err().unwrap().to_string();
    assert_eq!(err, "maxTokens must be at least 1, got 0");
    let bad_sampler = serde_json::json!({"sampler": {"topP": 2.0}});
    assert!(block_on(engine.start(PROMPT, &config(&bad_sampler))).err().unwrap().to_string().contains("topP"));
}

#[test]
fn log_probs_are_the_teacher_forced_log_softmax_of_each_next_token() {
    let mut engine = engine();
    let ids = engine.tokenizer().encode(PROMPT).unwrap();
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

/// More tokens than the context has room for: the run fills the context and ends there, with
/// a finish reason that says so, never an error in mid-stream.
#[test]
fn a_run_into_the_context_limit_ends_with_finish_context() {
    let mut engine = engine();
    engine.model_mut().set_context_length(24).unwrap();
    let prompt_tokens = engine.tokenizer().encode(PROMPT).unwrap().len();
    let room = 24 - prompt_tokens;
    for (max_tokens, want, reason) in [(1_000_000_000, room, FinishReason::Context), (room, room, FinishReason::Length), (3, 3, FinishReason::Length)] {
        let config = GenerateConfig { max_tokens, stop_tokens: Some(vec![]), ..Default::default() };
        let steps = tokens_of(block_on(engine.generate(PROMPT, &config, |_| {}, || false)).unwrap());
        assert_eq!(steps.len(), want, "maxTokens {max_tokens}");
        assert_eq!(steps.last().unwrap().finish, Some(reason), "maxTokens {max_tokens}");
        assert!(steps[..want - 1].iter().all(|s| s.finish.is_none()));
        assert_eq!(engine.model().position(), prompt_tokens + want - 1, "every token fed but the last");
    }
}

/// A step whose model call fails ends the generation: the error, then no more steps (no stale
/// logits sampled, nothing fed at position 0), and the engine serves the next call.
#[test]
fn a_failed_step_ends_the_generation() {
    let tiny = TractModel::from_bytes_with_config_json(common::tiny::ONNX, common::tiny::CONFIG).unwrap();
    let mut model = FailingModel::new(tiny);
    model.fail_at = Some(3); // the prefill, two steps, then the third step's feed
    let mut engine = Engine::new(model, TextTokenizer::from_bytes(common::tiny::TOKENIZER).unwrap()).unwrap();
    let config = GenerateConfig { max_tokens: 10, stop_tokens: Some(vec![]), ..Default::default() };
    let mut generation = block_on(engine.start(PROMPT, &config)).unwrap();
    for _ in 0..2 {
        assert!(block_on(engine.step(&mut generation)).unwrap().is_some());
    }
    let err = block_on(engine.step(&mut generation)).unwrap_err();
    assert_eq!(err, Error::Model("injected failure at call 3".into()));
    assert_eq!(generation.finish(), Some(FinishReason::Error));
    assert!(block_on(engine.step(&mut generation)).unwrap().is_none(), "a failed generation takes no more steps");
    assert_eq!(engine.model().calls, 4, "nothing was fed after the failure");
    // The next generation starts afresh and matches a run that never failed.
    let again = tokens_of(block_on(engine.generate(PROMPT, &config, |_| {}, || false)).unwrap());
    let want = tokens_of(block_on(common::tiny::engine().generate(PROMPT, &config, |_| {}, || false)).unwrap());
    assert_eq!(again.iter().map(|s| s.record.token).collect::<Vec<_>>(), want.iter().map(|s| s.record.token).collect::<Vec<_>>());
}

/// Two generations on one engine cannot share its cache: the older one's steps are refused
/// once a later call has refilled it.
#[test]
fn a_generation_replaced_by_a_later_call_is_refused() {
    let mut engine = engine();
    let config = GenerateConfig { max_tokens: 5, ..Default::default() };
    let mut first = block_on(engine.start(PROMPT, &config)).unwrap();
    block_on(engine.step(&mut first)).unwrap();
    let mut second = block_on(engine.start("A different prompt", &config)).unwrap();
    assert_eq!(block_on(engine.step(&mut first)).unwrap_err(), Error::Superseded);
    assert!(block_on(engine.step(&mut first)).unwrap().is_none());
    assert!(block_on(engine.step(&mut second)).unwrap().is_some(), "the newer one runs");
    block_on(engine.log_probs(&[1, 2, 3])).unwrap();
    assert_eq!(block_on(engine.step(&mut second)).unwrap_err(), Error::Superseded, "score and logProbs take the cache too");
}

/// What a config sets but the generation will not use is reported, as Mirostat's is.
#[test]
fn settings_a_generation_ignores_are_reported() {
    let superposed = config(&serde_json::json!({"superposed": {}, "sampler": {"temperature": 1.2, "topP": null}}));
    assert_eq!(superposed.ignored_settings(), ["sampler.temperature", "sampler.topP"]);
    assert!(config(&serde_json::json!({"superposed": {}})).ignored_settings().is_empty(), "defaults are not settings given");
    assert_eq!(config(&serde_json::json!({"superposed": {}, "stopStrings": ["\n"]})).ignored_settings(), ["stopStrings"]);
    let mirostat = config(&serde_json::json!({"sampler": {"mirostat": {"version": 2, "tau": 3, "eta": 0.1}}}));
    assert_eq!(mirostat.ignored_settings(), ["sampler.topK", "sampler.topP"]);
    assert!(GenerateConfig::default().ignored_settings().is_empty());
}
