//! A Llama model whose matrices use every block type (and BF16 widened to F32), as llama.cpp's
//! Q4_K_M, Q5_K_M and Q6_K files mix them: the tract backend (our int16-activation kernels)
//! against the WebGPU backend (f32 math over the same repacked blocks) on lavapipe, top-1 at
//! every position.

use std::sync::Arc;

use crate::common::logit_agreement;
use decoding_playground::model::formats::GgmlType;
use decoding_playground::model::arch::params::{ModelParams, RopeParams};
use decoding_playground::model::arch::Architecture;
use decoding_playground::model::quant::testing::{random_blocks, Lcg};
use decoding_playground::model::quant::{Kernel, QuantMatrix};
use decoding_playground::model::webgpu::{GpuOptions, WebGpuModel};
use decoding_playground::model::weights::{LayerWeights, ModelWeights, Matrix};
use decoding_playground::model::{bf16_bits_to_f32, EmbeddingStorage, EmbeddingTable};
use decoding_playground::{LanguageModel, TractModel};
use pollster::block_on;

const HIDDEN: usize = 256;
const FFN: usize = 512;
const VOCAB: usize = 300;

/// Random blocks of `ty`, their f16 scales in 2^-12 .. 2^-4 (some zero or subnormal): the
/// weights are far larger than a trained model's, which only makes ties in the logits rarer.
fn matrix(ty: GgmlType, rows: usize, cols: usize, rng: &mut Lcg) -> Matrix {
    if ty == GgmlType::BF16 {
        // What the loader makes of a BF16 tensor: exact f32s.
        let values = (0..rows * cols).map(|_| bf16_bits_to_f32(0x3c00 | (rng.next() as u16 & 0x80ff))).collect();
        return Matrix::F32 { rows, cols, values };
    }
    let blocks = random_blocks(ty, rows, cols, false, rng);
    Matrix::Quant(Arc::new(QuantMatrix::from_gguf_blocks(ty, rows, cols, &blocks, None).unwrap()))
}

fn weights() -> ModelWeights {
    use GgmlType::*;
    let mut rng = Lcg(23);
    let params = ModelParams {
        arch: Architecture::named("llama").unwrap(),
        vocab_size: VOCAB,
        hidden_size: HIDDEN,
        intermediate_size: FFN,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 64,
        context_length: 64,
        rms_norm_eps: 1e-5,
        tied_embeddings: false,
        rope: RopeParams::plain(10000.0, 64),
        sliding_window: None,
        final_softcap: None,
    };
    // Per layer: q, k, v, o, gate, up, down.
    let types = [[Q4_K, Q5_K, Q6_K, Q5_0, Q5_1, Q4_K, Q6_K], [Q5_1, Q5_0, Q8_0, Q3_K, BF16, Q5_K, Q4_0]];
    let kv = 2 * 64;
    let layers = types
        .iter()
        .map(|t| LayerWeights {
            attn_norm: vec![1.0; HIDDEN],
            q: matrix(t[0], HIDDEN, HIDDEN, &mut rng),
            k: matrix(t[1], kv, HIDDEN, &mut rng),
            v: matrix(t[2], kv, HIDDEN, &mut rng),
            q_bias: None,
            k_bias: None,
            v_bias: None,
            qk_norms: None,
            o: matrix(t[3], HIDDEN, HIDDEN, &mut rng),
            post_norms: None,
            ffn_norm: vec![1.0; HIDDEN],
            gate: matrix(t[4], FFN, HIDDEN, &mut rng),
            up: matrix(t[5], FFN, HIDDEN, &mut rng),
            down: matrix(t[6], HIDDEN, FFN, &mut rng),
        })
        .collect();
    let Matrix::Quant(table) = matrix(Q4_K, VOCAB, HIDDEN, &mut rng) else { unreachable!() };
    let embeddings = EmbeddingTable::new(VOCAB, HIDDEN, EmbeddingStorage::Quant(table)).unwrap();
    let output = Some(matrix(Q6_K, VOCAB, HIDDEN, &mut rng));
    ModelWeights { params, embeddings, layers, output_norm: vec![1.0; HIDDEN], output, rope_factors: vec![] }
}

#[test]
fn every_block_type_runs_alike_on_tract_and_webgpu() {
    let weights = weights();
    assert_eq!(weights.matrix_types(), ["F32", "Q3_K", "Q4_0", "Q4_K", "Q5_0", "Q5_1", "Q5_K", "Q6_K", "Q8_0"]);
    let ids: Vec<u32> = (0..40).map(|i| (i * 37 + 5) % VOCAB as u32).collect();
    let mut cpu = TractModel::from_weights(&weights, Kernel::Simd, None).unwrap();
    let cpu_logits = block_on(cpu.prefill_all_logits(&ids)).unwrap();
    let options = GpuOptions { force_fallback_adapter: true, ..Default::default() };
    let mut gpu = block_on(WebGpuModel::new(&weights, &options)).expect("a WebGPU adapter; natively Mesa's lavapipe");
    let gpu_logits = block_on(gpu.prefill_all_logits(&ids)).unwrap();
    let argmax = |row: &[f32]| (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
    let top1 = cpu_logits.chunks_exact(VOCAB).zip(gpu_logits.chunks_exact(VOCAB)).filter(|(c, g)| argmax(c) == argmax(g)).count();
    let (diff, top10) = logit_agreement(&cpu_logits, &gpu_logits, VOCAB);
    let scale = cpu_logits.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    println!("mixed block types, tract vs WebGPU: top-1 {top1}/{}, top-10 {top10}/{}, max |Δlogit| {diff:.2e} of max |logit| {scale:.2e}", ids.len(), ids.len());
    assert_eq!(top1, ids.len(), "top-1 agreement");
    assert!(diff <= 1e-3 * scale, "max |Δlogit| {diff} against logits up to {scale}");
}
