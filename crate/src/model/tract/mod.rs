//! The tract-onnx backend of [`LanguageModel`]: CPU inference, natively
//! and in wasm32 (simd128 kernels).
//!
//! # Loading
//!
//! [`TractModel::from_bytes`] takes the bytes of one ONNX protobuf (no external data: the
//! browser fetches the file, and tract's external-data loader only reads paths) and, optionally,
//! the [`ModelConfig`] from the `config.json` next to it:
//!
//! - the dimensions come from the graph itself: vocabulary and hidden size from the embedding
//!   initializer `model.embed_tokens.weight` `[vocab, hidden]`, the layer count from the
//!   `past_key_values.{i}.key` inputs, KV heads and head size from their declared shape. A config,
//!   when given, must agree with them (a mismatch is an error: it catches a config paired with
//!   the wrong model);
//! - the context length is not in the graph (RoPE is computed from `position_ids`): it comes
//!   from the config, else [`DEFAULT_CONTEXT_LENGTH`]; [`TractModel::set_context_length`]
//!   changes it (lower it to bound KV-cache memory).
//!
//! The embedding table is taken out of the protobuf before tract sees it (the graph never reads
//! it) and kept in its stored type: an f16 table stays f16 (57 MB for SmolLM2 instead of 113 MB)
//! and rows are widened to f32 when read.
//!
//! The graph is then typed with symbolic shapes (`S` new tokens, `P` cached ones:
//! `inputs_embeds` `[1,S,hidden]`, `attention_mask` `[1,P+S]`, `position_ids` `[1,S]`, past K/V
//! `[1,kv_heads,P,head_dim]`), decluttered, and rewritten by tract-transformers: the
//! `Concat(past, new) → present` pairs become stateful `DynKeyValueCache` ops (the runtime keeps
//! the cache; the model is left with 3 inputs and the `logits` output), RoPE, masked softmax and
//! RMSNorm become fused ops. Then it is optimised and one state is spawned per sequence.
//!
//! Memory while loading: the caller's bytes, the decoded protobuf (one copy of the weights) and
//! tract's tensors; the protobuf is dropped once tract has built its model. f16 matrices are
//! widened to f32 at load (tract folds each `Cast` of a constant), so the running model holds
//! f32 weights whatever the file stores. Measured natively (SmolLM2-135M, 2-core machine, other
//! builds running): peak RSS 1.3 GB for the 382 MB f16 file, 1.8 GB for the 651 MB f32 file;
//! load (decode + build + optimise) ~3 s in release, ~35 s in a debug build.
//!
//! Errors: the signature, the embedding initializer and the graph's wiring are checked before
//! tract parses the graph (its parser indexes tensors by name without checking), so a corrupt,
//! truncated or foreign file gives an [`Error::Model`] naming what is wrong. Should inference
//! itself fail, the sequence is reset (the KV cache might hold part of the failed call).

use std::sync::Arc;

use prost::bytes::Buf;
use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::{bail, ensure, DimLike, TractErrorContext};
use tract_onnx::tract_core::transform::get_transform;

use super::{EmbeddingStorage, EmbeddingTable, LanguageModel, ModelConfig};
use crate::error::{Error, Result};

/// Context length used when no config is given.
pub const DEFAULT_CONTEXT_LENGTH: usize = 2048;
/// Name of the embedding initializer the runtime reads.
pub const EMBED_TOKENS_INITIALIZER: &str = "model.embed_tokens.weight";

const INPUT_NAMES: [&str; 3] = ["inputs_embeds", "attention_mask", "position_ids"];

// ONNX TensorProto.DataType
const ONNX_FLOAT: i32 = 1;
const ONNX_FLOAT16: i32 = 10;
// ONNX TensorProto.DataLocation
const ONNX_EXTERNAL: i32 = 1;

fn model_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Model(format!("{what}: {e}"))
}

/// tract errors carry a chain of contexts; keep all of it.
fn tract_error(what: &str, e: TractError) -> Error {
    Error::Model(format!("{what}: {e:#}"))
}

/// A causal LM running in tract, holding one sequence's KV cache.
pub struct TractModel {
    plan: Arc<TypedRunnableModel>,
    /// `None` until the first call after a (re)set.
    state: Option<TypedSimpleState>,
    /// `slots[k]`: which of (embeds, mask, position_ids) the plan takes as its k-th input.
    slots: [usize; 3],
    embeddings: EmbeddingTable,
    config: ModelConfig,
    position: usize,
}

impl std::fmt::Debug for TractModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractModel")
            .field("config", &self.config)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl TractModel {
    /// Loads a model from the bytes of its `.onnx` file; see the [module docs](self) for what is
    /// read from where. Errors (never panics) on bytes that are not an ONNX protobuf, a model
    /// without the expected inputs/outputs/embedding, or a config that disagrees with the graph.
    pub fn from_bytes(onnx: &[u8], config: Option<&ModelConfig>) -> Result<Self> {
        Self::load(onnx, config, Rewrites::ByName)
    }

    /// [`from_bytes`](Self::from_bytes) reading the bytes through a [`Buf`]: in wasm the bytes can
    /// stay in JS and be read in chunks, rather than copied whole into wasm memory first.
    pub fn from_buf(onnx: impl Buf, config: Option<&ModelConfig>) -> Result<Self> {
        Self::load(onnx, config, Rewrites::ByName)
    }

    fn load(onnx: impl Buf, config: Option<&ModelConfig>, rewrites: Rewrites) -> Result<Self> {
        let mut proto = pb::ModelProto::decode(onnx)
            .map_err(|e| model_error("not a valid ONNX model (protobuf decoding failed)", e))?;
        let graph = proto
            .graph
            .as_mut()
            .ok_or_else(|| Error::Model("not a valid ONNX model: it has no graph".into()))?;
        let embeddings = take_embeddings(graph)?;
        let dims = check_signature(graph, embeddings.vocab_size(), embeddings.hidden_size())?;
        let config = match config {
            Some(c) => {
                let found = ModelConfig {
                    context_length: c.context_length,
                    ..dims.clone()
                };
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

        let model = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .model_for_proto_model(&proto)
            .map_err(|e| tract_error("cannot build the ONNX graph", e))?;
        drop(proto);
        let (plan, slots) = build_plan(model, &config, rewrites)
            .map_err(|e| tract_error("cannot prepare the model", e))?;
        Ok(TractModel {
            plan,
            state: None,
            slots,
            embeddings,
            config,
            position: 0,
        })
    }

    /// [`from_bytes`](Self::from_bytes) with the text of a `config.json`.
    pub fn from_bytes_with_config_json(onnx: &[u8], config_json: &str) -> Result<Self> {
        let config = ModelConfig::from_json(config_json)?;
        Self::from_bytes(onnx, Some(&config))
    }

    /// The model's dimensions and context length.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Changes the context length (the KV cache grows with it). Errors if the cache already holds
    /// more tokens than `context_length` or it is 0.
    pub fn set_context_length(&mut self, context_length: usize) -> Result<()> {
        crate::error::check(
            context_length > 0 && context_length >= self.position,
            "context_length",
            "at least 1 and at least the current position",
            context_length,
        )?;
        self.config.context_length = context_length;
        Ok(())
    }

    /// Runs `s` new positions (their embeddings, row-major `[s × hidden]`) and returns the logits
    /// of the last one, or of all of them.
    fn run(&mut self, embeds: Vec<f32>, s: usize, all_logits: bool) -> Result<Vec<f32>> {
        let hidden = self.config.hidden_size;
        let vocab = self.config.vocab_size;
        debug_assert_eq!(embeds.len(), s * hidden);
        if s == 0 {
            return Err(Error::InvalidParameter {
                name: "ids",
                expected: "at least one token",
                value: "none".into(),
            });
        }
        let p = self.position;
        if p + s > self.config.context_length {
            return Err(Error::ContextFull {
                context_length: self.config.context_length,
            });
        }
        let tensors = [
            Tensor::from_shape(&[1, s, hidden], &embeds),
            Tensor::from_shape(&[1, p + s], &vec![1i64; p + s]),
            Tensor::from_shape(&[1, s], &(p..p + s).map(|i| i as i64).collect::<Vec<_>>()),
        ];
        let mut by_kind: Vec<Option<TValue>> = Vec::with_capacity(3);
        for t in tensors {
            by_kind.push(Some(
                t.map_err(|e| tract_error("cannot build the inputs", e))?
                    .into(),
            ));
        }
        let inputs: TVec<TValue> = self
            .slots
            .iter()
            .map(|&k| by_kind[k].take().expect("slots are a permutation"))
            .collect();

        if self.state.is_none() {
            self.state = Some(
                self.plan
                    .spawn()
                    .map_err(|e| tract_error("cannot start a model state", e))?,
            );
        }
        let state = self.state.as_mut().expect("just set");
        let outputs = match state.run(inputs) {
            Ok(o) => o,
            Err(e) => {
                // The KV cache may hold part of this call: start over rather than go on wrong.
                self.reset();
                return Err(tract_error("inference failed (the sequence was reset)", e));
            }
        };
        let logits = &outputs[0];
        let read = || -> TractResult<Vec<f32>> {
            ensure!(
                logits.shape() == [1, s, vocab],
                "logits have shape {:?}, expected [1, {s}, {vocab}]",
                logits.shape()
            );
            let view = logits.try_as_plain_ram()?;
            let values = view.as_slice::<f32>()?;
            Ok(if all_logits {
                values.to_vec()
            } else {
                values[(s - 1) * vocab..].to_vec()
            })
        };
        match read() {
            Ok(values) => {
                self.position += s;
                Ok(values)
            }
            Err(e) => {
                self.reset();
                Err(tract_error(
                    "cannot read the logits (the sequence was reset)",
                    e,
                ))
            }
        }
    }

    fn embed_ids(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let hidden = self.config.hidden_size;
        let mut embeds = vec![0.0; ids.len() * hidden];
        for (&id, row) in ids.iter().zip(embeds.chunks_exact_mut(hidden)) {
            self.embeddings.row_into(id, row)?;
        }
        Ok(embeds)
    }
}

impl LanguageModel for TractModel {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn context_length(&self) -> usize {
        self.config.context_length
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    fn embeddings(&self) -> &EmbeddingTable {
        &self.embeddings
    }

    fn prefill(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let embeds = self.embed_ids(ids)?;
        self.run(embeds, ids.len(), false)
    }

    fn prefill_all_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let embeds = self.embed_ids(ids)?;
        self.run(embeds, ids.len(), true)
    }

    fn step_embedding(&mut self, embedding: &[f32]) -> Result<Vec<f32>> {
        if embedding.len() != self.config.hidden_size {
            return Err(Error::InvalidParameter {
                name: "embedding",
                expected: "a vector of hidden_size values",
                value: format!(
                    "{} values (hidden_size is {})",
                    embedding.len(),
                    self.config.hidden_size
                ),
            });
        }
        if let Some((index, &value)) = embedding.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::InvalidParameter {
                name: "embedding",
                expected: "finite numbers",
                value: format!("{value} at index {index}"),
            });
        }
        self.run(embedding.to_vec(), 1, false)
    }

    fn position(&self) -> usize {
        self.position
    }

    fn reset(&mut self) {
        self.state = None;
        self.position = 0;
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
    if raw.len() != n * N {
        return Err(format!("{} bytes of data for {n} elements of {N} bytes", raw.len()));
    }
    Ok(raw.chunks_exact(N).map(|b| from(b.try_into().expect("chunks_exact yields N bytes"))).collect())
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
    let input = |name: &str| inputs.iter().copied().find(|i| i.name == name);
    let has_output = |name: &str| graph.output.iter().any(|o| o.name == name);
    let expected = "expected inputs inputs_embeds, attention_mask, position_ids, \
                    past_key_values.{i}.key/value and outputs logits, present.{i}.key/value";

    for name in INPUT_NAMES {
        if input(name).is_none() {
            return Err(Error::Model(format!(
                "the model has no input `{name}` ({expected})"
            )));
        }
    }
    let layers = (0..)
        .take_while(|i| input(&format!("past_key_values.{i}.key")).is_some())
        .count();
    if layers == 0 {
        return Err(Error::Model(format!(
            "the model has no input `past_key_values.0.key` ({expected})"
        )));
    }
    for i in 0..layers {
        for kv in ["key", "value"] {
            let name = format!("past_key_values.{i}.{kv}");
            if input(&name).is_none() {
                return Err(Error::Model(format!(
                    "the model has no input `{name}` ({expected})"
                )));
            }
            let name = format!("present.{i}.{kv}");
            if !has_output(&name) {
                return Err(Error::Model(format!(
                    "the model has no output `{name}` ({expected})"
                )));
            }
        }
    }
    if !has_output("logits") {
        return Err(Error::Model(format!(
            "the model has no output `logits` ({expected})"
        )));
    }
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

/// Types the graph with symbolic shapes, moves the KV cache into the model and optimises it.
/// Returns the plan and, for each of its inputs, which of (embeds, mask, positions) it takes.
fn build_plan(
    mut model: InferenceModel,
    config: &ModelConfig,
    rewrites: Rewrites,
) -> TractResult<(Arc<TypedRunnableModel>, [usize; 3])> {
    let s = model.symbols.sym("S");
    let p = model.symbols.sym("P");
    let s_dim = TDim::from(s.clone());
    let p_dim = TDim::from(p.clone());
    let input_names: Vec<String> = model
        .inputs
        .iter()
        .map(|o| model.node(o.node).name.clone())
        .collect();
    for (ix, name) in input_names.iter().enumerate() {
        let fact = match name.as_str() {
            "inputs_embeds" => InferenceFact::dt_shape(
                f32::datum_type(),
                [1.to_dim(), s_dim.clone(), config.hidden_size.to_dim()],
            ),
            "attention_mask" => InferenceFact::dt_shape(
                i64::datum_type(),
                [1.to_dim(), p_dim.clone() + s_dim.clone()],
            ),
            "position_ids" => {
                InferenceFact::dt_shape(i64::datum_type(), [1.to_dim(), s_dim.clone()])
            }
            _ => InferenceFact::dt_shape(
                f32::datum_type(),
                [
                    1.to_dim(),
                    config.num_key_value_heads.to_dim(),
                    p_dim.clone(),
                    config.head_dim.to_dim(),
                ],
            ),
        };
        model.set_input_fact(ix, fact)?;
    }
    let mut typed = model.into_typed()?.into_decluttered()?;
    apply_transformer_rewrites(&mut typed, rewrites)?;

    if typed.inputs.len() != 3 || typed.outputs.len() != 1 {
        bail!(
            "moving the KV cache into the model left {} inputs and {} outputs (expected 3 and 1): \
             are `present.{{i}}.*` plain Concat(past, new) of the past inputs?",
            typed.inputs.len(),
            typed.outputs.len()
        );
    }
    let mut slots = [usize::MAX; 3];
    for (slot, outlet) in typed.inputs.iter().enumerate() {
        let name = &typed.node(outlet.node).name;
        slots[slot] = INPUT_NAMES
            .iter()
            .position(|n| n == name)
            .with_context(|| format!("unexpected input `{name}` after the KV cache rewrite"))?;
    }
    let logits_fact = typed.outlet_fact(typed.outputs[0])?;
    if let Some(v) = logits_fact.shape.last().and_then(|d| d.to_usize().ok()) {
        ensure!(
            v == config.vocab_size,
            "the logits have {v} columns but the embedding table has {} rows",
            config.vocab_size
        );
    }
    let plan = typed.into_optimized()?.into_runnable()?;
    Ok((plan, slots))
}

/// How [`apply_transformer_rewrites`] finds tract-transformers' rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rewrites {
    /// Through tract's transform registry, falling back to `Direct` if it is empty.
    ByName,
    /// Calling tract-transformers' public rules directly (the fallback; tested on its own).
    #[cfg_attr(not(test), allow(dead_code))]
    Direct,
}

/// tract-transformers' `transformers_detect_all`: the KV cache becomes stateful
/// `DynKeyValueCache` ops (what `detect_kv_cache` does), and RoPE / scaled masked softmax are
/// fused. Looked up by name in tract's transform registry; should that registry be empty (it is
/// filled by static constructors), the same rewrites are applied directly.
fn apply_transformer_rewrites(model: &mut TypedModel, rewrites: Rewrites) -> TractResult<()> {
    if rewrites == Rewrites::ByName {
        if let Some(transform) = get_transform("transformers_detect_all")? {
            return transform.transform(model);
        }
    }
    use tract_transformers::ops;
    for input in model.inputs.clone() {
        ops::replace_kv_cache(model, input.node)?;
    }
    tract_onnx::tract_core::model::Rewriter::default()
        .with_rule_for("detect-rotate-half", ops::rotate_half_rule)
        .with_rule_for("detect-apply-rope", ops::apply_rope_rule)
        .with_rule_for(
            "detect-scaled-masked-softmax",
            ops::scaled_masked_softmax_rule,
        )
        .with_rule_for(
            "detect-sdpa-kv-cache-broadcast",
            ops::fuse_kv_cache_broadcast_rule,
        )
        .with_rule_for("detect-diag-gather", ops::diag_gather_rule)
        .rewrite(&(), model)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &[u8] = include_bytes!("../../../models/tiny/model.onnx");

    /// The registry lookup finds the transform natively, and the direct fallback (for a platform
    /// where the registry's static constructors did not run) gives the same model.
    #[test]
    fn direct_rewrites_match_the_registry_transform() {
        assert!(get_transform("transformers_detect_all").unwrap().is_some());
        let ids = [398, 295, 283, 99, 497, 30, 237, 405];
        let mut by_name = TractModel::load(TINY, None, Rewrites::ByName).unwrap();
        let mut direct = TractModel::load(TINY, None, Rewrites::Direct).unwrap();
        let assert_close = |a: Vec<f32>, b: Vec<f32>| {
            let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(diff < 1e-5, "max |diff| = {diff}");
        };
        assert_close(by_name.prefill_all_logits(&ids).unwrap(), direct.prefill_all_logits(&ids).unwrap());
        assert_close(by_name.step_token(452).unwrap(), direct.step_token(452).unwrap());
        // Every rewrite fired (2 layers): the same ops either way.
        let ops = |m: &TractModel| {
            let mut ops = std::collections::BTreeMap::<String, usize>::new();
            for node in m.plan.model().nodes() {
                *ops.entry(node.op().name().to_string()).or_default() += 1;
            }
            ops
        };
        let found = ops(&by_name);
        assert_eq!(found, ops(&direct));
        for (op, n) in [
            ("DynamicKeyValueCache", 4),
            ("ApplyRope", 4),
            ("ScaledMaskedSoftmax", 2),
            ("RmsNorm", 5),
        ] {
            assert_eq!(found.get(op), Some(&n), "{op}: {found:?}");
        }
    }
}
