//! Superposed decoding on the tiny model with its committed n-gram store: determinism (and the
//! fixture wasm must match), the draft tree's invariants, the store, and bad input.
use crate::common;

use pollster::block_on;
use common::tiny::{engine, NGRAMS, NGRAM_CORPUS, PROMPT};
use decoding_playground::generate::{Engine, GenerateConfig, SuperposedStep};
use decoding_playground::ngram::{NgramBuilder, NgramStore};
use decoding_playground::superposed::DraftNode;
use decoding_playground::TractModel;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

fn engine_with_store() -> Engine<TractModel> {
    with_store(engine())
}

fn with_store(mut engine: Engine<TractModel>) -> Engine<TractModel> {
    engine.set_ngram_store(Some(NgramStore::from_bytes(NGRAMS).unwrap())).unwrap();
    engine
}

fn run(engine: &mut Engine<TractModel>, config: &serde_json::Value) -> Vec<SuperposedStep> {
    let config: GenerateConfig = serde_json::from_value(config.clone()).unwrap();
    let steps = block_on(engine.generate(PROMPT, &config, |_| {}, || false)).unwrap();
    steps.into_iter().map(|s| s.as_drafts().expect("a superposed step").clone()).collect()
}

#[derive(Serialize, Deserialize)]
struct Case {
    name: String,
    config: serde_json::Value,
    /// Each step's live draft tokens.
    live: Vec<Vec<u32>>,
    drafts: Vec<Vec<u32>>,
    texts: Vec<String>,
}

#[test]
fn drafts_match_the_fixture_that_wasm_replays() {
    for (model, engine, _, _, fixture, file) in common::tiny::models() {
        drafts_match(model, with_store(engine()), fixture, file);
    }
}

fn drafts_match(model: &str, mut engine: Engine<TractModel>, fixture: &str, file: &str) {
    let mut cases: Vec<Case> = serde_json::from_str(fixture).unwrap();
    if cases.is_empty() {
        let case = |name: &str, config: serde_json::Value| Case {
            name: name.into(),
            config,
            live: vec![],
            drafts: vec![],
            texts: vec![],
        };
        cases = vec![
            case("default k 3", serde_json::json!({"maxTokens": 12, "superposed": {}})),
            case("k 5", serde_json::json!({"maxTokens": 10, "superposed": {"drafts": 5}})),
            case("alpha 0", serde_json::json!({"maxTokens": 10, "superposed": {"alpha": 0}})),
            case("stop token", serde_json::json!({"maxTokens": 10, "stopTokens": [56], "superposed": {}})),
            case("trigram only, hot", serde_json::json!({"maxTokens": 8,
                "superposed": {"temperature": 1.0, "ngramOrders": [3], "ngramWeights": [1.0], "tokenSample": 4}})),
        ];
    }
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    assert!(update || !cases[0].drafts.is_empty(), "empty fixture: run with UPDATE_FIXTURES=1");
    for case in &mut cases {
        let steps = run(&mut engine, &case.config);
        let live: Vec<Vec<u32>> = steps.iter().map(|s| s.record.live.iter().map(|n| n.token).collect()).collect();
        let last = steps.last().unwrap();
        let drafts: Vec<Vec<u32>> = last.drafts.iter().map(|d| d.tokens.clone()).collect();
        let texts: Vec<String> = last.drafts.iter().map(|d| d.text.clone()).collect();
        if update {
            (case.live, case.drafts, case.texts) = (live, drafts, texts);
        } else {
            assert_eq!(live, case.live, "{model}: {}", case.name);
            assert_eq!(drafts, case.drafts, "{model}: {}", case.name);
            assert_eq!(texts, case.texts, "{model}: {}", case.name);
        }
    }
    if update {
        let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(path, serde_json::to_string_pretty(&cases).unwrap() + "\n").unwrap();
    }
}

#[test]
fn the_draft_tree_is_consistent_with_the_final_drafts() {
    let mut engine = engine_with_store();
    for k in [1, 3, 5] {
        let steps = run(&mut engine, &serde_json::json!({"maxTokens": 16, "superposed": {"drafts": k}}));
        assert_eq!(steps.len(), 16);
        let mut nodes: HashMap<usize, &DraftNode> = HashMap::new();
        let mut previous_live: Vec<usize> = Vec::new();
        for (t, step) in steps.iter().enumerate() {
            assert_eq!(step.record.step, t);
            assert!(!step.record.live.is_empty() && step.record.live.len() <= k);
            let weights: Vec<f32> = step.record.live.iter().map(|n| n.weight).collect();
            assert!(weights.iter().all(|&w| w >= 0.0), "{weights:?}");
            assert!((weights.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{weights:?}");
            for node in step.record.live.iter().chain(&step.record.finished).chain(&step.record.pruned) {
                match node.parent {
                    None => assert_eq!(t, 0),
                    Some(parent) => {
                        assert!(previous_live.contains(&parent), "node {} extends a live draft", node.id);
                        assert_eq!(node.log_prob, nodes[&parent].log_prob + node.score);
                    }
                }
                assert!(nodes.insert(node.id, node).is_none(), "node ids are unique");
            }
            previous_live = step.record.live.iter().map(|n| n.id).collect();
        }
        let drafts = &steps.last().unwrap().drafts;
        assert_eq!(drafts.len(), k);
        for (i, draft) in drafts.iter().enumerate() {
            assert!(drafts[..i].iter().all(|other| other.tokens != draft.tokens), "drafts are distinct");
            let mut path = vec![nodes[&draft.node]];
            while let Some(parent) = path.last().unwrap().parent {
                path.push(nodes[&parent]);
            }
            path.reverse();
            assert_eq!(path.iter().map(|n| n.token).collect::<Vec<_>>(), draft.tokens);
            let summed: f64 = path.iter().map(|n| n.score).sum();
            assert!((summed - draft.log_prob).abs() < 1e-9, "{summed} vs {}", draft.log_prob);
            let perplexity = (-draft.log_prob / draft.tokens.len() as f64).exp();
            assert!((draft.perplexity - perplexity).abs() <= 1e-12 * perplexity);
            assert_eq!(draft.text, engine.tokenizer().decode(&draft.tokens).unwrap());
        }
        assert!(drafts.windows(2).all(|w| w[0].perplexity <= w[1].perplexity), "best first");
    }
}

#[test]
fn the_ngram_store_changes_the_drafts() {
    let mut engine = engine_with_store();
    let drafts = |engine: &mut Engine<TractModel>, alpha: f32| {
        // The tiny model is random: let each draft choose among many tokens, so that some
        // of them follow its context in the store's small corpus.
        let config = serde_json::json!({"maxTokens": 10, "superposed": {"alpha": alpha, "tokenSample": 64}});
        let steps = run(engine, &config);
        let known = steps.iter().flat_map(|s| &s.record.live).filter(|n| n.ngram_prob > 0.0).count();
        (steps.last().unwrap().drafts.iter().map(|d| d.tokens.clone()).collect::<Vec<_>>(), known)
    };
    let (with_ngrams, known) = drafts(&mut engine, 0.54);
    let (without, known_without) = drafts(&mut engine, 0.0);
    assert_ne!(with_ngrams, without);
    assert!(known > 0, "some draft tokens are steered by the store");
    assert_eq!(known_without, 0, "alpha 0 never looks the store up");
}

#[test]
fn the_committed_store_is_the_build_of_its_corpus() {
    let engine = engine();
    let mut builder = NgramBuilder::for_tokenizer(engine.tokenizer()).unwrap();
    builder.add_text(engine.tokenizer(), NGRAM_CORPUS).unwrap();
    let rebuilt = builder.build().unwrap().to_bytes();
    assert!(rebuilt == NGRAMS, "models/tiny/ngrams.bin is stale: rebuild it (see tests/common/tiny.rs)");
}

#[test]
fn bad_superposed_input_gives_clear_errors() {
    let mut engine = engine_with_store();
    let start_error = |engine: &mut Engine<TractModel>, superposed: serde_json::Value| {
        let config: GenerateConfig = serde_json::from_value(serde_json::json!({"superposed": superposed})).unwrap();
        block_on(engine.start(PROMPT, &config)).err().expect("refused").to_string()
    };
    assert!(start_error(&mut engine, serde_json::json!({"drafts": 0})).contains("superposed.drafts"));
    assert!(start_error(&mut engine, serde_json::json!({"alpha": 1.5})).contains("superposed.alpha"));
    assert!(start_error(&mut engine, serde_json::json!({"ngramOrders": [2, 7], "ngramWeights": [1, 1]}))
        .contains("superposed.ngramOrders"));

    let foreign = {
        let mut builder = NgramBuilder::new(engine.tokenizer().vocab_size(), 12345).unwrap();
        builder.add_document(&[1, 2, 3]).unwrap();
        builder.build().unwrap()
    };
    let err = engine.set_ngram_store(Some(foreign)).unwrap_err().to_string();
    assert!(err.contains("another tokenizer"), "{err}");
    assert!(NgramStore::from_bytes(&[]).unwrap_err().to_string().contains("not a valid n-gram store"));
    assert!(NgramStore::from_bytes(&NGRAMS[..NGRAMS.len() - 3]).is_err());

    engine.set_ngram_store(None).unwrap();
    let err = start_error(&mut engine, serde_json::json!({}));
    assert!(err.contains("needs an n-gram store"), "{err}");
    assert!(block_on(engine.start(PROMPT, &serde_json::from_value(serde_json::json!({"superposed": {"alpha": 0}})).unwrap())).is_ok());
}
