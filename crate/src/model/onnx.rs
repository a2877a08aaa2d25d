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
//! when read; a 4-bit one stays in 4-bit blocks.
//!
//! The signature, the embedding initializer and the graph's wiring are checked before tract
//! parses the graph (its parser indexes tensors by name without checking), so a corrupt,
//! truncated or foreign file gives an [`Error::Model`] naming what is wrong.

use std::sync::Arc;

use prost::bytes::Buf;
use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};

use super::formats::GgmlType;
use super::quant::{QuantMatrix, BLOCK};
use super::{f16_bits_to_f32, EmbeddingStorage, EmbeddingTable, ModelConfig};
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
const ONNX_UINT8: i32 = 2;
const ONNX_INT8: i32 = 3;
const ONNX_STRING: i32 = 8;
const ONNX_UINT4: i32 = 21;
const ONNX_INT4: i32 = 22;
// ONNX TensorProto.DataLocation
const ONNX_EXTERNAL: i32 = 1;

/// A checked ONNX decoder: its graph (without the embedding initializer), the embedding table
/// and its dimensions.
pub struct OnnxDecoder {
    pub proto: pb::ModelProto,
    pub embeddings: EmbeddingTable,
    pub config: ModelConfig,
    /// How tract holds the graph's weights, most bytes first: e.g. `["INT8"]` for a
    /// `quantize_dynamic` export, `["Q4_0"]` for a `MatMulNBits` one (see [`weight_types`]).
    pub weight_types: Vec<&'static str>,
    /// Whether the KV cache is float16 (a half-precision export), else float32.
    pub kv_f16: bool,
}

impl OnnxDecoder {
    /// Decodes and checks the protobuf read from `onnx`; `config` (from a `config.json`) must
    /// agree with the graph and supplies the context length.
    pub fn read(onnx: impl Buf, config: Option<&ModelConfig>) -> Result<Self> {
        Self::read_with_data(onnx, &mut |location, _, _| Err(missing_data_file(location)), config)
    }

    /// [`read`](Self::read) for a graph whose weights may be external data (`model.onnx_data`
    /// beside it): `data` reads them, by the `location` the graph names.
    pub fn read_with_data(onnx: impl Buf, data: &mut ReadExternal<'_>, config: Option<&ModelConfig>) -> Result<Self> {
        let mut proto = decode(onnx)?;
        let graph = proto
            .graph
            .as_mut()
            .ok_or_else(|| Error::Model("not a valid ONNX model: it has no graph".into()))?;
        take_use_cache_branch(graph)?;
        check_causal_lm_with_cache(graph)?;
        inline_external_data(graph, data)?;
        split_wide_integer_matmuls(graph, TRACT_CONST_FOLD_ELEMENTS);
        let kv_f16 = kv_cache_in_stored_type(graph)?;
        let embeddings = match take_gathered_embeddings(graph)? {
            Some(table) => table,
            None => take_embeddings(graph)?,
        };
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
        let weight_types = weight_types(proto.graph.as_ref().expect("checked above"));
        Ok(OnnxDecoder { proto, embeddings, config, weight_types, kv_f16 })
    }
}

fn decode(onnx: impl Buf) -> Result<pb::ModelProto> {
    pb::ModelProto::decode(onnx)
        .map_err(|e| Error::Model(format!("not a valid ONNX model (protobuf decoding failed): {e}")))
}

/// Reads `length` bytes (to the end of the file when `None`) at `offset` of the external data
/// file `location`.
pub type ReadExternal<'a> = dyn FnMut(&str, u64, Option<u64>) -> Result<Vec<u8>> + 'a;

fn missing_data_file(location: &str) -> Error {
    Error::Model(format!(
        "the weights are stored in `{location}`, which was not given: give it with the .onnx file"
    ))
}

/// An external data file's bytes, wherever they are: in memory here, a JS array in wasm (read
/// tensor by tensor, never copied whole).
pub trait DataFile {
    fn len(&self) -> u64;
    /// Bytes `start..end`, which are within `len`.
    fn bytes(&self, start: u64, end: u64) -> Vec<u8>;
}

impl DataFile for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn bytes(&self, start: u64, end: u64) -> Vec<u8> {
        self[start as usize..end as usize].to_vec()
    }
}

/// The external data reader over `files`, named as the graph's `location`s name them.
pub fn data_files<N: AsRef<str>, F: DataFile>(files: &[(N, F)]) -> impl FnMut(&str, u64, Option<u64>) -> Result<Vec<u8>> + '_ {
    move |location, offset, length| {
        let (_, file) = files.iter().find(|(name, _)| name.as_ref() == location).ok_or_else(|| missing_data_file(location))?;
        let end = match length {
            Some(n) => offset.checked_add(n),
            None => Some(file.len()),
        };
        match end {
            Some(end) if offset <= end && end <= file.len() => Ok(file.bytes(offset, end)),
            _ => Err(Error::Model(format!(
                "`{location}` has {} bytes, but the graph reads {} bytes at offset {offset} of it (a data file of another export?)",
                file.len(),
                length.map_or("the rest".to_string(), |n| n.to_string())
            ))),
        }
    }
}

/// The external data files `onnx` names, in the order they are first read (none: one protobuf).
pub fn external_data_files(onnx: impl Buf) -> Result<Vec<String>> {
    let proto = decode(onnx)?;
    let mut files: Vec<String> = Vec::new();
    for t in proto.graph.iter().flat_map(|g| &g.initializer).filter(|t| is_external(t)) {
        let location = external_field(t, "location")?;
        if !files.contains(&location) {
            files.push(location);
        }
    }
    Ok(files)
}

fn is_external(t: &pb::TensorProto) -> bool {
    t.data_location == Some(ONNX_EXTERNAL) || !t.external_data.is_empty()
}

fn external_field(t: &pb::TensorProto, key: &str) -> Result<String> {
    t.external_data
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.clone())
        .ok_or_else(|| Error::Model(format!("tensor `{}` is external data without a `{key}`", t.name)))
}

/// How tract holds the graph's weights (initializers of 1024 elements or more), most bytes
/// first: their stored types (an int8 weight of `MatMulInteger` stays int8), except for
/// `MatMulNBits`, whose 4-bit weights and their scales tract keeps as Q4_0 blocks when the block
/// is 32 and K a multiple of it, and otherwise widens to F32, and for a weight read only through
/// a Cast to f32, which tract folds into an f32 constant.
pub fn weight_types(graph: &pb::GraphProto) -> Vec<&'static str> {
    let mut nbits: std::collections::HashMap<&str, &'static str> = std::collections::HashMap::new();
    for node in graph.node.iter().filter(|n| n.op_type == "MatMulNBits") {
        let attr = |name: &str| node.attribute.iter().find(|a| a.name == name).map(|a| a.i);
        let q4_0 = attr("block_size") == Some(32) && attr("K").is_some_and(|k| k % 32 == 0) && attr("bits").unwrap_or(4) == 4;
        for input in node.input.iter().skip(1).take(2) {
            nbits.insert(input, if q4_0 { "Q4_0" } else { "F32" });
        }
    }
    // An f16 weight read only through a Cast to f32 (our converter's f16 layout) is folded to f32.
    let widened = |name: &str| {
        let readers = readers_of(&graph.node, name);
        !readers.is_empty() && readers.iter().all(|&n| is_cast_to(&graph.node[n], ONNX_FLOAT))
    };
    let mut bytes: Vec<(&'static str, u64)> = Vec::new();
    for t in &graph.initializer {
        let elements: i64 = t.dims.iter().product();
        let (Some(size), true) = (element_bytes(t.data_type), elements >= 1024 || nbits.contains_key(t.name.as_str())) else { continue };
        let name = match t.data_type {
            _ if nbits.contains_key(t.name.as_str()) => nbits[t.name.as_str()],
            _ if widened(&t.name) => "F32",
            ONNX_FLOAT => "F32",
            ONNX_FLOAT16 => "F16",
            16 => "BF16",
            ONNX_INT8 => "INT8",
            ONNX_UINT8 => "UINT8",
            _ => continue,
        };
        match bytes.iter_mut().find(|(n, _)| *n == name) {
            Some((_, b)) => *b += size * elements as u64,
            None => bytes.push((name, size * elements as u64)),
        }
    }
    bytes.sort_by(|a, b| b.1.cmp(&a.1));
    bytes.into_iter().map(|(name, _)| name).collect()
}

/// Bytes per element of the tensor types an LLM's initializers use (None: another type).
fn element_bytes(data_type: i32) -> Option<u64> {
    // ONNX TensorProto.DataType: FLOAT, UINT8, INT8, UINT16, INT16, INT32, INT64, BOOL, FLOAT16,
    // DOUBLE, UINT32, UINT64, BFLOAT16.
    Some(match data_type {
        2 | 3 | 9 => 1,
        4 | 5 | 10 | 16 => 2,
        1 | 6 | 12 => 4,
        7 | 11 | 13 => 8,
        _ => return None,
    })
}

/// Moves every external initializer's bytes into the graph, checked against its dims, so that
/// the rest of the loader (and tract) sees one protobuf.
fn inline_external_data(graph: &mut pb::GraphProto, read: &mut ReadExternal<'_>) -> Result<()> {
    for t in graph.initializer.iter_mut().filter(|t| is_external(t)) {
        let location = external_field(t, "location")?;
        let number = |key: &str| -> Result<Option<u64>> {
            match t.external_data.iter().find(|e| e.key == key) {
                None => Ok(None),
                Some(e) => e.value.parse().map(Some).map_err(|_| {
                    Error::Model(format!("tensor `{}` has external data {key} `{}`, not a number", t.name, e.value))
                }),
            }
        };
        let (offset, length) = (number("offset")?.unwrap_or(0), number("length")?);
        let bytes = read(&location, offset, length)?;
        let expected = element_bytes(t.data_type).and_then(|size| {
            t.dims.iter().try_fold(size, |n, &d| u64::try_from(d).ok().and_then(|d| n.checked_mul(d)))
        });
        if let Some(expected) = expected {
            if bytes.len() as u64 != expected {
                return Err(Error::Model(format!(
                    "tensor `{}` needs {expected} bytes but `{location}` holds {} for it (a data file of another export?)",
                    t.name,
                    bytes.len()
                )));
            }
        }
        t.raw_data = bytes;
        t.external_data.clear();
        t.data_location = None;
    }
    Ok(())
}

/// A decoder-only causal LM exported with its KV cache has a `logits` output and
/// `past_key_values.0.key` among its inputs. Anything else (an encoder, a model exported without
/// its cache) is refused before the rest is checked, saying what was expected and what it has.
fn check_causal_lm_with_cache(graph: &pb::GraphProto) -> Result<()> {
    let initializers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).filter(|n| !initializers.contains(n)).collect();
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    if outputs.contains(&"logits") && inputs.contains(&"past_key_values.0.key") {
        return Ok(());
    }
    let few = |names: &[&str]| {
        let shown: Vec<&str> = names.iter().copied().take(6).collect();
        format!("{shown:?}{}", if names.len() > 6 { format!(" and {} more", names.len() - 6) } else { String::new() })
    };
    Err(Error::Model(format!(
        "this is not a causal language model exported with its KV cache: expected a `logits` output and \
         `past_key_values.{{i}}.key/value` inputs (optimum: `--task text-generation-with-past`), \
         but it has inputs {} and outputs {}",
        few(&inputs),
        few(&outputs)
    )))
}

/// optimum's merged decoder takes `use_cache_branch` and chooses, by an `If`, between its graph
/// with a past and without. This runtime always feeds a past (empty at first, which the with-past
/// branch takes too), so the `If` is replaced by its with-past branch, inlined, and the rest of
/// the loader sees a plain decoder.
fn take_use_cache_branch(graph: &mut pb::GraphProto) -> Result<()> {
    const NAME: &str = "use_cache_branch";
    let Some(input) = graph.input.iter().position(|i| i.name == NAME) else { return Ok(()) };
    graph.input.remove(input);
    let readers = readers_of(&graph.node, NAME);
    let [ix] = readers[..] else {
        return Err(Error::Model(format!("`{NAME}` must feed one If node (optimum's merged decoder); it feeds {} nodes", readers.len())));
    };
    let node = graph.node.remove(ix);
    let branch = node.attribute.iter().find(|a| a.name == "then_branch").and_then(|a| a.g.clone());
    let (true, Some(branch)) = (node.op_type == "If", branch) else {
        return Err(Error::Model(format!("`{NAME}` must feed an If node with a then_branch (optimum's merged decoder), not {} `{}`", node.op_type, node.name)));
    };
    let renames: Vec<(String, String)> = branch.output.iter().map(|o| o.name.clone()).zip(node.output.iter().cloned()).collect();
    let mut inlined = branch.node;
    rename_values(&mut inlined, &renames);
    graph.node.splice(ix..ix, inlined);
    graph.initializer.extend(branch.initializer);
    Ok(())
}

/// The nodes (their indices) that read the value `name`.
fn readers_of(nodes: &[pb::NodeProto], name: &str) -> Vec<usize> {
    (0..nodes.len()).filter(|&n| nodes[n].input.iter().any(|x| x == name)).collect()
}

/// Renames values in `nodes`, wherever they are read or written: `(from, to)` pairs.
fn rename_values(nodes: &mut [pb::NodeProto], renames: &[(String, String)]) {
    for name in nodes.iter_mut().flat_map(|n| n.input.iter_mut().chain(n.output.iter_mut())) {
        if let Some((_, to)) = renames.iter().find(|(from, _)| from == name) {
            *name = to.clone();
        }
    }
}

fn is_cast_to(node: &pb::NodeProto, elem_type: i32) -> bool {
    node.op_type == "Cast" && node.attribute.iter().any(|a| a.name == "to" && a.i == elem_type as i64)
}

/// The most i32 elements tract 0.23 folds into a constant (`CONST_FOLD_MEM_BUDGET`, 4 MiB).
pub const TRACT_CONST_FOLD_ELEMENTS: usize = (4 << 20) / 4;

/// Splits each `MatMulInteger` whose int8 weight `[k, n]` has more than `max_elements` elements
/// into column blocks under it, joined by a `Concat`. tract computes a quantised product's
/// zero-point sums from the weight widened to i32, and folds that into a constant only within
/// its budget: past it (a `quantize_dynamic` export's lm_head, 576 × 49152 for SmolLM2) it
/// widens, sums and packs the whole weight on every forward pass, 13× slower decode. Applied at
/// load with [`TRACT_CONST_FOLD_ELEMENTS`].
pub fn split_wide_integer_matmuls(graph: &mut pb::GraphProto, max_elements: usize) {
    let mut at = 0;
    while at < graph.node.len() {
        let Some(blocks) = column_blocks(graph, &graph.node[at], max_elements) else {
            at += 1;
            continue;
        };
        let node = graph.node.remove(at);
        let take = |graph: &mut pb::GraphProto, name: &str| {
            let index = graph.initializer.iter().position(|t| t.name == name).expect("checked by column_blocks");
            graph.initializer.swap_remove(index)
        };
        let weight = take(graph, &node.input[1]);
        let zero_point = node.input.get(3).filter(|name| !name.is_empty()).map(|name| take(graph, name));
        let n = weight.dims[1] as usize;
        let mut parts = Vec::new();
        for (start, end) in blocks {
            // Rows of `columns` values, row-major: their [start, end) columns.
            let block = |t: &pb::TensorProto, columns: usize, dims: Vec<i64>| pb::TensorProto {
                name: format!("{}.cols{start}", t.name),
                dims,
                data_type: t.data_type,
                raw_data: t.raw_data.chunks_exact(columns).flat_map(|row| &row[start..end]).copied().collect(),
                ..Default::default()
            };
            let mut inputs = node.input.clone();
            let w = block(&weight, n, vec![weight.dims[0], (end - start) as i64]);
            inputs[1] = w.name.clone();
            graph.initializer.push(w);
            if let Some(zp) = zero_point.as_ref().filter(|zp| per_column(zp, n)) {
                let zp = block(zp, n, vec![(end - start) as i64]);
                inputs[3] = zp.name.clone();
                graph.initializer.push(zp);
            }
            let part = format!("{}.cols{start}", node.output[0]);
            parts.push(part.clone());
            graph.node.insert(at, pb::NodeProto { name: format!("{}.cols{start}", node.name), input: inputs, output: vec![part], ..node.clone() });
            at += 1;
        }
        if let Some(zp) = zero_point.filter(|zp| !per_column(zp, n)) {
            graph.initializer.push(zp);
        }
        let concat = pb::NodeProto { op_type: "Concat".into(), name: format!("{}.concat", node.name), input: parts, output: node.output, attribute: vec![attr_int("axis", -1)], ..Default::default() };
        graph.node.insert(at, concat);
        at += 1;
    }
}

/// Whether a weight zero point has one (8-bit) value a column, kept as raw bytes.
fn per_column(zero_point: &pb::TensorProto, columns: usize) -> bool {
    columns > 1 && zero_point.dims == [columns as i64] && zero_point.raw_data.len() == columns
}

/// The column blocks, each `(start, end)`, of a `MatMulInteger` worth splitting: its weight is
/// an int8 initializer `[k, n]` over `max_elements`, its weight zero point a scalar or
/// per-column initializer, and it alone reads them.
fn column_blocks(graph: &pb::GraphProto, node: &pb::NodeProto, max_elements: usize) -> Option<Vec<(usize, usize)>> {
    if node.op_type != "MatMulInteger" || node.input.len() < 2 || node.output.len() != 1 {
        return None;
    }
    let initializer = |name: &str| graph.initializer.iter().find(|t| t.name == name);
    let only_reader = |name: &str| readers_of(&graph.node, name).len() == 1;
    let weight = initializer(&node.input[1]).filter(|_| only_reader(&node.input[1]))?;
    let (k, n) = match weight.dims[..] {
        [k, n] if k > 0 && n > 0 => (k as usize, n as usize),
        _ => return None,
    };
    let elements = k.checked_mul(n)?;
    let int8 = matches!(weight.data_type, ONNX_INT8 | ONNX_UINT8) && weight.raw_data.len() == elements;
    let zero_point_ok = match node.input.get(3).filter(|name| !name.is_empty()) {
        None => true,
        Some(name) => initializer(name).is_some_and(|zp| per_column(zp, n) || zp.dims.iter().product::<i64>() == 1) && only_reader(name),
    };
    if !int8 || elements <= max_elements || !zero_point_ok {
        return None;
    }
    let width = (max_elements / k).max(1);
    Some((0..n).step_by(width).map(|start| (start, (start + width).min(n))).collect())
}

/// The element type a graph input or output declares.
fn declared_type(info: &pb::ValueInfoProto) -> Option<i32> {
    match info.r#type.as_ref()?.value.as_ref()? {
        pb::type_proto::Value::TensorType(t) => Some(t.elem_type),
    }
}

fn set_declared_type(info: &mut pb::ValueInfoProto, elem_type: i32) {
    if let Some(pb::TypeProto { value: Some(pb::type_proto::Value::TensorType(t)), .. }) = info.r#type.as_mut() {
        t.elem_type = elem_type;
    }
}

/// A half-precision export computes in f16 but may keep f32 at its edges (onnxruntime's
/// `keep_io_types`: a Cast after each past input and before each present output). tract's KV
/// cache rewrite needs `present = Concat(past, new)` with nothing between, so those Casts go and
/// the cache is kept in f16, as the graph computes it. Returns whether the cache is f16.
fn kv_cache_in_stored_type(graph: &mut pb::GraphProto) -> Result<bool> {
    let mut renames: Vec<(String, String)> = Vec::new();
    let mut casts: Vec<usize> = Vec::new();
    for input in graph.input.iter_mut().filter(|i| i.name.starts_with("past_key_values.")) {
        if let [n] = readers_of(&graph.node, &input.name)[..] {
            let node = &graph.node[n];
            if is_cast_to(node, ONNX_FLOAT16) {
                renames.push((node.output[0].clone(), input.name.clone()));
                casts.push(n);
                set_declared_type(input, ONNX_FLOAT16);
            }
        }
    }
    for output in graph.output.iter_mut().filter(|o| o.name.starts_with("present.")) {
        let producer = graph.node.iter().position(|n| n.output.contains(&output.name));
        if let Some(n) = producer.filter(|&n| graph.node[n].op_type == "Cast" && graph.node[n].input.len() == 1) {
            renames.push((graph.node[n].input[0].clone(), output.name.clone()));
            casts.push(n);
            set_declared_type(output, ONNX_FLOAT16);
        }
    }
    casts.sort_unstable();
    for n in casts.into_iter().rev() {
        graph.node.remove(n);
    }
    rename_values(&mut graph.node, &renames);
    let kv_type = graph.input.iter().find(|i| i.name == "past_key_values.0.key").and_then(declared_type);
    if let Some(logits) = graph.output.iter_mut().find(|o| o.name == "logits" && declared_type(o) == Some(ONNX_FLOAT16)) {
        // Logits are read as f32: an f16 graph output gets a Cast.
        logits.name = "logits_f16".into();
        set_declared_type(logits, ONNX_FLOAT);
        rename_values(&mut graph.node, &[("logits".into(), "logits_f16".into())]);
        graph.node.push(pb::NodeProto { op_type: "Cast".into(), name: "logits_to_f32".into(), input: vec!["logits_f16".into()], output: vec!["logits".into()], attribute: vec![attr_int("to", ONNX_FLOAT as i64)], ..Default::default() });
        graph.output.iter_mut().find(|o| o.name == "logits_f16").expect("renamed above").name = "logits".into();
    }
    Ok(kv_type == Some(ONNX_FLOAT16))
}

/// optimum's and transformers.js's layout: `input_ids` in, and the embedding `Gather` inside the
/// graph. The Gather goes, its table becomes the [`EmbeddingTable`], and the graph takes
/// `inputs_embeds` where the Gather's output was, so that superposed decoding can feed any
/// embedding. optimum's graphs also read `Shape(input_ids)` (for the mask and the logits'
/// shape): those Shapes read the embeddings instead (see [`shape_of_ids_from_embeddings`]).
/// None: the graph takes `inputs_embeds` already.
fn take_gathered_embeddings(graph: &mut pb::GraphProto) -> Result<Option<EmbeddingTable>> {
    let Some(ids_input) = graph.input.iter().position(|i| i.name == "input_ids") else {
        return Ok(None);
    };
    if graph.input.iter().any(|i| i.name == INPUT_NAMES[0]) {
        return Err(Error::Model("the model takes both `input_ids` and `inputs_embeds`: expected one".into()));
    }
    let readers = readers_of(&graph.node, "input_ids");
    let is_gather = |n: &pb::NodeProto| match n.op_type.as_str() {
        "Gather" => n.input.len() == 2 && n.input[1] == "input_ids",
        "GatherBlockQuantized" => n.input.get(1).is_some_and(|i| i == "input_ids"),
        _ => false,
    };
    let is_shape = |n: &pb::NodeProto| n.op_type == "Shape" && n.input.len() == 1;
    let gathers: Vec<usize> = readers.iter().copied().filter(|&i| is_gather(&graph.node[i])).collect();
    let gather = match gathers[..] {
        [ix] if readers.iter().all(|&i| i == ix || is_shape(&graph.node[i])) => ix,
        _ => {
            let names: Vec<String> = readers.iter().map(|&i| format!("{} ({})", graph.node[i].name, graph.node[i].op_type)).collect();
            return Err(Error::Model(format!(
                "`input_ids` must feed one embedding Gather, and otherwise only Shape nodes; it feeds {names:?}"
            )));
        }
    };
    for &ix in readers.iter().filter(|&&i| i != gather) {
        shape_of_ids_from_embeddings(&mut graph.node[ix]);
    }
    let node = graph.node.remove(gather);
    let (embeddings, gathered, f16_rows) = if node.op_type == "GatherBlockQuantized" {
        let (embeddings, f16_rows) = block_quantized_table(graph, &node)?;
        (embeddings, node.output.first().cloned().unwrap_or_default(), f16_rows)
    } else {
        let (embeddings, gathered) = gathered_table(graph, &node)?;
        let f16_rows = matches!(embeddings.storage(), EmbeddingStorage::F16(_));
        (embeddings, gathered, f16_rows)
    };
    let hidden = embeddings.hidden_size();
    graph.input[ids_input] = value_info(INPUT_NAMES[0].into(), ONNX_FLOAT, vec![Dim::Param("batch_size"), Dim::Param("sequence_length"), Dim::Value(hidden)]);
    if f16_rows {
        // The Gather gave f16 rows: the f32 embeddings fed are cast to what it gave.
        let cast = pb::NodeProto { op_type: "Cast".into(), name: format!("{}/cast_inputs_embeds", node.name), input: vec![INPUT_NAMES[0].into()], output: vec![gathered], attribute: vec![attr_int("to", ONNX_FLOAT16 as i64)], ..Default::default() };
        graph.node.insert(0, cast);
    } else {
        rename_values(&mut graph.node, &[(gathered, INPUT_NAMES[0].into())]);
    }
    Ok(Some(embeddings))
}

/// A `Shape(input_ids)` rewired to read `inputs_embeds` `[batch, seq, hidden]`: its `start` and
/// `end`, resolved against the ids' rank 2, select the same `[batch, seq]` dims (or the part it
/// asked for). tract reads `start`/`end` at any opset.
fn shape_of_ids_from_embeddings(node: &mut pb::NodeProto) {
    let attr = |name: &str| node.attribute.iter().find(|a| a.name == name).map(|a| a.i);
    let resolve = |axis: i64| (if axis < 0 { axis + 2 } else { axis }).clamp(0, 2);
    let start = resolve(attr("start").unwrap_or(0));
    let end = resolve(attr("end").unwrap_or(2)).max(start);
    node.attribute.retain(|a| a.name != "start" && a.name != "end");
    node.attribute.extend([attr_int("start", start), attr_int("end", end)]);
    node.input[0] = INPUT_NAMES[0].into();
}

/// The table of a plain embedding `Gather` (f32, f16, or quantize_dynamic's 8-bit one with the
/// DequantizeLinear after it, which goes too), and the value that holds the gathered rows.
fn gathered_table(graph: &mut pb::GraphProto, node: &pb::NodeProto) -> Result<(EmbeddingTable, String)> {
    let table = &node.input[0];
    let Some(t) = graph.initializer.iter().position(|t| &t.name == table) else {
        return Err(Error::Model(format!(
            "the embedding Gather reads `{table}`, which is not an initializer (a quantised table is not supported yet)"
        )));
    };
    let mut gathered = node.output.first().cloned().unwrap_or_default();
    // quantize_dynamic's int8 table: Gather(int8) → DequantizeLinear(scale, zero point).
    let dequantize = if [ONNX_INT8, ONNX_UINT8].contains(&graph.initializer[t].data_type) {
        let dq = match readers_of(&graph.node, &gathered)[..] {
            [n] if graph.node[n].op_type == "DequantizeLinear" && graph.node[n].input.len() >= 2 => graph.node.remove(n),
            _ => return Err(Error::Model(format!("the embedding table `{table}` is 8-bit, but its Gather does not feed one DequantizeLinear"))),
        };
        let scale = scalar(graph, &dq.input[1]).ok_or_else(|| Error::Model(format!("the embedding's DequantizeLinear scale `{}` is not one constant", dq.input[1])))?;
        let zero_point = match dq.input.get(2).filter(|z| !z.is_empty()) {
            Some(z) => scalar(graph, z).ok_or_else(|| Error::Model(format!("the embedding's DequantizeLinear zero point `{z}` is not one constant")))?,
            None => 0.0,
        };
        gathered = dq.output.first().cloned().unwrap_or_default();
        Some((scale, zero_point))
    } else {
        None
    };
    let tensor = take_initializer(graph, table).expect("found above");
    Ok((embedding_table(tensor, dequantize)?, gathered))
}

/// An initializer, taken out of the graph unless a node still reads it (a tied output
/// projection may read the embedding table too), when it is cloned.
fn take_initializer(graph: &mut pb::GraphProto, name: &str) -> Option<pb::TensorProto> {
    let t = graph.initializer.iter().position(|t| t.name == name)?;
    Some(if readers_of(&graph.node, name).is_empty() { graph.initializer.remove(t) } else { graph.initializer[t].clone() })
}

/// transformers.js's 4-bit embedding: `GatherBlockQuantized(data, input_ids, scales[, zero
/// points])`, each row quantised in blocks along its length (MatMulNBits' packing: two 4-bit
/// values a byte, the first in the low nibble; or 8-bit), to values as onnxruntime dequantises
/// them, `(q − zero point) · scale`, kept in blocks where it can (see below). Returns the table
/// and whether the Gather gave f16 rows.
fn block_quantized_table(graph: &mut pb::GraphProto, node: &pb::NodeProto) -> Result<(EmbeddingTable, bool)> {
    let bad = |why: String| Error::Model(format!("the embedding's GatherBlockQuantized `{}` {why}", node.name));
    let attr = |name: &str, default: i64| node.attribute.iter().find(|a| a.name == name).map_or(default, |a| a.i);
    let (gather_axis, quantize_axis, block, bits) = (attr("gather_axis", 0), attr("quantize_axis", 1), attr("block_size", 128), attr("bits", 4));
    if gather_axis != 0 || !matches!(quantize_axis, 1 | -1) {
        return Err(bad(format!("gathers along axis {gather_axis} and quantises along axis {quantize_axis}: expected rows gathered, quantised along each row")));
    }
    // (usize: a 64-bit block size would wrap to 0 in wasm.)
    let block = match usize::try_from(block) {
        Ok(b) if b >= 16 && b.is_power_of_two() => b,
        _ => return Err(bad(format!("has block_size {block}: expected a power of two, at least 16"))),
    };
    let mut input = |i: usize, what: &str| match node.input.get(i).filter(|name| !name.is_empty()) {
        None => Ok(None),
        Some(name) => take_initializer(graph, name).map(Some).ok_or_else(|| bad(format!("reads its {what} from `{name}`, which is not an initializer"))),
    };
    let data = input(0, "table")?.ok_or_else(|| bad("has no table".into()))?;
    let scales = input(2, "scales")?.ok_or_else(|| bad("has no scales".into()))?;
    let zero_points = input(3, "zero points")?;
    let (rows, stored_cols) = match data.dims[..] {
        [rows, cols] if rows > 0 && cols > 0 => (rows as usize, cols as usize),
        _ => return Err(bad(format!("has a table of dims {:?}: expected [vocab, hidden]", data.dims))),
    };
    // Values and zero points are read unsigned: int4's q ∈ [−8, 7] as the nibble q + 8 (its sign
    // bit flipped), which leaves every q − zero point as it is.
    let flip = if data.data_type == ONNX_INT4 { 8 } else { 0 };
    // Value `i` of row-major 4-bit values, two a byte.
    let nibble = |raw: &[u8], i: usize| ((raw[i / 2] >> (4 * (i % 2))) & 0xF) as i32 ^ flip;
    let (cols, default_zero_point) = match (data.data_type, bits) {
        (ONNX_UINT8, 4) => (stored_cols * 2, 8),
        (ONNX_UINT8, 8) => (stored_cols, 128),
        (ONNX_UINT4 | ONNX_INT4, 4) => (stored_cols, flip),
        (t, b) => return Err(bad(format!("stores {b}-bit values as element type {t}: expected 4-bit (uint8, uint4 or int4) or 8-bit (uint8)"))),
    };
    let elements = rows.checked_mul(cols).ok_or_else(|| bad(format!("has dims {:?}, too large", data.dims)))?;
    let stored_bytes = if bits == 8 { elements } else { elements.div_ceil(2) };
    if data.raw_data.len() != stored_bytes {
        return Err(bad(format!("holds {} bytes for {rows} x {cols} {bits}-bit values", data.raw_data.len())));
    }
    let blocks = cols.div_ceil(block);
    if scales.dims != [rows as i64, blocks as i64] {
        return Err(bad(format!("has scales of dims {:?}: expected [{rows}, {blocks}] (blocks of {block})", scales.dims)));
    }
    let f16_rows = scales.data_type == ONNX_FLOAT16;
    let scale = float_values(&scales, rows * blocks).map_err(|why| bad(format!("has scales of {why}")))?;
    let quant = |i: usize| if bits == 8 { data.raw_data[i] as i32 } else { nibble(&data.raw_data, i) };
    let zero_point: Vec<i32> = match &zero_points {
        None => vec![default_zero_point; rows * blocks],
        Some(zp) => {
            // Row r's zero points start at nibble r · stride: 4-bit uint8 ones pad each row to a
            // whole byte, uint4 and int4 ones run on across rows.
            let (zp_cols, stride) = match (data.data_type, bits) {
                (ONNX_UINT8, 4) => (blocks.div_ceil(2), blocks.div_ceil(2) * 2),
                _ => (blocks, blocks),
            };
            let bytes = if bits == 8 { rows * blocks } else { (rows * stride).div_ceil(2) };
            if zp.data_type != data.data_type || zp.dims != [rows as i64, zp_cols as i64] || zp.raw_data.len() != bytes {
                return Err(bad(format!("has zero points of type {} and dims {:?}: expected the table's type, dims [{rows}, {zp_cols}]", zp.data_type, zp.dims)));
            }
            let at = |s: usize| if bits == 8 { zp.raw_data[s] as i32 } else { nibble(&zp.raw_data, s / blocks * stride + s % blocks) };
            (0..rows * blocks).map(at).collect()
        }
    };
    // Kept in 32-blocks where a format of our kernels holds the values exactly or within an f32
    // rounding: 4-bit ones as Q4_0 when every zero point is 8, else as Q4_1 with min −zero point
    // · scale; 8-bit ones as Q8_0 when every zero point is 128. Others (blocks of 16, or 8-bit
    // with other zero points) widen to f32.
    let format = match bits {
        _ if block % BLOCK != 0 || cols % BLOCK != 0 => None,
        4 if zero_point.iter().all(|&z| z == 8) => Some(GgmlType::Q4_0),
        4 => Some(GgmlType::Q4_1),
        _ if zero_point.iter().all(|&z| z == 128) => Some(GgmlType::Q8_0),
        _ => None,
    };
    let storage = match format {
        Some(format) => {
            let centre = if format == GgmlType::Q8_0 { 128 } else { 0 };
            let blocks_of_32 = |r: usize, b: usize| {
                let s = r * blocks + b * BLOCK / block;
                let first = r * cols + b * BLOCK;
                (std::array::from_fn(|j| quant(first + j) - centre), scale[s], -(zero_point[s] as f32) * scale[s])
            };
            EmbeddingStorage::Quant(Arc::new(QuantMatrix::from_block_quants(format, rows, cols, blocks_of_32).map_err(|e| bad(e.to_string()))?))
        }
        None => EmbeddingStorage::F32(
            (0..elements)
                .map(|i| {
                    let s = i / cols * blocks + i % cols / block;
                    (quant(i) - zero_point[s]) as f32 * scale[s]
                })
                .collect(),
        ),
    };
    let table = EmbeddingTable::new(rows, cols, storage).map_err(|e| bad(e.to_string()))?;
    Ok((table, f16_rows))
}

/// Removes the embedding initializer from the graph and returns it as a table.
fn take_embeddings(graph: &mut pb::GraphProto) -> Result<EmbeddingTable> {
    let ix = graph
        .initializer
        .iter()
        .position(|t| t.name == EMBED_TOKENS_INITIALIZER)
        .ok_or_else(|| {
            Error::Model(format!(
                "the model has no `{EMBED_TOKENS_INITIALIZER}` initializer (the token embedding table) \
                 and no `input_ids` input with an embedding Gather"
            ))
        })?;
    let t = graph.initializer.remove(ix);
    graph.input.retain(|i| i.name != EMBED_TOKENS_INITIALIZER);
    embedding_table(t, None)
}

/// The value of a one-element constant (an initializer of any numeric type), as f32.
fn scalar(graph: &pb::GraphProto, name: &str) -> Option<f32> {
    let t = graph.initializer.iter().find(|t| t.name == name)?;
    if t.dims.iter().product::<i64>() != 1 {
        return None;
    }
    let raw = &t.raw_data;
    Some(match t.data_type {
        ONNX_FLOAT if raw.len() == 4 => f32::from_le_bytes(raw[..4].try_into().ok()?),
        ONNX_FLOAT => *t.float_data.first()?,
        ONNX_INT8 if raw.len() == 1 => raw[0] as i8 as f32,
        ONNX_UINT8 if raw.len() == 1 => raw[0] as f32,
        ONNX_INT8 | ONNX_UINT8 => *t.int32_data.first()? as f32,
        _ => return None,
    })
}

/// An embedding initializer `[vocab, hidden]` as a table: f32 or f16 in its stored type, or an
/// 8-bit one with its (scale, zero point) widened to f32 (4× its size: the table is read row by
/// row, and the graph's matrices stay 8-bit).
fn embedding_table(t: pb::TensorProto, dequantize: Option<(f32, f32)>) -> Result<EmbeddingTable> {
    let name = t.name.clone();
    let bad = |why: String| Error::Model(format!("`{name}`: {why}"));
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
        ONNX_INT8 | ONNX_UINT8 if dequantize.is_some() && t.raw_data.len() == n => {
            let (scale, zero_point) = dequantize.expect("checked");
            let value = |b: u8| if t.data_type == ONNX_INT8 { b as i8 as f32 } else { b as f32 };
            EmbeddingStorage::F32(t.raw_data.iter().map(|&b| (value(b) - zero_point) * scale).collect())
        }
        other => {
            return Err(bad(format!(
                "element type {other} is not supported (float32, float16, or 8-bit with a DequantizeLinear)"
            )))
        }
    };
    EmbeddingTable::new(vocab, hidden, storage).map_err(|e| bad(e.to_string()))
}

/// The `n` values of a float32 or float16 tensor, as f32.
fn float_values(t: &pb::TensorProto, n: usize) -> Result<Vec<f32>, String> {
    match t.data_type {
        ONNX_FLOAT if !t.raw_data.is_empty() => le_elements(&t.raw_data, n, f32::from_le_bytes),
        ONNX_FLOAT if t.float_data.len() == n => Ok(t.float_data.clone()),
        ONNX_FLOAT16 if !t.raw_data.is_empty() => Ok(le_elements(&t.raw_data, n, u16::from_le_bytes)?.into_iter().map(f16_bits_to_f32).collect()),
        ONNX_FLOAT16 if t.int32_data.len() == n => Ok(t.int32_data.iter().map(|&x| f16_bits_to_f32(x as u16)).collect()),
        other => Err(format!("element type {other}: expected {n} float32 or float16 values")),
    }
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
    let expected = "expected inputs input_ids or inputs_embeds, attention_mask, position_ids (optional), \
                    past_key_values.{i}.key/value and outputs logits, present.{i}.key/value";

    let require = |present: bool, kind: &str, name: &str| -> Result<()> {
        if present {
            Ok(())
        } else {
            Err(Error::Model(format!("the model has no {kind} `{name}` ({expected})")))
        }
    };
    for name in &INPUT_NAMES[..2] {
        require(input(name).is_some(), "input", name)?;
    }
    // Without position_ids, the graph computes its positions (as transformers does from the
    // cache's length when none is given).
    let plain_inputs = if input(INPUT_NAMES[2]).is_some() { 3 } else { 2 };
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
    if inputs.len() != plain_inputs + 2 * layers {
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

/// A dimension of a declared shape: fixed, or named (symbolic).
pub(crate) enum Dim {
    Value(usize),
    Param(&'static str),
}

pub(crate) fn value_info(name: String, elem_type: i32, dims: Vec<Dim>) -> pb::ValueInfoProto {
    let dim = dims
        .into_iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Value(v) => dimension::Value::DimValue(v as i64),
                Dim::Param(p) => dimension::Value::DimParam(p.into()),
            }),
            ..Default::default()
        })
        .collect();
    let tensor = pb::type_proto::Tensor { elem_type, shape: Some(pb::TensorShapeProto { dim }) };
    pb::ValueInfoProto {
        name,
        r#type: Some(pb::TypeProto { value: Some(pb::type_proto::Value::TensorType(tensor)), ..Default::default() }),
        ..Default::default()
    }
}

pub(crate) fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i, ..Default::default() }
}

pub(crate) fn attr_ints(name: &str, ints: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: ints.to_vec(), ..Default::default() }
}

pub(crate) fn attr_string(name: &str, s: &str) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::String as i32, s: s.as_bytes().to_vec(), ..Default::default() }
}
