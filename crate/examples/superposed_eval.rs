//! Superposed decoding on SmolLM2 against nucleus sampling and greedy: cost and quality,
//! measured the paper's way.
//!
//!     cargo run --release --example superposed_eval -- [--prompts N] [--tokens N]
//!
//! Cost: wall-clock of one superposed run of k drafts against k independent nucleus
//! (top-p 0.9) runs, for k = 3 and 5. Quality: every continuation is rescored by a separate
//! teacher-forced pass of the model (perplexity of the continuation given the prompt), and
//! diversity is distinct-n over each method's k outputs for a prompt.

use pollster::block_on;
use decoding_playground::generate::{Engine, GenerateConfig, Step};
use decoding_playground::ngram::NgramStore;
use decoding_playground::superposed::SuperposedConfig;
use decoding_playground::tokenizer::TextTokenizer;
use decoding_playground::{LanguageModel, SamplerConfig, TractModel};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

/// Fixed prompts: plain continuations in several registers.
const PROMPTS: [&str; 12] = [
    "Once upon a time, there was a little",
    "The history of the city begins in",
    "The best way to learn a new language is",
    "Scientists have discovered that the human brain",
    "In the morning, the old fisherman walked down to",
    "The main reason why people enjoy travelling is",
    "To make a good cup of tea, you should first",
    "The capital of France is a city that",
    "When the storm finally passed, the villagers",
    "Computers have changed the way we",
    "My favourite season of the year is",
    "The museum's new exhibition shows",
];

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut prompts, mut max_tokens) = (PROMPTS.len(), 32);
    while let Some(arg) = args.next() {
        let mut value = || -> Result<usize> { Ok(args.next().ok_or("missing value")?.parse()?) };
        match arg.as_str() {
            "--prompts" => prompts = value()?.clamp(1, PROMPTS.len()),
            "--tokens" => max_tokens = value()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models");
    let read = |path: &str| std::fs::read(models.join(path)).map_err(|e| format!("models/{path}: {e} (run scripts/setup.sh)"));
    let (model, tokenizer) = TractModel::from_gguf(read("smollm2-135m/model.gguf")?.as_slice())?;
    let mut engine = Engine::new(model, tokenizer)?;
    let store = NgramStore::from_bytes(&read("ngrams/default.ngram")?)?;
    println!("n-gram store: {} tokens, {:.1} MB", store.len(), store.memory_bytes() as f64 / 1e6);
    print_lookup_speed(&store, engine.tokenizer())?;
    engine.set_ngram_store(Some(store))?;

    println!("\n## Cost: one superposed run of k drafts against k nucleus runs ({max_tokens} tokens each)");
    for k in [3, 5] {
        let (mut superposed_s, mut nucleus_s) = (0.0, 0.0);
        for prompt in &PROMPTS[..prompts.min(3)] {
            superposed_s += timed(|| superposed(&mut engine, prompt, max_tokens, k, 0.54))?.0;
            nucleus_s += timed(|| nucleus(&mut engine, prompt, max_tokens, k))?.0;
        }
        println!(
            "k = {k}: superposed {superposed_s:.2} s, {k} nucleus runs {nucleus_s:.2} s -> speed-up {:.2}x (paper >= 2.44x, goal >= 2.7x)",
            nucleus_s / superposed_s
        );
    }

    println!("\n## Quality over {prompts} prompts: teacher-forced perplexity (lower is better) and diversity");
    let methods = ["superposed k3 (alpha 0.54)", "superposed k3 (alpha 0, no n-grams)", "nucleus top-p 0.9 x3", "greedy"];
    let mut rows: Vec<Scores> = methods.iter().map(|_| Scores::default()).collect();
    for (p, prompt) in PROMPTS[..prompts].iter().enumerate() {
        let outputs = [
            superposed(&mut engine, prompt, max_tokens, 3, 0.54)?,
            superposed(&mut engine, prompt, max_tokens, 3, 0.0)?,
            nucleus(&mut engine, prompt, max_tokens, 3)?,
            vec![sampled(&mut engine, prompt, max_tokens, SamplerConfig::greedy())?],
        ];
        for (row, continuations) in rows.iter_mut().zip(&outputs) {
            let ppls: Vec<f64> =
                continuations.iter().map(|c| rescore(&mut engine, prompt, c)).collect::<Result<_>>()?;
            row.add(&ppls, continuations);
        }
        if p < 2 {
            println!("\n{prompt} …");
            for (name, continuations) in methods.iter().zip(&outputs) {
                println!("  [{name}] {:?}", engine.tokenizer().decode(&continuations[0])?);
            }
        }
    }
    println!("\n| method | best-of-k ppl | mean ppl | distinct-1 | distinct-2 |");
    println!("|---|---|---|---|---|");
    for (name, row) in methods.iter().zip(&rows) {
        let n = row.prompts as f64;
        println!(
            "| {name} | {:.2} | {:.2} | {:.3} | {:.3} |",
            row.best / n,
            row.mean / n,
            row.distinct1 / n,
            row.distinct2 / n
        );
    }
    println!("(distinct-n: unique n-grams / all n-grams over a prompt's k outputs; greedy has one output)");
    Ok(())
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(f64, T)> {
    let start = Instant::now();
    let value = f()?;
    Ok((start.elapsed().as_secs_f64(), value))
}

/// The k final drafts' ids, without stop tokens.
fn superposed(engine: &mut Engine<TractModel>, prompt: &str, max_tokens: usize, k: usize, alpha: f32) -> Result<Vec<Vec<u32>>> {
    let config = GenerateConfig {
        max_tokens,
        superposed: Some(SuperposedConfig { drafts: k, alpha, ..Default::default() }),
        ..Default::default()
    };
    let steps = block_on(engine.generate(prompt, &config, |_| {}, || false))?;
    let last = steps.last().and_then(Step::as_drafts).ok_or("no superposed step")?;
    Ok(last.drafts.iter().map(|d| d.tokens[..d.tokens.len() - d.stopped as usize].to_vec()).collect())
}

fn nucleus(engine: &mut Engine<TractModel>, prompt: &str, max_tokens: usize, k: usize) -> Result<Vec<Vec<u32>>> {
    (0..k as u64)
        .map(|seed| {
            let config = SamplerConfig { seed, top_p: Some(0.9), ..SamplerConfig::temperature(1.0) };
            sampled(engine, prompt, max_tokens, config)
        })
        .collect()
}

fn sampled(engine: &mut Engine<TractModel>, prompt: &str, max_tokens: usize, sampler: SamplerConfig) -> Result<Vec<u32>> {
    let config = GenerateConfig { max_tokens, sampler, ..Default::default() };
    let steps = block_on(engine.generate(prompt, &config, |_| {}, || false))?;
    Ok(steps
        .iter()
        .filter_map(Step::as_token)
        .filter(|s| s.finish != Some(decoding_playground::generate::FinishReason::Stop))
        .map(|s| s.record.token)
        .collect())
}

/// Perplexity of `continuation` after `prompt` under the model, in one teacher-forced pass.
fn rescore(engine: &mut Engine<TractModel>, prompt: &str, continuation: &[u32]) -> Result<f64> {
    if continuation.is_empty() {
        return Ok(f64::NAN);
    }
    let prompt_ids = engine.tokenizer().encode(prompt)?;
    let ids = [&prompt_ids[..], continuation].concat();
    let vocab = engine.model().vocab_size();
    engine.model_mut().reset();
    let logits = block_on(engine.model_mut().prefill_all_logits(&ids))?;
    let nll: f64 = continuation
        .iter()
        .enumerate()
        .map(|(i, &token)| {
            let row = &logits[(prompt_ids.len() - 1 + i) * vocab..][..vocab];
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
            let ln_z = row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln() + max;
            ln_z - row[token as usize] as f64
        })
        .sum();
    Ok((nll / continuation.len() as f64).exp())
}

#[derive(Default)]
struct Scores {
    prompts: usize,
    best: f64,
    mean: f64,
    distinct1: f64,
    distinct2: f64,
}

impl Scores {
    fn add(&mut self, ppls: &[f64], continuations: &[Vec<u32>]) {
        let finite: Vec<f64> = ppls.iter().copied().filter(|p| p.is_finite()).collect();
        self.prompts += 1;
        self.best += finite.iter().copied().fold(f64::INFINITY, f64::min);
        self.mean += finite.iter().sum::<f64>() / finite.len() as f64;
        self.distinct1 += distinct(continuations, 1);
        self.distinct2 += distinct(continuations, 2);
    }
}

/// Unique n-grams over all n-grams in a set of outputs.
fn distinct(outputs: &[Vec<u32>], n: usize) -> f64 {
    let all: Vec<&[u32]> = outputs.iter().flat_map(|o| o.windows(n)).collect();
    all.iter().collect::<HashSet<_>>().len() as f64 / all.len().max(1) as f64
}

/// Interpolated n-gram lookups per second with superposed decoding's default orders, on
/// contexts drawn from real text.
fn print_lookup_speed(store: &NgramStore, tokenizer: &TextTokenizer) -> Result<()> {
    let text = PROMPTS.join(" ");
    let history = tokenizer.encode(&text)?;
    let candidates: Vec<u32> = (0..9).map(|i| history[i * 3 % history.len()]).collect();
    let config = SuperposedConfig::default();
    let mut out = vec![0.0; candidates.len()];
    let rounds = 2000;
    let start = Instant::now();
    for r in 0..rounds {
        let end = 5 + r % (history.len() - 5);
        store.mixture(&history[..end], &config.ngram_orders, &config.ngram_weights, &candidates, &mut out);
    }
    let per_second = (rounds * candidates.len()) as f64 / start.elapsed().as_secs_f64();
    println!(
        "n-gram lookups: {:.0} candidate probabilities/s (each mixes orders 2-6), {:.0} draft-steps/s at 9 candidates",
        per_second,
        per_second / candidates.len() as f64
    );
    Ok(())
}
