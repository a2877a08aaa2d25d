//! The native side of the browser benchmark (tests/bench/browser/run.mjs): the same prompt,
//! greedy config and protocol as the page, through the same Engine start/step path as the wasm
//! `Model`. Loads, runs one cold generation and prints a JSON line; then runs one warm generation
//! per line read on stdin (so the driver can alternate it with the browser's runs on a busy
//! machine), printing a JSON line each; at the end of input prints the medians and peak RSS.
//!
//!     yes | head -3 | cargo run --release --example bench_native -- PROMPT|--prompt-ids 1,2,3 [--model PATH] [--tokens N] [--backend cpu|webgpu] [--fallback-adapter]
//!
//! PATH: a `.gguf` file (default: models/smollm2-135m/model.gguf) or a folder holding
//! model.onnx (and the data files it names), with tokenizer.json and config.json beside it or in
//! the folder above (CPU only). `--backend webgpu` runs the GGUF on the
//! first GPU adapter (`--fallback-adapter`: the software one, lavapipe).

use pollster::block_on;
use decoding_playground::generate::{Engine, GenerateConfig};
use decoding_playground::sampling::SamplerConfig;
use decoding_playground::tokenizer::TextTokenizer;
use decoding_playground::model::auto::{AutoModel, Backend};
use decoding_playground::model::webgpu::GpuOptions;
use decoding_playground::model::onnx::{data_files, external_data_files};
use decoding_playground::model::weights::GgufModel;
use decoding_playground::model::ModelConfig;
use decoding_playground::TractModel;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut prompt = None;
    let mut prompt_ids: Option<Vec<u32>> = None;
    let mut path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/smollm2-135m/model.gguf");
    let mut max_tokens = 32;
    let mut backend = Backend::Cpu;
    let mut gpu = GpuOptions::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--backend" => {
                backend = match args.next().as_deref() {
                    Some("cpu") => Backend::Cpu,
                    Some("webgpu") => Backend::Webgpu,
                    _ => return Err("--backend is cpu or webgpu".into()),
                }
            }
            "--fallback-adapter" => gpu.force_fallback_adapter = true,
            "--model" => path = args.next().ok_or("--model needs a path")?.into(),
            "--tokens" => max_tokens = args.next().ok_or("--tokens needs a number")?.parse()?,
            "--prompt-ids" => {
                let ids = args.next().ok_or("--prompt-ids needs ids")?;
                prompt_ids = Some(ids.split(',').map(str::parse).collect::<std::result::Result<_, _>>()?);
            }
            _ => prompt = Some(arg),
        }
    }
    let read = |path: PathBuf| std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()));
    let (model, tokenizer, load_s) = if path.is_dir() {
        // An export's folder: model.onnx with the data files it names, and tokenizer.json and
        // config.json beside it or in the folder above (optimum/ under a model's folder).
        let beside = |name: &str| [path.join(name), path.join("..").join(name)].into_iter().find(|p| p.exists()).unwrap_or(path.join(name));
        let (onnx, tokenizer, config) = (read(path.join("model.onnx"))?, read(beside("tokenizer.json"))?, read(beside("config.json"))?);
        let names = external_data_files(onnx.as_slice())?;
        let data: Vec<(String, Vec<u8>)> = names.into_iter().map(|n| Ok((n.clone(), read(path.join(&n))?))).collect::<Result<_>>()?;
        let files: Vec<(&str, &[u8])> = data.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        let have_bytes = Instant::now();
        let config = ModelConfig::from_json(std::str::from_utf8(&config)?)?;
        let model = TractModel::from_buf_with_data(onnx.as_slice(), &mut data_files(&files), Some(&config))?;
        (AutoModel::cpu(model), TextTokenizer::from_bytes(&tokenizer)?, have_bytes.elapsed().as_secs_f64())
    } else {
        let gguf = read(path)?;
        let have_bytes = Instant::now();
        let GgufModel { weights, tokenizer } = GgufModel::read(gguf.as_slice())?;
        let model = block_on(AutoModel::load(weights, backend, &gpu))?;
        (model, tokenizer, have_bytes.elapsed().as_secs_f64())
    };
    let info = serde_json::to_string(&model.info())?;
    let weights = serde_json::to_string(model.weight_types())?;
    let mut engine = Engine::new(model, tokenizer)?;
    let prompt = match (prompt, prompt_ids) {
        (_, Some(ids)) => engine.tokenizer().decode(&ids)?,
        (Some(prompt), None) => prompt,
        (None, None) => return Err("give the prompt as an argument, or --prompt-ids".into()),
    };
    let prompt_tokens = engine.tokenizer().encode(&prompt)?.len();

    // Empty stop tokens: every run generates exactly max_tokens, so the runtimes compare.
    let config = GenerateConfig { max_tokens, stop_tokens: Some(vec![]), sampler: SamplerConfig::greedy(), ..Default::default() };
    // Seconds to the end of the prefill, to the first token, and from the prefill to the end.
    let mut generate = || -> Result<(f64, f64, f64)> {
        let start = Instant::now();
        let mut generation = block_on(engine.start(&prompt, &config))?;
        let prefilled = start.elapsed().as_secs_f64();
        block_on(engine.step(&mut generation))?;
        let first = start.elapsed().as_secs_f64();
        while block_on(engine.step(&mut generation))?.is_some() {}
        Ok((prefilled, first, start.elapsed().as_secs_f64() - prefilled))
    };
    let (_, first_s, _) = generate()?;
    println!("{{\"loadS\":{load_s:.3},\"firstTokenS\":{:.3},\"promptTokens\":{prompt_tokens},\"weightTypes\":{weights},\"backend\":{info}}}", load_s + first_s);

    let (mut prefill, mut decode) = (vec![], vec![]);
    for _ in std::io::stdin().lock().lines() {
        let (prefill_s, _, decode_s) = generate()?;
        prefill.push(prompt_tokens as f64 / prefill_s);
        // The first step samples the prefill's logits; each later step runs the model once.
        decode.push((max_tokens - 1) as f64 / decode_s);
        println!("{{\"prefillTokS\":{:.2},\"decodeTokS\":{:.2}}}", prefill.last().unwrap(), decode.last().unwrap());
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    // VmHWM: the peak resident set of this process, as the driver reads for Chromium's renderer.
    let peak_kb: f64 = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0); // 0: unknown (not Linux)
    println!(
        "{{\"prefillTokS\":{:.2},\"decodeTokS\":{:.2},\"peakRssBytes\":{}}}",
        median(prefill),
        median(decode),
        peak_kb * 1024.0
    );
    Ok(())
}
