//! The tiny model in the layouts optimum and transformers.js export (`models/onnx_variants.py`
//! writes them with the `onnx` package and records ONNX Runtime's logits on each file): tract
//! must give the same logits, token by token through the KV cache, and errors must be clear.
use std::path::PathBuf;

use decoding_playground::model::onnx::{data_files, external_data_files, split_wide_integer_matmuls, OnnxDecoder};
use decoding_playground::model::{EmbeddingStorage, LanguageModel, ModelConfig, TractModel};
use pollster::block_on;
use prost::Message;
use serde_json::Value;
use tract_onnx::pb;

const CONFIG: &str = include_str!("../../../models/tiny/config.json");

fn variant_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny/variants").join(name)
}

fn read(name: &str, file: &str) -> Vec<u8> {
    std::fs::read(variant_dir(name).join(file)).unwrap_or_else(|e| panic!("{name}/{file}: {e} (run models/onnx_variants.py)"))
}

fn load(onnx: &[u8], files: &[(&str, &[u8])]) -> decoding_playground::Result<TractModel> {
    let config = ModelConfig::from_json(CONFIG).unwrap();
    TractModel::from_buf_with_data(onnx, &mut data_files(files), Some(&config))
}

/// The largest |tract − ONNX Runtime| over every step of the variant's reference.
fn max_diff_to_reference(name: &str, model: &mut TractModel) -> f32 {
    let reference: Value = serde_json::from_slice(&read(name, "reference.json")).unwrap();
    let mut worst = 0f32;
    for step in reference["steps"].as_array().unwrap() {
        let fed: Vec<u32> = step["fed"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let want: Vec<f32> = step["logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let got = block_on(model.prefill(&fed)).unwrap();
        assert_eq!(got.len(), want.len());
        worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(worst, f32::max);
    }
    worst
}

#[test]
fn the_optimum_layout_takes_input_ids_and_gives_onnx_runtimes_logits() {
    let onnx = read("input-ids", "model.onnx");
    let mut model = load(&onnx, &[]).expect("the input_ids layout loads");
    assert_eq!((model.vocab_size(), model.hidden_size()), (512, 64));
    assert_eq!(model.weight_types(), ["F32"]);
    let diff = max_diff_to_reference("input-ids", &mut model);
    println!("input-ids (fp32): max |tract - onnxruntime| = {diff:e}");
    assert!(diff < 1e-4, "{diff:e}");

    // The same weights as the committed model in our own layout: the same logits.
    let mut ours = TractModel::from_bytes_with_config_json(include_bytes!("../../../models/tiny/model.onnx"), CONFIG).unwrap();
    model.reset();
    let ids = [1, 57, 300, 42];
    let (a, b) = (block_on(model.prefill(&ids)).unwrap(), block_on(ours.prefill(&ids)).unwrap());
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5));
    // Superposed decoding feeds embeddings, which the rewired graph takes.
    let mixed: Vec<f32> = model.embed(5).unwrap().iter().zip(model.embed(9).unwrap()).map(|(x, y)| 0.5 * x + 0.5 * y).collect();
    assert_eq!(block_on(model.step_embedding(&mixed)).unwrap().len(), 512);
}

#[test]
fn external_data_is_read_from_the_file_the_graph_names() {
    let (onnx, data) = (read("external-data", "model.onnx"), read("external-data", "model.onnx_data"));
    assert_eq!(external_data_files(&onnx[..]).unwrap(), ["model.onnx_data"]);
    assert!(external_data_files(&read("input-ids", "model.onnx")[..]).unwrap().is_empty());
    let mut model = load(&onnx, &[("model.onnx_data", &data)]).expect("loads with its data file");
    let diff = max_diff_to_reference("external-data", &mut model);
    println!("external-data (fp32): max |tract - onnxruntime| = {diff:e}");
    assert!(diff < 1e-4, "{diff:e}");

    let message = |files: &[(&str, &[u8])]| load(&onnx, files).unwrap_err().to_string();
    assert_eq!(
        message(&[]),
        "model error: the weights are stored in `model.onnx_data`, which was not given: give it with the .onnx file"
    );
    assert!(message(&[("other.bin", &data)]).contains("`model.onnx_data`, which was not given"));
    let short = &data[..data.len() - 100];
    let m = message(&[("model.onnx_data", short)]);
    assert!(m.starts_with(&format!("model error: `model.onnx_data` has {} bytes, but the graph reads", short.len())), "{m}");
}

/// A quantised or half-precision variant: its ops, the weight types tract keeps, and its logits
/// against ONNX Runtime's on the same file.
fn check_variant(name: &str, ops: &[&str], weight_types: &[&str], tolerance: f32) {
    let onnx = read(name, "model.onnx");
    let proto = pb::ModelProto::decode(&onnx[..]).unwrap();
    let found: std::collections::BTreeSet<&str> = proto.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
    assert!(ops.iter().all(|op| found.contains(op)), "{name}: {ops:?} among {found:?}");
    let mut model = load(&onnx, &[]).unwrap_or_else(|e| panic!("{name} loads: {e}"));
    assert_eq!(model.weight_types(), weight_types, "{name}");
    let diff = max_diff_to_reference(name, &mut model);
    println!("{name}: max |tract - onnxruntime| = {diff:e} (tolerance {tolerance:e})");
    assert!(diff < tolerance, "{name}: {diff:e}");
}

#[test]
fn int8_dynamic_quantisation_runs_matmul_integer_in_int8() {
    // Every MatMul weight (the lm_head too) is int8; the norms are too small to count.
    check_variant("int8", &["MatMulInteger", "DynamicQuantizeLinear", "DequantizeLinear"], &["INT8"], 1e-3);
}

#[test]
fn an_int8_weight_too_large_for_tracts_constant_folding_is_split_into_column_blocks() {
    // SmolLM2's lm_head (576 × 49152) is past the budget; here a small budget splits the tiny
    // model's lm_head (64 × 512) in blocks of 100 columns and its MLP weights (64 × 128 in 100,
    // 128 × 64 in 50).
    let split = |proto: &pb::ModelProto| {
        let mut proto = proto.clone();
        split_wide_integer_matmuls(proto.graph.as_mut().unwrap(), 64 * 100);
        proto
    };
    let count = |proto: &pb::ModelProto, op: &str| proto.graph.as_ref().unwrap().node.iter().filter(|n| n.op_type == op).count();
    let original = pb::ModelProto::decode(&read("int8", "model.onnx")[..]).unwrap();
    let blocks = split(&original);
    // 15 products: the lm_head in 6 blocks, 6 MLP weights in 2, and the 8 attention ones whole.
    assert_eq!((count(&original, "MatMulInteger"), count(&blocks, "MatMulInteger")), (15, 6 + 6 * 2 + 8));
    assert_eq!(count(&blocks, "Concat"), count(&original, "Concat") + 7);
    let mut model = load(&blocks.encode_to_vec(), &[]).unwrap();
    let diff = max_diff_to_reference("int8", &mut model);
    println!("int8 in column blocks: max |tract - onnxruntime| = {diff:e}");
    assert!(diff < 1e-3, "{diff:e}");

    // A zero point a column (quantize_dynamic's per_channel) is split with its weight.
    let mut per_column = original.clone();
    let graph = per_column.graph.as_mut().unwrap();
    let lm_head = graph.node.iter().find(|n| n.op_type == "MatMulInteger" && graph.initializer.iter().any(|t| t.name == n.input[1] && t.dims == [64, 512])).unwrap();
    let zero_point = lm_head.input[3].clone();
    let zp = graph.initializer.iter_mut().find(|t| t.name == zero_point).unwrap();
    *zp = pb::TensorProto { name: zero_point, dims: vec![512], data_type: zp.data_type, raw_data: (0..512).map(|j| (j % 7) as u8).collect(), ..Default::default() };
    let ids = [1, 57, 300, 42];
    let logits = |proto: &pb::ModelProto| block_on(load(&proto.encode_to_vec(), &[]).unwrap().prefill(&ids)).unwrap();
    let (whole, in_blocks) = (logits(&per_column), logits(&split(&per_column)));
    let diff = whole.iter().zip(&in_blocks).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-5, "per-column zero points: {diff:e}");
    assert!(whole.iter().zip(&logits(&original)).any(|(a, b)| (a - b).abs() > 1e-3), "the zero points matter");
}

#[test]
fn a_float16_export_runs_in_float16() {
    // f16 arithmetic in both runtimes, each rounding its own way.
    check_variant("fp16", &["Cast"], &["F16"], 3e-2);
}

#[test]
fn four_bit_matmul_nbits_runs_as_q4_0_blocks() {
    // tract keeps block-32 weights as Q4_0, whose scales are f16 where the file's are f32.
    check_variant("q4", &["MatMulNBits"], &["Q4_0"], 2e-2);
}

#[test]
fn a_four_bit_embedding_is_dequantised_as_onnx_runtime_does() {
    // MatMulNBitsQuantizer asked to quantise the Gather too: a GatherBlockQuantized of int4
    // values, symmetric, beside the 4-bit MatMuls.
    check_variant("q4-embedding", &["GatherBlockQuantized", "MatMulNBits"], &["Q4_0"], 2e-2);
    // The embedding alone, asymmetric (uint4 values and zero points), then in the uint8 packing:
    // the rest of the graph is f32, so only a table dequantised as onnxruntime does stays
    // within f32 rounding of its logits.
    check_variant("embedding-uint4", &["GatherBlockQuantized"], &["F32"], 1e-4);
    check_variant("embedding-uint8", &["GatherBlockQuantized"], &["F32"], 1e-4);
    // The tables stay 4-bit, in the kernels' formats: exact where every zero point is the
    // middle (symmetric int4), within an f32 rounding as Q4_1 (min = −zero point · scale).
    assert_eq!(["q4-embedding", "embedding-uint4", "embedding-uint8"].map(|name| table_type(&read(name, "model.onnx"))), ["Q4_0", "Q4_1", "Q4_1"]);
    // Superposed decoding feeds the table's rows, mixed.
    let mut model = load(&read("embedding-uint4", "model.onnx"), &[]).unwrap();
    let mixed: Vec<f32> = model.embed(5).unwrap().iter().zip(model.embed(9).unwrap()).map(|(x, y)| 0.5 * x + 0.5 * y).collect();
    assert_eq!(block_on(model.step_embedding(&mixed)).unwrap().len(), 512);
}

/// How the loader keeps an export's embedding table.
fn table_type(onnx: &[u8]) -> &'static str {
    let config = ModelConfig::from_json(CONFIG).unwrap();
    match OnnxDecoder::read(onnx, Some(&config)).unwrap().embeddings.storage() {
        EmbeddingStorage::Quant(q) => q.format().name(),
        EmbeddingStorage::F32(_) => "F32",
        EmbeddingStorage::F16(_) => "F16",
    }
}

/// embedding-uint4's table in another packing with the same values: 8-bit (`bits8`), without
/// zero points (the values moved so that 128 is each block's zero), or in blocks of 16.
fn repacked_uint4_embedding(bits8: bool, zero_points: bool, block16: bool) -> Vec<u8> {
    edited_variant("embedding-uint4", |g| {
        let node = g.node.iter().position(|n| n.op_type == "GatherBlockQuantized").unwrap();
        let names = g.node[node].input.clone();
        let tensor = |g: &mut pb::GraphProto, i: usize| g.initializer.iter().position(|t| t.name == names[i]).unwrap();
        let (data, scales, zp) = (tensor(g, 0), tensor(g, 2), tensor(g, 3));
        let nibbles = |raw: &[u8]| raw.iter().flat_map(|b| [b & 15, b >> 4]).collect::<Vec<u8>>();
        let pack = |v: &[u8]| v.chunks(2).map(|p| p[0] | p.get(1).unwrap_or(&0) << 4).collect::<Vec<u8>>();
        let (mut u, mut z) = (nibbles(&g.initializer[data].raw_data), nibbles(&g.initializer[zp].raw_data));
        let mut scale: Vec<f32> = g.initializer[scales].raw_data.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let (rows, mut blocks) = (512usize, 2usize);
        if block16 {
            scale = scale.iter().flat_map(|&s| [s, s]).collect();
            z = z.iter().flat_map(|&z| [z, z]).collect();
            blocks = 4;
        }
        if !zero_points {
            u = u.iter().enumerate().map(|(i, &u)| u + 128 - z[i / 64 * blocks + i % 64 / (64 / blocks)]).collect();
        }
        let node = &mut g.node[node];
        node.attribute.retain(|a| a.name != "block_size" && a.name != "bits");
        node.attribute.push(pb::AttributeProto { name: "block_size".into(), i: if block16 { 16 } else { 32 }, r#type: 2, ..Default::default() });
        node.attribute.push(pb::AttributeProto { name: "bits".into(), i: if bits8 { 8 } else { 4 }, r#type: 2, ..Default::default() });
        if !zero_points {
            node.input.truncate(3);
        }
        let t = &mut g.initializer;
        t[scales].raw_data = scale.iter().flat_map(|s| s.to_le_bytes()).collect();
        t[scales].dims = vec![rows as i64, blocks as i64];
        (t[data].raw_data, t[zp].raw_data) = if bits8 { (u, z) } else { (pack(&u), pack(&z)) };
        t[zp].dims = vec![rows as i64, blocks as i64];
        if bits8 {
            t[data].data_type = 2;
            t[zp].data_type = 2;
        }
        if !zero_points {
            t.remove(zp);
        }
    })
}

#[test]
fn every_packing_of_a_block_quantized_embedding_gives_the_same_logits() {
    // (8-bit, zero points, blocks of 16) → how the loader keeps the table.
    for (bits8, zero_points, block16, kept) in
        [(true, false, false, "Q8_0"), (true, true, false, "F32"), (false, true, true, "F32"), (false, true, false, "Q4_1")]
    {
        let onnx = repacked_uint4_embedding(bits8, zero_points, block16);
        assert_eq!(table_type(&onnx), kept, "8-bit {bits8}, zero points {zero_points}, blocks of 16 {block16}");
        let diff = max_diff_to_reference("embedding-uint4", &mut load(&onnx, &[]).unwrap());
        assert!(diff < 1e-4, "8-bit {bits8}, zero points {zero_points}, blocks of 16 {block16}: {diff:e}");
    }
}

#[test]
fn a_block_quantized_embedding_it_cannot_read_is_refused_saying_why() {
    fn gather(g: &mut pb::GraphProto) -> &mut pb::NodeProto {
        g.node.iter_mut().find(|n| n.op_type == "GatherBlockQuantized").unwrap()
    }
    fn set(g: &mut pb::GraphProto, name: &str, value: i64) {
        let node = gather(g);
        node.attribute.retain(|a| a.name != name);
        node.attribute.push(pb::AttributeProto { name: name.into(), i: value, r#type: 2, ..Default::default() });
    }
    let message = |edit: fn(&mut pb::GraphProto)| load(&edited_variant("embedding-uint8", edit), &[]).unwrap_err().to_string();
    let prefix = "model error: the embedding's GatherBlockQuantized `/model/embed_tokens/Gather_Q4`";
    assert_eq!(message(|g| set(g, "gather_axis", 1)), format!("{prefix} gathers along axis 1 and quantises along axis 1: expected rows gathered, quantised along each row"));
    assert_eq!(message(|g| set(g, "block_size", 24)), format!("{prefix} has block_size 24: expected a power of two, at least 16"));
    assert_eq!(message(|g| set(g, "bits", 2)), format!("{prefix} stores 2-bit values as element type 2: expected 4-bit (uint8, uint4 or int4) or 8-bit (uint8)"));
    // Blocks of 16 would need twice the scales there are.
    assert_eq!(message(|g| set(g, "block_size", 16)), format!("{prefix} has scales of dims [512, 2]: expected [512, 4] (blocks of 16)"));
    let err = message(|g| {
        let zp = gather(g).input[3].clone();
        g.initializer.iter_mut().find(|t| t.name == zp).unwrap().dims = vec![256, 2];
    });
    assert_eq!(err, format!("{prefix} has zero points of type 2 and dims [256, 2]: expected the table's type, dims [512, 1]"));
    let err = message(|g| {
        let data = gather(g).input[0].clone();
        g.initializer.iter_mut().find(|t| t.name == data).unwrap().raw_data.truncate(100);
    });
    assert_eq!(err, format!("{prefix} holds 100 bytes for 512 x 64 4-bit values"));
}

#[test]
fn a_merged_decoder_runs_its_with_past_branch() {
    check_variant("merged", &["If"], &["F32"], 1e-4);
}

#[test]
fn a_graph_without_position_ids_counts_them_from_the_caches_length() {
    check_variant("positions-from-past", &["Range"], &["F32"], 1e-4);
}

#[test]
fn positions_counted_from_the_mask_are_refused_clearly() {
    let err = load(&read("positions-from-mask", "model.onnx"), &[]).unwrap_err().to_string();
    assert!(err.contains("this graph computes its positions itself in a way tract's KV cache rewrite cannot follow"), "{err}");
}

/// A variant, edited.
fn edited_variant(name: &str, edit: impl FnOnce(&mut pb::GraphProto)) -> Vec<u8> {
    let mut proto = pb::ModelProto::decode(&read(name, "model.onnx")[..]).unwrap();
    edit(proto.graph.as_mut().unwrap());
    proto.encode_to_vec()
}

/// The input_ids variant, edited.
fn edited(edit: impl FnOnce(&mut pb::GraphProto)) -> Vec<u8> {
    edited_variant("input-ids", edit)
}

#[test]
fn an_encoder_or_a_model_without_its_kv_cache_is_refused_saying_what_was_expected() {
    let expected = "model error: this is not a causal language model exported with its KV cache: expected a `logits` output \
                    and `past_key_values.{i}.key/value` inputs (optimum: `--task text-generation-with-past`), but it has";
    // Exported without the cache (optimum's `--task text-generation`).
    let without_cache = edited(|g| {
        g.input.retain(|i| !i.name.starts_with("past_key_values."));
        g.output.retain(|o| !o.name.starts_with("present."));
    });
    let err = load(&without_cache, &[]).unwrap_err().to_string();
    assert_eq!(err, format!("{expected} inputs [\"input_ids\", \"attention_mask\", \"position_ids\"] and outputs [\"logits\"]"));
    // An encoder (BERT's signature): hidden states out, token types in, no cache.
    let encoder = edited(|g| {
        g.input.retain(|i| !i.name.starts_with("past_key_values.") && i.name != "position_ids");
        g.input.push(g.input[1].clone());
        g.input.last_mut().unwrap().name = "token_type_ids".into();
        g.output.retain(|o| o.name == "logits");
        g.output[0].name = "last_hidden_state".into();
    });
    let err = load(&encoder, &[]).unwrap_err().to_string();
    assert_eq!(err, format!("{expected} inputs [\"input_ids\", \"attention_mask\", \"token_type_ids\"] and outputs [\"last_hidden_state\"]"));
}

#[test]
fn shapes_of_input_ids_read_the_embeddings_instead() {
    // optimum's graphs: input_ids feeds the embedding Gather and Shape nodes (the bias's Expand,
    // the logits' Reshape).
    let onnx = read("ids-shape", "model.onnx");
    let proto = pb::ModelProto::decode(&onnx[..]).unwrap();
    let readers: Vec<&str> = proto.graph.as_ref().unwrap().node.iter().filter(|n| n.input.iter().any(|i| i == "input_ids")).map(|n| n.op_type.as_str()).collect();
    assert_eq!(readers, ["Gather", "Shape", "Shape"]);
    check_variant("ids-shape", &["Expand", "Reshape"], &["F32"], 1e-4);
    // Superposed decoding still feeds embeddings.
    let mut model = load(&onnx, &[]).unwrap();
    let mixed: Vec<f32> = model.embed(5).unwrap().iter().zip(model.embed(9).unwrap()).map(|(x, y)| 0.5 * x + 0.5 * y).collect();
    assert_eq!(block_on(model.step_embedding(&mixed)).unwrap().len(), 512);

    // A negative start counts from the ids' rank (2), not the embeddings' (3): still [batch, seq].
    let negative_start = edited_variant("ids-shape", |g| {
        let shape = g.node.iter_mut().find(|n| n.name == "/ids_shape/ids.shape").unwrap();
        shape.attribute.push(pb::AttributeProto { name: "start".into(), r#type: 2, i: -2, ..Default::default() });
    });
    let mut model = load(&negative_start, &[]).expect("loads");
    assert!(max_diff_to_reference("ids-shape", &mut model) < 1e-4);
}

#[test]
fn input_ids_read_by_more_than_the_embedding_gather_and_shapes_is_refused_by_name() {
    let extra_reader = edited(|g| {
        g.node.push(pb::NodeProto { op_type: "Cast".into(), name: "/model/Cast".into(), input: vec!["input_ids".into()], output: vec!["ids_f32".into()], attribute: vec![pb::AttributeProto { name: "to".into(), r#type: 2, i: 1, ..Default::default() }], ..Default::default() });
    });
    let err = load(&extra_reader, &[]).unwrap_err().to_string();
    assert_eq!(
        err,
        "model error: `input_ids` must feed one embedding Gather, and otherwise only Shape nodes; it feeds [\"/model/embed_tokens/Gather (Gather)\", \"/model/Cast (Cast)\"]"
    );
}
