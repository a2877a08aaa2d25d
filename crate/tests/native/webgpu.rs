//! The WebGPU backend natively, on Mesa's lavapipe (`force_fallback_adapter`; scripts/setup.sh
//! installs `mesa-vulkan-drivers`): the whole forward pass against tract on the tiny GGUF, the
//! committed fixtures replayed on the GPU, the context limit, and the automatic backend's choice
//! and its move to the CPU when the device is lost mid-run.
use crate::common;

use common::logit_agreement;
use common::tiny::{GGUF, GGUF_GENERATION_FIXTURE, GGUF_SUPERPOSED_FIXTURE, NGRAMS, PROMPT};
use decoding_playground::generate::{Engine, GenerateConfig, Step};
use decoding_playground::model::auto::{AutoModel, Backend};
use decoding_playground::model::webgpu::{GpuOptions, WebGpuModel, MAX_CHUNK};
use decoding_playground::model::weights::GgufModel;
use decoding_playground::ngram::NgramStore;
use decoding_playground::model::CacheRows;
use decoding_playground::{Error, LanguageModel, TractModel};
use pollster::block_on;

fn lavapipe() -> GpuOptions {
    GpuOptions { force_fallback_adapter: true, ..Default::default() }
}

fn gpu_model(options: &GpuOptions) -> WebGpuModel {
    block_on(WebGpuModel::from_gguf(GGUF, options)).expect("a WebGPU adapter; natively Mesa's lavapipe (apt-get install mesa-vulkan-drivers)").0
}

fn ids() -> Vec<u32> {
    // More than one submit's worth, so that the chunking is exercised.
    (0..MAX_CHUNK as u32 + 13).map(|i| (i * 37 + 5) % 512).collect()
}

#[test]
fn the_forward_pass_matches_tract_on_the_tiny_gguf() {
    let mut gpu = gpu_model(&lavapipe());
    let (mut cpu, _) = TractModel::from_gguf(GGUF).unwrap();
    let ids = ids();
    let gpu_logits = block_on(gpu.prefill_all_logits(&ids)).unwrap();
    let cpu_logits = block_on(cpu.prefill_all_logits(&ids)).unwrap();
    let (diff, agree) = logit_agreement(&gpu_logits, &cpu_logits, 512);
    let rows = ids.len();
    println!("tiny GGUF, WebGPU ({}) vs tract: max |Δlogit| {diff:.2e}, top-10 agreement {agree}/{rows}", gpu.adapter().name);
    // tract quantises activations to int16 for the quantised products; the GPU keeps f32.
    assert!(diff < 5e-3, "max |Δlogit| {diff}");
    assert!(agree + 1 >= rows, "top-10 agreement {agree}/{rows}");
    assert_eq!(gpu.position(), ids.len());
}

#[test]
fn incremental_steps_equal_one_prefill_on_the_gpu() {
    let mut gpu = gpu_model(&lavapipe());
    let ids = ids();
    let full = block_on(gpu.prefill_all_logits(&ids)).unwrap();
    gpu.reset();
    let mut incremental = block_on(gpu.prefill(&ids[..MAX_CHUNK + 3])).unwrap();
    for (i, &id) in ids.iter().enumerate().skip(MAX_CHUNK + 3) {
        let logits = if i % 2 == 0 {
            block_on(gpu.step_token(id)).unwrap()
        } else {
            block_on(gpu.step_embedding(&gpu.embed(id).unwrap())).unwrap()
        };
        incremental.extend(logits);
    }
    let from = (MAX_CHUNK + 2) * 512;
    let (diff, _) = logit_agreement(&incremental, &full[from..], 512);
    assert!(diff < 1e-4, "steps vs prefill: max |Δlogit| {diff}");
}

#[test]
fn a_full_context_and_bad_input_are_clear_errors() {
    let mut gpu = gpu_model(&GpuOptions { context_length: Some(16), ..lavapipe() });
    assert_eq!(gpu.context_length(), 16);
    block_on(gpu.prefill(&[1; 10])).unwrap();
    assert_eq!(block_on(gpu.prefill(&[1; 7])), Err(Error::ContextFull { context_length: 16 }));
    assert_eq!(gpu.position(), 10, "a refused call changes nothing");
    assert!(matches!(block_on(gpu.step_token(512)), Err(Error::TokenOutOfRange { .. })));
    assert!(matches!(block_on(gpu.step_embedding(&[f32::NAN; 64])), Err(Error::InvalidParameter { .. })));
    assert!(matches!(block_on(gpu.prefill(&[])), Err(Error::InvalidParameter { .. })));
    let too_long = GpuOptions { context_length: Some(100_000), ..lavapipe() };
    let err = block_on(WebGpuModel::from_gguf(GGUF, &too_long)).err().expect("refused").to_string();
    assert!(err.contains("contextLength must be at least 1 and at most the model's context length"), "{err}");
}

fn engine(backend: Backend) -> Engine<AutoModel> {
    let GgufModel { weights, tokenizer } = GgufModel::read(GGUF).unwrap();
    let model = block_on(AutoModel::load(weights, backend, &lavapipe())).unwrap();
    let mut engine = Engine::new(model, tokenizer).unwrap();
    engine.set_ngram_store(Some(NgramStore::from_bytes(NGRAMS).unwrap())).unwrap();
    engine
}

fn tokens(engine: &mut Engine<AutoModel>, config: &serde_json::Value) -> Vec<Vec<u32>> {
    let config: GenerateConfig = serde_json::from_value(config.clone()).unwrap();
    let steps = block_on(engine.generate(PROMPT, &config, |_| {}, || false)).unwrap();
    steps
        .iter()
        .map(|step| match step {
            Step::Token(s) => vec![s.record.token],
            Step::Drafts(s) => s.drafts.iter().flat_map(|d| d.tokens.clone()).collect(),
        })
        .collect()
}

/// The CPU fixtures, replayed on the GPU: the same tokens, since no sampled choice in them is
/// within the backends' logit difference of a tie (the greedy, top-k and superposed cases).
#[test]
fn the_gpu_replays_the_cpu_fixtures() {
    let mut gpu = engine(Backend::Webgpu);
    assert_eq!(gpu.model().info().backend, "webgpu");
    let mut cpu = engine(Backend::Cpu);
    let generation: Vec<serde_json::Value> = serde_json::from_str(GGUF_GENERATION_FIXTURE).unwrap();
    let superposed: Vec<serde_json::Value> = serde_json::from_str(GGUF_SUPERPOSED_FIXTURE).unwrap();
    let mut replayed = 0;
    for case in generation.iter().chain(&superposed) {
        let (name, config) = (&case["name"], &case["config"]);
        let want = tokens(&mut cpu, config);
        let got = tokens(&mut gpu, config);
        if case.get("tokens").is_some() {
            let fixture: Vec<u32> = serde_json::from_value(case["tokens"].clone()).unwrap();
            assert_eq!(want.concat(), fixture, "{name}: the CPU path and its fixture");
        }
        assert_eq!(got, want, "{name}: WebGPU vs CPU");
        replayed += 1;
    }
    println!("{replayed} fixture cases gave the same tokens on WebGPU and the CPU");
}

#[test]
fn auto_picks_the_adapter_and_moves_to_the_cpu_when_the_device_is_lost() {
    let mut auto = engine(Backend::Auto);
    let info = auto.model().info();
    assert_eq!((info.backend, info.fallback_reason.clone()), ("webgpu", None));
    assert!(info.adapter.as_ref().unwrap().fallback, "lavapipe is a software adapter: {info:?}");
    let weights = GgufModel::read(GGUF).unwrap().weights;
    assert_eq!(info.fallback_weight_bytes, Some(weights.storage_bytes()), "the CPU copy kept for a fallback");
    let mut cpu = engine(Backend::Cpu);
    assert_eq!(cpu.model().info().backend, "cpu");

    let config = serde_json::json!({"maxTokens": 12, "sampler": {"temperature": 0}});
    let want = tokens(&mut cpu, &config).concat();
    let config: GenerateConfig = serde_json::from_value(config).unwrap();
    let mut generation = block_on(auto.start(PROMPT, &config)).unwrap();
    let mut got = Vec::new();
    while let Some(step) = block_on(auto.step(&mut generation)).unwrap() {
        got.push(step.as_token().unwrap().record.token);
        if got.len() == 5 {
            auto.model().lose_device();
        }
    }
    let info = auto.model().info();
    assert_eq!(info.backend, "cpu", "{info:?}");
    let reason = info.fallback_reason.unwrap();
    assert!(reason.contains("lost") && reason.contains("moved to the CPU mid-run"), "{reason}");
    assert_eq!(got, want, "the sequence was replayed on the CPU and went on");
}

/// Unasked, `auto` leaves a software adapter (lavapipe, the only one here) to the CPU, which is
/// faster, and says why; on a machine whose first adapter is a GPU it runs there.
#[test]
fn auto_runs_on_the_cpu_rather_than_a_software_adapter_unless_asked() {
    let offered = block_on(decoding_playground::model::webgpu::Gpu::new(false)).expect("an adapter (lavapipe)").adapter().clone();
    let GgufModel { weights, .. } = GgufModel::read(GGUF).unwrap();
    let info = block_on(AutoModel::load(weights, Backend::Auto, &GpuOptions::default())).unwrap().info();
    if offered.fallback {
        assert_eq!(info.backend, "cpu", "{info:?}");
        let reason = info.fallback_reason.unwrap();
        assert!(reason.starts_with(&format!("the WebGPU adapter is a software fallback ({})", offered.name)), "{reason}");
        assert_eq!(info.fallback_weight_bytes, None, "on the CPU no second copy is kept");
    } else {
        assert_eq!((info.backend, info.adapter), ("webgpu", Some(offered)));
    }
    let GgufModel { weights, .. } = GgufModel::read(GGUF).unwrap();
    let forced = block_on(AutoModel::load(weights, Backend::Webgpu, &GpuOptions::default())).unwrap().info();
    assert_eq!((forced.backend, forced.fallback_weight_bytes), ("webgpu", None), "backend webgpu runs on any adapter");
}

/// Rows copied out of the GPU's KV caches and put back give the logits the cache gave; rows put
/// anywhere but where they were copied from are refused.
#[test]
fn kv_rows_copied_out_and_back_on_the_gpu_give_the_same_logits() {
    let ids = ids();
    let mut gpu = gpu_model(&lavapipe());
    block_on(gpu.prefill(&ids[..20])).unwrap();
    let want = block_on(gpu.step_token(ids[20])).unwrap();
    let (head, tail) = (gpu.copy_cache(0..5).unwrap(), gpu.copy_cache(5..21).unwrap());
    gpu.reset();
    assert!(matches!(gpu.append_cache(&tail, 0..3), Err(Error::InvalidParameter { .. })), "rows of positions 5.. at 0");
    gpu.append_cache(&head, 0..5).unwrap();
    gpu.append_cache(&tail, 0..7).unwrap();
    gpu.append_cache(&tail, 7..15).unwrap();
    assert_eq!(gpu.position(), 20);
    assert_eq!(block_on(gpu.step_token(ids[20])).unwrap(), want);
    println!("{} bytes of rows for 21 positions", head.bytes() + tail.bytes());
}

/// A branch on the GPU takes its prefix from the kept rows and goes on as the run did; after a
/// lost device, the move to the CPU replays what the cache held and the branch goes on.
#[test]
fn a_branch_on_the_gpu_takes_the_runs_prefix_and_survives_a_move_to_the_cpu() {
    let mut auto = engine(Backend::Auto);
    let greedy = |max_tokens| GenerateConfig { max_tokens, stop_tokens: Some(vec![]), sampler: decoding_playground::SamplerConfig::greedy(), ..Default::default() };
    let branch = |engine: &mut Engine<AutoModel>, after: &[u32], max_tokens| {
        let mut generation = block_on(engine.start_after(PROMPT, after, &greedy(max_tokens))).unwrap();
        let mut tokens = Vec::new();
        while let Some(step) = block_on(engine.step(&mut generation)).unwrap() {
            tokens.push(step.as_token().unwrap().record.token);
        }
        (tokens, generation.reused_tokens())
    };
    let prompt = auto.tokenizer().encode_with_special(PROMPT).unwrap().len();
    let (whole, _) = branch(&mut auto, &[], 16);
    // Another branch moves the cache off the run; the fork at 9 takes the run's rows back.
    branch(&mut auto, &[(whole[0] + 1) % 60], 4);
    let (forked, reused) = branch(&mut auto, &whole[..10], 6);
    assert_eq!(auto.model().info().backend, "webgpu");
    assert_eq!((forked.as_slice(), reused), (&whole[10..], prompt + 9), "the fork goes on as the run did, from the kept rows");
    auto.model().lose_device();
    let (after_loss, _) = branch(&mut auto, &whole[..5], 4);
    assert_eq!(auto.model().info().backend, "cpu");
    assert_eq!(after_loss, whole[5..9]);
}
