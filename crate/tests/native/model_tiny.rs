//! The tract runtime on the committed tiny random-weight Llama (`models/tiny/`): logits against
//! the ONNX reference evaluator's, KV-cache consistency, load errors and the context limit.
use crate::common;

use pollster::block_on;
use common::{argmax, json_ids};

use decoding_playground::model::{LanguageModel, ModelConfig, TractModel};
use decoding_playground::Error;
use prost::Message;
use serde_json::Value;

const MODEL: &[u8] = include_bytes!("../../../models/tiny/model.onnx");
const CONFIG: &str = include_str!("../../../models/tiny/config.json");
const FIXTURES: &str = include_str!("../../../models/tiny/fixtures.json");
const TOLERANCE: f32 = 1e-4;

fn tiny() -> TractModel {
    TractModel::from_bytes_with_config_json(MODEL, CONFIG).expect("the tiny model loads")
}

fn fixtures() -> Value {
    serde_json::from_str(FIXTURES).unwrap()
}


fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}


fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    let d = max_abs_diff(got, want);
    assert!(d < TOLERANCE, "{what}: max |diff| = {d:e}");
}

#[test]
fn dimensions_come_from_the_graph_and_config() {
    let m = tiny();
    assert_eq!(m.vocab_size(), 512);
    assert_eq!(m.hidden_size(), 64);
    assert_eq!(m.context_length(), 512);
    let c = m.config();
    assert_eq!(
        (c.num_layers, c.num_key_value_heads, c.head_dim),
        (2, 2, 16)
    );
    assert_eq!(m.embeddings().vocab_size(), 512);
    assert_eq!(m.position(), 0);
    // Without a config the dimensions are the same; the context length is the default.
    let m = TractModel::from_bytes(MODEL, None).unwrap();
    assert_eq!(m.config().num_layers, 2);
    assert_eq!(
        m.context_length(),
        decoding_playground::model::onnx::DEFAULT_CONTEXT_LENGTH
    );
}

#[test]
fn prefill_and_cached_steps_match_the_reference_evaluator() {
    let f = fixtures();
    let mut m = tiny();
    for call in f["calls"].as_array().unwrap() {
        let name = call["name"].as_str().unwrap();
        let input = json_ids(&call["input_ids"]);
        assert_eq!(
            m.position() as u64,
            call["past_length"].as_u64().unwrap(),
            "{name}"
        );
        let logits = if input.len() == 1 {
            block_on(m.step_token(input[0]))
        } else {
            block_on(m.prefill(&input))
        }
        .unwrap();
        assert_eq!(logits.len(), 512);
        assert_close(name, &logits, &floats(&call["last_logits"]));
        assert_eq!(
            argmax(&logits) as u64,
            call["argmax"].as_u64().unwrap(),
            "{name}"
        );
    }
    assert_eq!(m.position(), 13);
}

#[test]
fn superposed_embeddings_match_the_reference_evaluator() {
    let f = fixtures();
    let mut m = tiny();
    for case in f["superposed"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        m.reset();
        let prefix = json_ids(&case["prefix_ids"]);
        if !prefix.is_empty() {
            block_on(m.prefill(&prefix)).unwrap();
        }
        assert_eq!(
            m.position() as u64,
            case["position"].as_u64().unwrap(),
            "{name}"
        );
        let pairs: Vec<(u32, f32)> = json_ids(&case["rows"])
            .into_iter()
            .zip(floats(&case["weights"]))
            .collect();
        let embedding = m.embeddings().superpose(&pairs).unwrap();
        let logits = block_on(m.step_embedding(&embedding)).unwrap();
        assert_close(name, &logits, &floats(&case["last_logits"]));
        assert_eq!(
            argmax(&logits) as u64,
            case["argmax"].as_u64().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn kv_cache_steps_equal_a_fresh_full_prefill() {
    let all = json_ids(&fixtures()["ids"]); // 13 ids
    let mut m = tiny();
    // One full prefill of everything, all positions.
    let full = block_on(m.prefill_all_logits(&all)).unwrap();
    assert_eq!(full.len(), all.len() * 512);
    assert_eq!(m.position(), all.len());
    // Incremental: a 5-token prefill, a 3-token chunk, then single steps (tokens and their
    // embeddings).
    m.reset();
    let mut incremental = vec![block_on(m.prefill(&all[..5])).unwrap()];
    incremental.push(block_on(m.prefill(&all[5..8])).unwrap());
    for (k, &id) in all[8..].iter().enumerate() {
        incremental.push(if k % 2 == 0 {
            block_on(m.step_token(id)).unwrap()
        } else {
            block_on(m.step_embedding(&m.embed(id).unwrap())).unwrap()
        });
    }
    let ends = [5, 8, 9, 10, 11, 12, 13];
    for (logits, end) in incremental.iter().zip(ends) {
        let row = &full[(end - 1) * 512..end * 512];
        assert_close(&format!("position {}", end - 1), logits, row);
    }
    // reset() really starts over.
    m.reset();
    assert_eq!(m.position(), 0);
    let again = block_on(m.prefill(&all)).unwrap();
    assert_close("after reset", &again, &full[12 * 512..]);
}

#[test]
fn corrupt_and_truncated_bytes_are_clear_errors() {
    let expect_model_error = |bytes: &[u8], what: &str| match TractModel::from_bytes(bytes, None) {
        Err(Error::Model(msg)) => {
            assert!(!msg.is_empty());
            println!("{what}: {msg}");
            msg
        }
        Err(other) => panic!("{what}: expected a model error, got {other:?}"),
        Ok(_) => panic!("{what}: loaded"),
    };
    // Garbage (deterministic pseudo-random bytes).
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    expect_model_error(&garbage, "garbage");
    expect_model_error(b"this is not an ONNX model", "text");
    let msg = expect_model_error(&[], "empty");
    assert!(msg.contains("no graph"), "{msg}");
    // Truncated files, at several cuts.
    for cut in [10, 1000, MODEL.len() / 2, MODEL.len() - 1] {
        let msg = expect_model_error(&MODEL[..cut], "truncated");
        assert!(msg.contains("ONNX"), "{msg}");
    }
    // A tail of garbage after a valid model.
    let mut padded = MODEL.to_vec();
    padded.extend_from_slice(&garbage[..1000]);
    expect_model_error(&padded, "trailing garbage");
}

fn edited(edit: impl FnOnce(&mut tract_onnx::pb::GraphProto)) -> Vec<u8> {
    let mut proto = tract_onnx::pb::ModelProto::decode(MODEL).unwrap();
    edit(proto.graph.as_mut().unwrap());
    proto.encode_to_vec()
}

fn load_error(bytes: &[u8]) -> String {
    match TractModel::from_bytes(bytes, None) {
        Err(Error::Model(msg)) => msg,
        Err(other) => panic!("expected a model error, got {other:?}"),
        Ok(_) => panic!("loaded"),
    }
}

#[test]
fn a_model_missing_an_input_output_or_the_embeddings_is_a_clear_error() {
    // Re-encoding the unedited proto still loads (the edits are what fails).
    TractModel::from_bytes(&edited(|_| {}), None).unwrap();

    let msg = load_error(&edited(|g| g.input.retain(|i| i.name != "attention_mask")));
    assert!(msg.contains("no input `attention_mask`"), "{msg}");
    // position_ids is optional (a graph may count its positions itself), but one that reads it
    // needs it.
    let msg = load_error(&edited(|g| g.input.retain(|i| i.name != "position_ids")));
    assert!(msg.contains("reads `position_ids`, which nothing produces"), "{msg}");

    let msg = load_error(&edited(|g| {
        g.input.retain(|i| i.name != "past_key_values.1.value")
    }));
    assert!(msg.contains("past_key_values.1.value"), "{msg}");

    let msg = load_error(&edited(|g| g.output.retain(|o| o.name != "logits")));
    assert!(msg.starts_with("this is not a causal language model exported with its KV cache: expected a `logits` output"), "{msg}");

    let msg = load_error(&edited(|g| {
        g.initializer
            .retain(|t| t.name != "model.embed_tokens.weight")
    }));
    assert!(msg.contains("model.embed_tokens.weight"), "{msg}");

    // Graphs with nodes missing: what they compute is read by nothing / by other nodes.
    let msg = load_error(&edited(|g| g.node.truncate(g.node.len() / 2)));
    assert!(msg.contains("incomplete"), "{msg}");
    let msg = load_error(&edited(|g| {
        g.node.remove(g.node.len() / 2);
    }));
    assert!(msg.contains("incomplete"), "{msg}");
}

#[test]
fn a_config_for_another_model_is_refused() {
    let mut config = ModelConfig::from_json(CONFIG).unwrap();
    config.hidden_size = 576;
    match TractModel::from_bytes(MODEL, Some(&config)) {
        Err(Error::Model(msg)) => assert!(msg.contains("does not match"), "{msg}"),
        other => panic!("expected a mismatch error, got {other:?}"),
    }
    assert!(matches!(
        TractModel::from_bytes_with_config_json(MODEL, "not json"),
        Err(Error::Model(_))
    ));
}

#[test]
fn exceeding_the_context_is_context_full() {
    let all = json_ids(&fixtures()["ids"]); // 13 ids
    let mut m = tiny();
    m.set_context_length(12).unwrap();
    assert_eq!(
        block_on(m.prefill(&all)),
        Err(Error::ContextFull { context_length: 12 })
    );
    assert_eq!(m.position(), 0);
    block_on(m.prefill(&all[..11])).unwrap();
    block_on(m.step_token(all[11])).unwrap();
    assert_eq!(m.position(), 12);
    assert_eq!(
        block_on(m.step_token(all[12])),
        Err(Error::ContextFull { context_length: 12 })
    );
    let e = m.embed(all[12]).unwrap();
    assert_eq!(
        block_on(m.step_embedding(&e)),
        Err(Error::ContextFull { context_length: 12 })
    );
    assert_eq!(m.position(), 12);
    assert!(m.set_context_length(11).is_err());
    // The error message names the limit.
    let msg = Error::ContextFull { context_length: 12 }.to_string();
    assert!(msg.contains("12"), "{msg}");
    // After a reset the same model goes on.
    m.reset();
    block_on(m.prefill(&all[..12])).unwrap();
}

#[test]
fn bad_tokens_and_embeddings_are_refused_without_touching_the_cache() {
    let mut m = tiny();
    block_on(m.prefill(&[1, 2, 3])).unwrap();
    assert_eq!(
        block_on(m.step_token(512)),
        Err(Error::TokenOutOfRange {
            token: 512,
            vocab_size: 512
        })
    );
    assert!(matches!(
        block_on(m.prefill(&[])),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        block_on(m.step_embedding(&[0.0; 63])),
        Err(Error::InvalidParameter { .. })
    ));
    let mut nan = vec![0.0; 64];
    nan[7] = f32::NAN;
    assert!(matches!(
        block_on(m.step_embedding(&nan)),
        Err(Error::InvalidParameter { .. })
    ));
    assert_eq!(m.position(), 3);
    // Still consistent: the cache holds exactly [1, 2, 3].
    let next = block_on(m.step_token(4)).unwrap();
    m.reset();
    assert_close(
        "after refused calls",
        &next,
        &block_on(m.prefill(&[1, 2, 3, 4])).unwrap(),
    );
}

#[test]
fn a_model_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<TractModel>();
    let mut m = tiny();
    let logits = std::thread::spawn(move || block_on(m.prefill(&[1, 2, 3])).unwrap())
        .join()
        .unwrap();
    assert_eq!(logits.len(), 512);
}
