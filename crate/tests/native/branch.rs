//! Branches: a generation that continues an earlier run from one of its positions takes the
//! run's prefix from the cache rows the engine keeps, and computes what the run would have.
use crate::common;

use common::tiny::PROMPT;
use decoding_playground::generate::{Engine, GenerateConfig, Step};
use decoding_playground::{LanguageModel, SamplerConfig};
use pollster::block_on;

fn tokens(steps: &[Step]) -> Vec<u32> {
    steps.iter().map(|s| s.as_token().expect("a sampled step").record.token).collect()
}

fn run<M: LanguageModel>(engine: &mut Engine<M>, after: &[u32], config: &GenerateConfig) -> Vec<u32> {
    let mut steps = Vec::new();
    block_on(engine.run_after(PROMPT, after, config, async |_, step| {
        steps.push(step);
        std::ops::ControlFlow::Continue(())
    }))
    .unwrap();
    tokens(&steps)
}

fn prompt_len<M: LanguageModel>(engine: &Engine<M>) -> usize {
    engine.tokenizer().encode_with_special(PROMPT).unwrap().len()
}

#[test]
fn a_branch_on_the_runs_own_token_goes_on_as_the_run_did_without_computing_its_prefix() {
    for (name, engine, ..) in common::tiny::models() {
        let mut engine = engine();
        let greedy = GenerateConfig { max_tokens: 30, stop_tokens: Some(vec![]), sampler: SamplerConfig::greedy(), ..Default::default() };
        let whole = run(&mut engine, &[], &greedy);
        let prompt = prompt_len(&engine);
        for at in [20, 3, 11] {
            // Another branch first, from the prompt's end: the cache no longer holds the run.
            let short = GenerateConfig { max_tokens: 5, ..greedy.clone() };
            run(&mut engine, &[(whole[0] + 1) % 60], &short);
            let config = GenerateConfig { max_tokens: 30 - at - 1, ..greedy.clone() };
            let generation = block_on(engine.start_after(PROMPT, &whole[..=at], &config)).unwrap();
            // All but the branch's last token came from the kept rows.
            assert_eq!(generation.reused_tokens(), prompt + at, "{name}: fork at {at}");
            assert_eq!(run(&mut engine, &whole[..=at], &config), whole[at + 1..], "{name}: fork at {at}");
        }
    }
}

#[test]
fn a_branch_from_kept_rows_samples_what_one_computed_from_scratch_does() {
    for (name, engine, ..) in common::tiny::models() {
        let config = GenerateConfig { max_tokens: 24, stop_tokens: Some(vec![]), sampler: SamplerConfig { seed: 7, temperature: 1.2, ..Default::default() }, ..Default::default() };
        let mut kept = engine();
        let whole = run(&mut kept, &[], &config);
        let mut scratch = engine();
        scratch.set_prefix_budget(0);
        for at in [15, 2, 9] {
            let branch: Vec<u32> = whole[..at].iter().copied().chain([(whole[at] + 1) % 60]).collect();
            let from_rows = run(&mut kept, &branch, &config);
            let computed = run(&mut scratch, &branch, &config);
            assert_eq!(from_rows, computed, "{name}: fork at {at}");
        }
        // One run and three branches of 1 + 24 tokens: the shared prefixes are held once.
        let (bytes, positions) = kept.prefix_store_size();
        let prompt = prompt_len(&kept);
        assert!(positions <= prompt + 24 + 3 * 25, "{name}: {positions} positions kept");
        assert!(bytes > 0 && scratch.prefix_store_size() == (0, 0));
    }
}

#[test]
fn a_branch_refuses_a_token_outside_the_vocabulary_and_the_engine_goes_on() {
    let mut engine = common::tiny::engine();
    let config = GenerateConfig { max_tokens: 4, ..Default::default() };
    let vocab = engine.model().vocab_size() as u32;
    let error = block_on(engine.start_after(PROMPT, &[1, vocab], &config)).err().unwrap();
    assert!(error.to_string().contains(&vocab.to_string()), "{error}");
    assert_eq!(run(&mut engine, &[1], &config).len(), 4);
}
