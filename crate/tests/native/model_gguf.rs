//! GGUF models through the tract backend, their weights kept in Q4_1/Q8_0 blocks: the tiny GGUF
//! against the float64 numpy reference over gguf-py's dequantised weights
//! (models/tiny/gguf_reference.json, written by `models/build.sh tiny`), the KV cache, and the
//! embedding rows superposed decoding reads from the Q8_0 blocks.
use pollster::block_on;
use decoding_playground::model::quant::Kernel;
use decoding_playground::model::{EmbeddingStorage, LanguageModel};
use decoding_playground::TractModel;

const TINY_GGUF: &[u8] = include_bytes!("../../../models/tiny/model.gguf");
const TINY_REFERENCE: &str = include_str!("../../../models/tiny/gguf_reference.json");

fn reference() -> serde_json::Value {
    serde_json::from_str(TINY_REFERENCE).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn tiny(kernel: Kernel) -> TractModel {
    TractModel::from_gguf_with_kernel(TINY_GGUF, kernel).unwrap().0
}

/// With f32 activations the graph computes the reference's function exactly (f32 rounding
/// only); the int16 activations of the fast kernels add a small, bounded error.
#[test]
fn tiny_gguf_logits_match_the_float64_reference() {
    let reference = reference();
    let ids: Vec<u32> = serde_json::from_value(reference["ids"].clone()).unwrap();
    let expected: Vec<Vec<f32>> = serde_json::from_value(reference["logits"].clone()).unwrap();
    for (kernel, tolerance) in [(Kernel::F32Activations, 2e-5), (Kernel::Reference, 3e-3), (Kernel::Simd, 3e-3)] {
        let mut model = tiny(kernel);
        let vocab = model.vocab_size();
        let logits = block_on(model.prefill_all_logits(&ids)).unwrap();
        let worst = expected
            .iter()
            .enumerate()
            .map(|(pos, row)| max_abs_diff(&logits[pos * vocab..(pos + 1) * vocab], row))
            .fold(0.0, f32::max);
        println!("{kernel:?}: max |logit - reference| = {worst:.2e}");
        assert!(worst < tolerance, "{kernel:?}: max |logit - reference| = {worst} (tolerance {tolerance})");
    }
}

#[test]
fn the_simd_kernels_give_the_reference_kernels_logits_bit_for_bit() {
    let ids: Vec<u32> = serde_json::from_value(reference()["ids"].clone()).unwrap();
    let simd = block_on(tiny(Kernel::Simd).prefill_all_logits(&ids)).unwrap();
    let scalar = block_on(tiny(Kernel::Reference).prefill_all_logits(&ids)).unwrap();
    assert!(simd.iter().zip(&scalar).all(|(a, b)| a.to_bits() == b.to_bits()));
}

/// With f32 activations a cached step differs from a full prefill by f32 rounding alone. The
/// fast kernels quantise each row's activations to int16, and tract's attention may sum in
/// another order for one row than for many (it picks its kernels by CPU: on an AVX2-only AMD
/// EPYC 1e-4 was exceeded at 3.7e-4): there a step may land on the next quantisation step, so
/// the bound is the one those kernels keep to the float64 reference.
#[test]
fn gguf_kv_cache_steps_equal_a_fresh_full_prefill() {
    let ids: Vec<u32> = serde_json::from_value(reference()["ids"].clone()).unwrap();
    for (kernel, tolerance) in [(Kernel::F32Activations, 1e-4), (Kernel::Simd, 3e-3)] {
        let mut model = tiny(kernel);
        let vocab = model.vocab_size();
        let full = block_on(model.prefill_all_logits(&ids)).unwrap();
        model.reset();
        let mut incremental = vec![block_on(model.prefill(&ids[..5])).unwrap()];
        for (k, &id) in ids[5..].iter().enumerate() {
            incremental.push(if k % 2 == 0 {
                block_on(model.step_token(id)).unwrap()
            } else {
                block_on(model.step_embedding(&model.embed(id).unwrap())).unwrap()
            });
        }
        let worst = incremental
            .iter()
            .zip(5..)
            .map(|(logits, end)| max_abs_diff(logits, &full[(end - 1) * vocab..end * vocab]))
            .fold(0.0, f32::max);
        println!("{kernel:?}: cached steps vs one prefill, max |diff| = {worst:.2e}");
        assert!(worst < tolerance, "{kernel:?}: max |diff| = {worst} (tolerance {tolerance})");
    }
}

/// Embedding rows (and so superposed decoding's weighted sums) come straight from the Q8_0
/// blocks, dequantised as gguf-py does.
#[test]
fn embedding_rows_are_read_from_the_q8_0_blocks() {
    let model = tiny(Kernel::Simd);
    let table = model.embeddings();
    assert_eq!(model.weight_types(), ["Q4_1", "Q8_0"]);
    let EmbeddingStorage::Quant(blocks) = table.storage() else { panic!("token_embd is Q8_0") };
    assert_eq!(blocks.format().name(), "Q8_0");
    let reference = reference();
    let embd = reference["tensors"].as_array().unwrap().iter().find(|t| t["name"] == "token_embd.weight").unwrap();
    let first: Vec<f32> = serde_json::from_value(embd["first_values"].clone()).unwrap();
    assert_eq!(&table.row(0).unwrap()[..first.len()], &first[..]);
    let (a, b) = (table.row(7).unwrap(), table.row(300).unwrap());
    let sum = table.superpose(&[(7, 0.25), (300, 0.75)]).unwrap();
    for j in 0..a.len() {
        assert_eq!(sum[j], 0.0 + 0.25 * a[j] + 0.75 * b[j]);
    }
}

/// The native logits that the wasm tests compare theirs with (`tiny_gguf_logits.json`):
/// a prefill of the prompt, then two cached steps.
#[test]
fn native_logits_match_the_fixture_wasm_compares_with() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny_gguf_logits.json");
    let (mut model, tokenizer) = TractModel::from_gguf(TINY_GGUF).unwrap();
    let prompt = tokenizer.encode("Once upon a time, there was a little").unwrap();
    let steps = [prompt.clone(), vec![300], vec![301]];
    let logits: Vec<Vec<f32>> = steps.iter().map(|ids| block_on(model.prefill(ids)).unwrap()).collect();
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        let fixture = serde_json::json!({ "steps": steps, "logits": logits });
        std::fs::write(path, serde_json::to_string(&fixture).unwrap() + "\n").unwrap();
    }
    let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let stored_logits: Vec<Vec<f32>> = serde_json::from_value(stored["logits"].clone()).unwrap();
    assert_eq!(stored["steps"], serde_json::json!(steps), "the fixture's steps changed: run with UPDATE_FIXTURES=1");
    // Not bit for bit: tract's own f32 kernels (attention, norms) differ between CPUs, and the
    // fixture was written on one. A deliberate change to the model or the math moves the
    // logits far more than the CPUs' rounding does (4.6e-4 between the machine that wrote it and an AVX2-only AMD EPYC).
    let worst = stored_logits.iter().flatten().zip(logits.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    println!("native logits vs the fixture: max |diff| = {worst:.2e}");
    assert!(worst < 1e-3, "the native logits changed by {worst}: run with UPDATE_FIXTURES=1 after a deliberate change");
}
