//! Every architecture against llama.cpp (`common::archs`), on tract and on WebGPU (lavapipe).

use decoding_playground::model::quant::Kernel;
use decoding_playground::model::webgpu::{GpuOptions, WebGpuModel};
use decoding_playground::model::weights::GgufModel;
use decoding_playground::{LanguageModel, TractModel};
use pollster::block_on;

use crate::common::archs::{Reference, CONTEXT, FIXTURES};

#[test]
fn every_architecture_matches_llama_cpp_on_tract() {
    for (name, gguf, json) in FIXTURES {
        let r = Reference::parse(json);
        let GgufModel { weights, .. } = GgufModel::read(gguf).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut model = TractModel::from_weights(&weights, Kernel::Simd, Some(CONTEXT)).unwrap();
        let all = block_on(model.prefill_all_logits(&r.ids)).unwrap();
        r.check(name, "tract", &all);
        // Through the KV cache, one token at a time after a prefix: the same logits.
        model.reset();
        let half = r.ids.len() / 2;
        block_on(model.prefill(&r.ids[..half])).unwrap();
        let mut stepped = all[..half * r.vocab].to_vec();
        for &id in &r.ids[half..] {
            stepped.extend(block_on(model.step_token(id)).unwrap());
        }
        r.check(name, "stepped", &stepped);
    }
}

#[test]
fn every_architecture_matches_llama_cpp_on_webgpu() {
    let options = GpuOptions { force_fallback_adapter: true, context_length: Some(CONTEXT) };
    for (name, gguf, json) in FIXTURES {
        let r = Reference::parse(json);
        let (mut model, _) = block_on(WebGpuModel::from_gguf(gguf, &options))
            .unwrap_or_else(|e| panic!("{name}: {e} (natively WebGPU runs on Mesa's lavapipe: scripts/setup.sh)"));
        let all = block_on(model.prefill_all_logits(&r.ids)).unwrap();
        r.check(name, "webgpu", &all);
    }
}
