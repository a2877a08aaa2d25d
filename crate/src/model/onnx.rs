//! The ONNX files users bring: decoder-only causal LMs with the signature
//! `inputs_embeds`/`attention_mask`/`position_ids`/`past_key_values.*` →
//! `logits`/`present.*` (see `models/README.md`), checked and prepared for a backend.
//!
//! - the dimensions come from the graph itself: vocabulary and hidden size from the embedding
//!   initializer `model.embed_tokens.weight` `[vocab, hidden]`, the layer count from the
//!   `past_key_values.{i}.key` inputs, KV heads and head size from their declared shape. A config,
//!   when given, must agree with them (a mismatch is an error: it catches a config paired with
//!   the wrong model);
//! - the context length is not in the graph (RoPE is computed from `position_ids`): it comes
//!   from the config, else [`DEFAULT_CONTEXT_LENGTH`].
//!
//! The embedding table is taken out of the protobuf before a backend sees it (the graph never
//! reads it) and kept in its stored type: an f16 table stays f16 and rows are widened to f32
//! when read.
//!
//! The signature, the embedding initializer and the graph's wiring are checked before tract
//! parses the graph (its parser indexes tensors by name without checking), so a corrupt,
//! truncated or foreign file gives an [`Error::Model`] naming what is wrong.

use prost::bytes::Buf;
use prost::Message;
use tract_onnx::pb;

use super::{EmbeddingStorage, EmbeddingTable, ModelConfig};
use crate::error::{Error, Result};

/// Context length used when no config is given.
pub const DEFAULT_CONTEXT_LENGTH: usize = 2048;
/// Name of the embedding initializer the runtime reads.
pub const EMBED_TOKENS_INITIALIZER: &str = "model.embed_tokens.weight";
/// The inputs a backend feeds besides the KV cache.
pub const INPUT_NAMES: [&str; 3] = ["inputs_embeds", "attention_mask", "position_ids"];

// ONNX TensorProto.DataType
pub(crate) const ONNX_FLOAT: i32 = 1;
pub(crate) const ONNX_FLOAT16: i32 = 10;
const ONNX_STRING: i32 = 8;
// ONNX TensorProto.DataLocation
const ONNX_EXTERNAL: i32 = 1;

/// A checked ONNX decoder: its graph (without the embedding initializer), the embedding table
/// and its dimensions.
pub struct OnnxDecoder {
    pub proto: pb::ModelProto,
    pub embeddings: EmbeddingTable,
    pub config: ModelConfig,
}

impl OnnxDecoder {
    /// Decodes and checks the protobuf read from `onnx`; `config` (from a `config.json`) must
    /// agree with the graph and supplies the context length.
    pub fn read(onnx: impl Buf, config: Option<&ModelConfig>) -> Result<Self> {
        let mut proto = pb::ModelProto::decode(onnx).map_err(|e| {
            Error::Model(format!("not a valid ONNX model (protobuf decoding failed): {e}"))
        })?;
        let graph = proto
            .graph
            .as_mut()
            .ok_or_else(|| Error::Model("not a valid ONNX model: it has no graph".into()))?;
        let embeddings = take_embeddings(graph)?;
        let dims = check_signature(graph, embeddings.vocab_size(), embeddings.hidden_size())?;
        let config = match config {
            Some(c) => {
                let found = ModelConfig { context_length: c.context_length, ..dims.clone() };
                if *c != found {
                    return Err(Error::Model(format!(
                        "the config does not match the model: config {c:?}, graph {found:?}"
                    )));
                }
                if c.context_length == 0 {
                    return Err(Error::Model("the config's context_length is 0".into()));
                }
                c.clone()
            }
            None => dims,
        };
        Ok(OnnxDecoder { proto, embeddings, config })
    }
}

/// Removes the embedding initializer from the graph and returns it as a table.
fn take_embeddings(graph: &mut pb::GraphProto) -> Result<EmbeddingTable> {
    let ix = graph
        .initializer
        .iter()
        .position(|t| t.name == EMBED_TOKENS_INITIALIZER)
        .ok_or_else(|| {
            Error::Model(format!(
                "the model has no `{EMBED_TOKENS_INITIALIZER}` initializer (the token embedding table)"
            ))
        })?;
    let t = graph.initializer.remove(ix);
    graph.input.retain(|i| i.name != EMBED_TOKENS_INITIALIZER);
    let bad = |why: String| Error::Model(format!("`{EMBED_TOKENS_INITIALIZER}`: {why}"));
    if t.data_location == Some(ONNX_EXTERNAL) || !t.external_data.is_empty() {
        return Err(bad(
            "stored as external data; export the model as one protobuf".into(),
        ));
    }
    if t.dims.len() != 2 || t.dims.iter().any(|&d| d <= 0) {
        return Err(bad(format!(
            "expected a [vocab, hidden] matrix, got dims {:?}",
            t.dims
        )));
    }
    let (vocab, hidden) = (t.dims[0] as usize, t.dims[1] as usize);
    let n = vocab
        .checked_mul(hidden)
        .ok_or_else(|| bad(format!("dims {:?} are too large", t.dims)))?;
    let storage = match t.data_type {
        ONNX_FLOAT if !t.raw_data.is_empty() => {
            EmbeddingStorage::F32(le_elements(&t.raw_data, n, f32::from_le_bytes).map_err(bad)?)
        }
        ONNX_FLOAT => EmbeddingStorage::F32(t.float_data),
        ONNX_FLOAT16 if !t.raw_data.is_empty() => {
            EmbeddingStorage::F16(le_elements(&t.raw_data, n, u16::from_le_bytes).map_err(bad)?)
        }
        // ONNX keeps f16 values without raw_data in int32_data, one per element.
        ONNX_FLOAT16 => EmbeddingStorage::F16(t.int32_data.iter().map(|&x| x as u16).collect()),
        other => {
            return Err(bad(format!(
                "element type {other} is not supported (float32 or float16 only)"
            )))
        }
    };
    EmbeddingTable::new(vocab, hidden, storage).map_err(|e| bad(e.to_string()))
}

/// Exactly `n` little-endian elements of `N` bytes each, as ONNX stores `raw_data`.
fn le_elements<T, const N: usize>(raw: &[u8], n: usize, from: fn([u8; N]) -> T) -> Result<Vec<T>, String> {
    // Checked: dims of 2^31 x 2^31 give an `n` whose byte count overflows (a panic in debug
    // builds, and in release a wrapped product that could match; found by tests/fuzz.rs).
    if n.checked_mul(N) != Some(raw.len()) {
        return Err(format!("{} bytes of data for {n} elements of {N} bytes", raw.len()));
    }
    Ok(raw.chunks_exact(N).map(|b| from(b.try_into().expect("chunks_exact yields N bytes"))).collect())
}

/// What tract's ONNX parser assumes of a node without checking (each found by tests/fuzz.rs):
/// that it has an input unless it is a source (a Transpose without one indexed past the end),
/// that a Transpose `perm` is a permutation (one that is not made it allocate without bound),
/// and that no tensor in its attributes stores strings as raw bytes (see [`raw_strings`]).
fn check_node(node: &pb::NodeProto) -> Result<()> {
    let bad = |why: String| Err(Error::Model(format!("node `{}` ({}) {why}", node.name, node.op_type)));
    if node.input.is_empty() && !["Constant", "RandomNormal", "RandomUniform"].contains(&node.op_type.as_str()) {
        return bad("has no inputs".into());
    }
    for a in &node.attribute {
        if node.op_type == "Transpose" && a.name == "perm" {
            let mut sorted = a.ints.clone();
            sorted.sort_unstable();
            if !sorted.into_iter().eq(0..a.ints.len() as i64) {
                return bad(format!("has perm {:?}, which is not a permutation", a.ints));
            }
        }
        if a.t.iter().chain(&a.tensors).any(raw_strings) {
            return bad(format!("has a tensor of strings stored as raw bytes in attribute `{}`", a.name));
        }
    }
    Ok(())
}

/// Strings stored as raw bytes, which tract does not implement (it panics).
fn raw_strings(t: &pb::TensorProto) -> bool {
    t.data_type == ONNX_STRING && !t.raw_data.is_empty()
}

fn declared_dims(info: &pb::ValueInfoProto) -> Option<Vec<Option<i64>>> {
    use pb::tensor_shape_proto::dimension::Value;
    let pb::type_proto::Value::TensorType(t) = info.r#type.as_ref()?.value.as_ref()?;
    Some(
        t.shape
            .as_ref()?
            .dim
            .iter()
            .map(|d| match d.value {
                Some(Value::DimValue(v)) => Some(v),
                _ => None,
            })
            .collect(),
    )
}

/// Checks that the graph has exactly the inputs and outputs this runtime feeds and reads, and
/// returns the dimensions it declares (context length: [`DEFAULT_CONTEXT_LENGTH`]).
fn check_signature(graph: &pb::GraphProto, vocab: usize, hidden: usize) -> Result<ModelConfig> {
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()))
        .collect();
    if let Some(t) = graph.initializer.iter().find(|t| raw_strings(t)) {
        return Err(Error::Model(format!("initializer `{}` holds strings stored as raw bytes", t.name)));
    }
    let input = |name: &str| inputs.iter().copied().find(|i| i.name == name);
    let has_output = |name: &str| graph.output.iter().any(|o| o.name == name);
    let expected = "expected inputs inputs_embeds, attention_mask, position_ids, \
                    past_key_values.{i}.key/value and outputs logits, present.{i}.key/value";

    let require = |present: bool, kind: &str, name: &str| -> Result<()> {
        if present {
            Ok(())
        } else {
            Err(Error::Model(format!("the model has no {kind} `{name}` ({expected})")))
        }
    };
    for name in INPUT_NAMES {
        require(input(name).is_some(), "input", name)?;
    }
    let layers = (0..)
        .take_while(|i| input(&format!("past_key_values.{i}.key")).is_some())
        .count();
    require(layers > 0, "input", "past_key_values.0.key")?;
    for i in 0..layers {
        for kv in ["key", "value"] {
            let name = format!("past_key_values.{i}.{kv}");
            require(input(&name).is_some(), "input", &name)?;
            let name = format!("present.{i}.{kv}");
            require(has_output(&name), "output", &name)?;
        }
    }
    require(has_output("logits"), "output", "logits")?;
    // Every tensor a node reads and every graph output must be produced by something (tract's
    // parser indexes them without checking).
    let mut produced: std::collections::HashSet<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .chain(initializers.iter().copied())
        .collect();
    produced.insert(EMBED_TOKENS_INITIALIZER);
    produced.insert("");
    for node in &graph.node {
        produced.extend(node.output.iter().map(|o| o.as_str()));
    }
    for node in &graph.node {
        if let Some(missing) = node.input.iter().find(|i| !produced.contains(i.as_str())) {
            return Err(Error::Model(format!(
                "the graph is incomplete: node `{}` ({}) reads `{missing}`, which nothing produces",
                node.name, node.op_type
            )));
        }
        check_node(node)?;
    }
    if let Some(missing) = graph
        .output
        .iter()
        .find(|o| !produced.contains(o.name.as_str()))
    {
        return Err(Error::Model(format!(
            "the graph is incomplete: nothing produces its output `{}`",
            missing.name
        )));
    }
    if inputs.len() != 3 + 2 * layers {
        let extra: Vec<&str> = inputs
            .iter()
            .map(|i| i.name.as_str())
            .filter(|n| !INPUT_NAMES.contains(n) && !n.starts_with("past_key_values."))
            .collect();
        return Err(Error::Model(format!(
            "the model has unexpected inputs {extra:?} ({expected})"
        )));
    }

    let kv_dims = declared_dims(input("past_key_values.0.key").expect("checked"));
    let (kv_heads, head_dim) = match kv_dims.as_deref() {
        Some([_, Some(h), _, Some(d)]) if *h > 0 && *d > 0 => (*h as usize, *d as usize),
        _ => {
            return Err(Error::Model(format!(
                "`past_key_values.0.key` must be declared [batch, kv_heads, past, head_dim] \
                 with fixed kv_heads and head_dim, got {kv_dims:?}"
            )))
        }
    };
    if let Some(Some(h)) = declared_dims(input("inputs_embeds").expect("checked"))
        .as_deref()
        .and_then(|d| d.last())
    {
        if *h as usize != hidden {
            return Err(Error::Model(format!(
                "`inputs_embeds` has width {h} but the embedding table has {hidden}"
            )));
        }
    }
    Ok(ModelConfig {
        vocab_size: vocab,
        hidden_size: hidden,
        num_layers: layers,
        num_key_value_heads: kv_heads,
        head_dim,
        context_length: DEFAULT_CONTEXT_LENGTH,
    })
}

