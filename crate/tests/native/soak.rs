//! A long run on SmolLM2: 4096 tokens in one generation, natively (the npm package's
//! `soak.test.mjs` does the same in wasm). Prints tok/s and resident memory at positions 1, 1k,
//! 2k and 4k (figures, no timing assertions) and checks that only the KV cache grows, by what
//! its size predicts, and that the run ends as asked, without an error in mid-stream.
//!
//! Run by hand, alone in its process, since the other SmolLM2 tests, running in parallel
//! threads of one process, would add their models to the resident memory measured here:
//! `cargo test --release --test native soak:: -- --ignored --nocapture`. scripts/test.sh runs the soak
//! once, in wasm (`soak.test.mjs`), as users run the engine.
use crate::common;

use common::smollm2::model_file;
use decoding_playground::generate::{Engine, FinishReason, GenerateConfig};
use decoding_playground::model::LanguageModel;
use decoding_playground::sampling::SamplerConfig;
use decoding_playground::TractModel;
use pollster::block_on;
use std::time::Instant;

const TOKENS: usize = 4096;

/// This process's resident memory.
fn resident_bytes() -> usize {
    common::process_memory("VmRSS").expect("/proc/self/status reports VmRSS")
}

#[test]
#[ignore = "minutes long, and its memory figures need a process of its own: run it alone, by hand"]
fn a_4096_token_run_grows_only_by_its_kv_cache() {
    let Some(path) = model_file("model.gguf") else { return };
    let (model, tokenizer) = TractModel::from_gguf(std::fs::read(path).unwrap().as_slice()).unwrap();
    let c = model.config();
    let kv_per_token = 2 * c.num_layers * c.num_key_value_heads * c.head_dim * std::mem::size_of::<f32>();
    let mut engine = Engine::new(model, tokenizer).unwrap();
    // No stop tokens: the run must go the whole way.
    let config = GenerateConfig { max_tokens: TOKENS, stop_tokens: Some(vec![]), sampler: SamplerConfig { seed: 7, ..Default::default() }, ..Default::default() };
    let mut generation = block_on(engine.start("Once upon a time, there was a little", &config)).unwrap();
    let prompt = generation.prompt_tokens();
    let (mut steps, mut window, mut clock) = (0, 0, Instant::now());
    let mut first_rss = 0;
    let mut last_finish = None;
    println!("SmolLM2, one run of {TOKENS} tokens after a {prompt}-token prompt; KV cache {kv_per_token} bytes a position");
    println!("| position | tok/s since the last row | resident | growth since position 1 | KV cache held |");
    println!("|---|---|---|---|---|");
    while let Some(step) = block_on(engine.step(&mut generation)).unwrap() {
        steps += 1;
        last_finish = step.as_token().unwrap().finish;
        if [1, 1024, 2048, TOKENS].contains(&steps) {
            let rate = (steps - window) as f64 / clock.elapsed().as_secs_f64();
            let rss = resident_bytes();
            if steps == 1 {
                first_rss = rss;
            }
            let mb = |b: usize| b as f64 / 1e6;
            let held = (prompt + steps - 1) * kv_per_token;
            println!("| {steps} | {rate:.1} | {:.0} MB | {:+.0} MB | {:.0} MB |", mb(rss), mb(rss.saturating_sub(first_rss)), mb(held));
            (window, clock) = (steps, Instant::now());
        }
    }
    assert_eq!(steps, TOKENS);
    assert_eq!(last_finish, Some(FinishReason::Length));
    assert_eq!(engine.model().position(), prompt + TOKENS - 1, "every token fed but the last");
    // The cache grows by one position a token; tract builds each step's cache as a new tensor
    // from the old one, so two can be alive at once. Anything beyond that is a leak.
    let growth = resident_bytes().saturating_sub(first_rss);
    let bound = 2 * TOKENS * kv_per_token + (32 << 20);
    println!("growth {:.0} MB over {TOKENS} tokens, bound {:.0} MB (2 × the KV cache + 32 MB)", growth as f64 / 1e6, bound as f64 / 1e6);
    assert!(growth <= bound, "resident memory grew by {growth} bytes over {TOKENS} tokens; the KV cache explains at most {bound}");
}
