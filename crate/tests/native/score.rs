//! Scoring a text and reusing the KV cache's prefix, on the tiny model: `truncate` against a
//! fresh run on every backend, the Engine's prefix reuse against a fresh engine, and `score`
//! against an independent teacher-forced pass (`prefill_all_logits`), and where BOS goes.
use crate::common;

use common::tiny::{gguf_engine, GGUF, NGRAM_CORPUS, PROMPT};
use decoding_playground::generate::{Engine, GenerateConfig};
use decoding_playground::model::auto::{AutoModel, Backend};
use decoding_playground::model::gguf::{GgufReader, MetaValue};
use decoding_playground::model::quant::Kernel;
use decoding_playground::model::webgpu::GpuOptions;
use decoding_playground::model::weights::GgufModel;
use decoding_playground::score::{ScoreConfig, SCORE_CHUNK};
use decoding_playground::tokenizer::TextTokenizer;
use decoding_playground::{Error, LanguageModel, TractModel};
use pollster::block_on;

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// `tolerance`: f32 rounding (1e-4) where activations stay f32; with the fast CPU kernels, which
/// quantise each row's activations to int16, the bound they keep to the float64 reference
/// (3e-3): tract's attention may sum one chunk in another order than another (it picks its
/// kernels by CPU; 2.4e-4 on an AVX2-only AMD EPYC), and a row may land on the next step.
fn truncate_then_refeed_equals_a_fresh_run(model: &mut impl LanguageModel, name: &str, tolerance: f32) {
    let ids: Vec<u32> = (0..40).map(|i| (i * 29 + 3) % 512).collect();
    model.reset();
    let fresh = block_on(model.prefill(&ids[..30])).unwrap();
    model.reset();
    block_on(model.prefill(&ids[..20])).unwrap();
    block_on(model.step_token(999 % 512)).unwrap();
    model.truncate(12).unwrap();
    assert_eq!(model.position(), 12);
    let again = block_on(model.prefill(&ids[12..30])).unwrap();
    assert!(max_diff(&again, &fresh) < tolerance, "{name}: truncate(12) + re-feed vs fresh: {}", max_diff(&again, &fresh));
    assert!(matches!(model.truncate(31), Err(Error::InvalidParameter { name: "truncate", .. })), "{name}");
    assert_eq!(model.position(), 30, "{name}: a refused truncate changes nothing");
    model.truncate(0).unwrap();
    assert_eq!(model.position(), 0);
    let after_zero = block_on(model.prefill(&ids[..30])).unwrap();
    assert!(max_diff(&after_zero, &fresh) < tolerance, "{name}: truncate(0) is a reset");
}

#[test]
fn truncate_then_refeed_equals_a_fresh_run_on_every_backend() {
    for (kernel, tolerance) in [(Kernel::F32Activations, 1e-4), (Kernel::Simd, 3e-3)] {
        let (mut tract, _) = decoding_playground::TractModel::from_gguf_with_kernel(GGUF, kernel).unwrap();
        truncate_then_refeed_equals_a_fresh_run(&mut tract, &format!("tract, {kernel:?}"), tolerance);
    }
    let options = GpuOptions { force_fallback_adapter: true, ..Default::default() };
    for backend in [Backend::Webgpu, Backend::Auto] {
        let GgufModel { weights, .. } = GgufModel::read(GGUF).unwrap();
        let mut model = block_on(AutoModel::load(weights, backend, &options)).unwrap();
        truncate_then_refeed_equals_a_fresh_run(&mut model, &format!("{backend:?}"), 1e-4);
    }
}

#[test]
fn a_prompt_sharing_a_prefix_feeds_only_the_rest_and_gives_a_fresh_engines_tokens() {
    let config: GenerateConfig = serde_json::from_value(serde_json::json!({"maxTokens": 8, "sampler": {"seed": 3}})).unwrap();
    let longer = format!("{PROMPT} girl who lived in a house");
    let run = |engine: &mut decoding_playground::generate::Engine<_>, prompt: &str| {
        let mut generation = block_on(engine.start(prompt, &config)).unwrap();
        let reused = generation.reused_tokens();
        let mut tokens = Vec::new();
        while let Some(step) = block_on(engine.step(&mut generation)).unwrap() {
            tokens.push(step.as_token().unwrap().record.token);
        }
        (reused, tokens)
    };
    let mut warm = gguf_engine();
    warm.set_reuse_prefix(true);
    let (first, _) = run(&mut warm, PROMPT);
    assert_eq!(first, 0, "nothing cached yet");
    let prompt_ids = warm.tokenizer().encode(PROMPT).unwrap();
    let (reused, tokens) = run(&mut warm, &longer);
    let shared = prompt_ids.iter().zip(warm.tokenizer().encode(&longer).unwrap()).take_while(|(a, b)| **a == *b).count();
    assert!(shared >= 5 && reused == shared, "reused {reused} of the {shared} shared prompt tokens");
    let (_, fresh) = run(&mut gguf_engine(), &longer);
    assert_eq!(tokens, fresh);
    // The same prompt again: all but its last token (fed for the logits) are reused.
    let (again, tokens_again) = run(&mut warm, &longer);
    assert_eq!(again, warm.tokenizer().encode(&longer).unwrap().len() - 1);
    assert_eq!(tokens_again, fresh);
    // Off (the default), nothing is reused.
    warm.set_reuse_prefix(false);
    assert_eq!(run(&mut warm, &longer).0, 0);
}

#[test]
fn score_matches_an_independent_teacher_forced_pass() {
    let mut engine = gguf_engine();
    let text = NGRAM_CORPUS.split("\n\n").next().unwrap();
    let ids = engine.tokenizer().encode(text).unwrap();
    assert!(ids.len() > 2 * SCORE_CHUNK, "{} tokens: several chunks", ids.len());
    let result = block_on(engine.score(text, &ScoreConfig::default())).unwrap();
    assert_eq!(result.tokens.iter().map(|t| t.token).collect::<Vec<_>>(), ids);
    assert_eq!((result.context_tokens, result.scored), (0, ids.len() - 1));
    assert_eq!(result.tokens[0].prob, None, "the first token has nothing before it");
    assert_eq!(result.tokens.iter().map(|t| t.text.as_str()).collect::<String>(), text);

    let model = engine.model_mut();
    model.reset();
    let logits = block_on(model.prefill_all_logits(&ids)).unwrap();
    let vocab = model.vocab_size();
    let mut total_bits = 0.0;
    for (i, scored) in result.tokens.iter().enumerate().skip(1) {
        let row = &logits[(i - 1) * vocab..i * vocab];
        let max = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let ln_z = row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln() + max;
        let bits = (ln_z - row[ids[i] as usize] as f64) / std::f64::consts::LN_2;
        total_bits += bits;
        assert!((scored.surprise_bits.unwrap() as f64 - bits).abs() < 1e-3, "token {i}: {scored:?} vs {bits} bits");
        // One prefill and the score's chunks round differently by ~1e-6: a logit that close to
        // the actual token's may rank on either side of it.
        let target = row[ids[i] as usize];
        let above = |margin: f32| 1 + row.iter().filter(|&&x| x > target + margin).count() as u32;
        let rank = scored.rank.unwrap();
        assert!((above(1e-4)..=above(-1e-4)).contains(&rank), "token {i}: rank {rank}, expected {}", above(0.0));
        assert_eq!(scored.top.len(), 10);
        assert!(scored.top.windows(2).all(|w| w[0].prob >= w[1].prob));
        assert_eq!(scored.top[0].token as usize, (0..vocab).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap());
    }
    let perplexity = (total_bits / (ids.len() - 1) as f64).exp2();
    assert!((result.perplexity / perplexity - 1.0).abs() < 1e-4, "{} vs {perplexity}", result.perplexity);
}

#[test]
fn score_after_a_context_scores_the_text_alone_given_it() {
    let mut engine = gguf_engine();
    let (context, text) = (PROMPT, " girl who lived by the sea.");
    let with = block_on(engine.score(text, &ScoreConfig { context: context.into(), top_alternatives: 3 })).unwrap();
    let context_ids = engine.tokenizer().encode(context).unwrap();
    let text_ids = engine.tokenizer().encode(text).unwrap();
    assert_eq!((with.context_tokens, with.scored, with.tokens.len()), (context_ids.len(), text_ids.len(), text_ids.len()));
    assert!(with.tokens.iter().all(|t| t.prob.is_some() && t.top.len() == 3));
    // ln p of the text's tokens, from log_probs over the whole id sequence.
    let all = [&context_ids[..], &text_ids[..]].concat();
    let ln_p = block_on(engine.log_probs(&all)).unwrap();
    for (t, &lp) in with.tokens.iter().zip(&ln_p[context_ids.len() - 1..]) {
        assert!((t.surprise_bits.unwrap() as f64 + lp / std::f64::consts::LN_2).abs() < 1e-3);
    }
}

#[test]
fn bad_score_input_is_a_clear_error() {
    let mut engine = gguf_engine();
    let err = |text: &str, config: ScoreConfig, engine: &mut decoding_playground::generate::Engine<_>| {
        block_on(engine.score(text, &config)).unwrap_err().to_string()
    };
    assert!(err("", ScoreConfig::default(), &mut engine).starts_with("text must be at least two tokens"));
    assert!(err("a", ScoreConfig::default(), &mut engine).contains("1 token(s) and no context"));
    let long = "a b ".repeat(engine.model().context_length());
    assert!(err(&long, ScoreConfig::default(), &mut engine).contains("at most the model's context length"));
    assert!(err(PROMPT, ScoreConfig { top_alternatives: 101, ..Default::default() }, &mut engine).starts_with("topAlternatives must be at most 100"));
    // A single token scores after a context.
    assert_eq!(block_on(engine.score("a", &ScoreConfig { context: PROMPT.into(), top_alternatives: 0 })).unwrap().scored, 1);
}

#[test]
fn a_model_that_adds_bos_gets_it_before_the_prompt_and_the_scored_text() {
    let (model, _) = TractModel::from_gguf(GGUF).unwrap();
    let mut header = GgufReader::new(GGUF).unwrap().into_header();
    header.metadata.insert("tokenizer.ggml.add_bos_token".into(), MetaValue::Bool(true));
    let mut engine = Engine::new(model, TextTokenizer::from_gguf(&header).unwrap()).unwrap();
    let ids = engine.tokenizer().encode(PROMPT).unwrap();
    let generation = block_on(engine.start(PROMPT, &GenerateConfig::default())).unwrap();
    assert_eq!(generation.prompt_tokens(), ids.len() + 1);
    // Without a context, BOS is the context: every token of the text is scored.
    let scored = block_on(engine.score(PROMPT, &ScoreConfig::default())).unwrap();
    assert_eq!((scored.context_tokens, scored.scored), (1, ids.len()));
}
