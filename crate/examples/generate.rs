//! Generates with SmolLM2 (or any model folder from models/) natively, streaming the text and
//! printing what each strategy's steps saw.
//!
//!     cargo run --release --example generate -- [PROMPT] [--model DIR] [--tokens N]

use pollster::block_on;
use decoding_playground::generate::{Engine, GenerateConfig, GeneratedStep};
use decoding_playground::ngram::NgramStore;
use decoding_playground::superposed::SuperposedConfig;
use decoding_playground::sampling::{PenaltyConfig, SamplerConfig};
use decoding_playground::tokenizer::TextTokenizer;
use decoding_playground::TractModel;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut prompt = "Once upon a time, there was a little".to_string();
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/smollm2-135m");
    let mut max_tokens = 48;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--model" => dir = args.next().ok_or("--model needs a folder")?.into(),
            "--tokens" => max_tokens = args.next().ok_or("--tokens needs a number")?.parse()?,
            _ => prompt = arg,
        }
    }
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e} (run models/build.sh)", dir.join(name).display()));
    let start = Instant::now();
    let model = TractModel::from_bytes_with_config_json(&read("model.onnx")?, &String::from_utf8(read("config.json")?)?)?;
    let mut engine = Engine::new(model, TextTokenizer::from_bytes(&read("tokenizer.json")?)?)?;
    println!("loaded {} in {:.1} s\n", dir.display(), start.elapsed().as_secs_f64());

    let only = |f: fn(&mut SamplerConfig)| {
        let mut config = SamplerConfig { seed: 42, ..SamplerConfig::temperature(1.0) };
        f(&mut config);
        config
    };
    let strategies = [
        ("greedy", SamplerConfig::greedy()),
        ("default: top-k 40 → top-p 0.95 → T 0.8", SamplerConfig { seed: 42, ..Default::default() }),
        ("top-k 3", only(|c| c.top_k = Some(3))),
        ("top-p 0.9", only(|c| c.top_p = Some(0.9))),
        ("min-p 0.1", only(|c| c.min_p = Some(0.1))),
        ("typical 0.9", only(|c| c.typical_p = Some(0.9))),
        ("repetition penalty 1.3", SamplerConfig {
            seed: 42,
            penalties: PenaltyConfig { repetition: 1.3, ..Default::default() },
            ..Default::default()
        }),
        ("mirostat v1, τ 3", SamplerConfig { seed: 42, ..SamplerConfig::mirostat(1, 3.0, 0.1) }),
        ("mirostat v2, τ 3", SamplerConfig { seed: 42, ..SamplerConfig::mirostat(2, 3.0, 0.1) }),
    ];
    for (name, sampler) in strategies {
        println!("── {name}");
        print!("{prompt}");
        let config = GenerateConfig { max_tokens, sampler, ..Default::default() };
        let start = Instant::now();
        let steps: Vec<GeneratedStep> = block_on(engine.generate(&prompt, &config, |step| {
                print!("{}", step.as_token().map_or("", |s| s.text.as_str()));
                let _ = std::io::stdout().flush();
            }, || false))?
            .into_iter()
            .filter_map(|s| s.as_token().cloned())
            .collect();
        let seconds = start.elapsed().as_secs_f64();
        let last = steps.last().ok_or("no steps")?;
        let mean = |f: fn(&GeneratedStep) -> f64| steps.iter().map(f).sum::<f64>() / steps.len() as f64;
        println!(
            "\n   {} tokens, {:.1} tok/s incl. prefill | mean surprise {:.2} bits, entropy {:.2} bits, ppl {:.1}, kept {:.1}{}\n",
            steps.len(),
            steps.len() as f64 / seconds,
            mean(|s| s.record.surprise_bits as f64),
            mean(|s| s.record.entropy_bits as f64),
            last.record.perplexity,
            mean(|s| s.record.kept as f64),
            last.record.mu.map_or(String::new(), |mu| format!(", final μ {mu:.2}")),
        );
    }

    // Superposed decoding: k drafts from one forward pass per step, kept coherent by n-grams.
    let store_path = dir.join("../ngrams/default.ngram");
    let superposed = match std::fs::read(&store_path) {
        Ok(bytes) => {
            engine.set_ngram_store(Some(NgramStore::from_bytes(&bytes)?))?;
            SuperposedConfig::default()
        }
        Err(e) => {
            println!("(no n-gram store at {}: {e}; superposed decoding runs with alpha 0)", store_path.display());
            SuperposedConfig { alpha: 0.0, ..Default::default() }
        }
    };
    println!("── superposed decoding, k {}, alpha {}", superposed.drafts, superposed.alpha);
    let config = GenerateConfig { max_tokens, superposed: Some(superposed), ..Default::default() };
    let start = Instant::now();
    let steps = block_on(engine.generate(&prompt, &config, |_| {}, || false))?;
    let seconds = start.elapsed().as_secs_f64();
    let last = steps.last().and_then(|s| s.as_drafts()).ok_or("no steps")?;
    for (i, draft) in last.drafts.iter().enumerate() {
        println!("{}. (ppl {:.2}) {prompt}{}", i + 1, draft.perplexity, draft.text);
    }
    println!("   {} steps in {:.1} s, {:.1} steps/s incl. prefill\n", steps.len(), seconds, steps.len() as f64 / seconds);
    Ok(())
}
