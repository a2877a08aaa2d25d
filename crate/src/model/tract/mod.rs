//! The tract backend of [`LanguageModel`]: CPU inference, natively and in wasm32 (simd128
//! kernels), for models from either format:
//!
//! - **GGUF** ([`TractModel::from_gguf`]): the decoder graph of the file's architecture is
//!   built here ([`graph`]), and every block-quantised matrix is a [`QuantMatMul`]
//!   op that computes from the shared [`QuantMatrix`](super::quant::QuantMatrix) blocks with our
//!   kernels; tract runs everything else (norms, RoPE, attention, the KV cache);
//! - **ONNX** ([`TractModel::from_bytes`]): a checked [`OnnxDecoder`] graph, whose weights tract
//!   widens to f32 at load.
//!
//! Either graph is then typed with symbolic shapes (`S` new tokens, `P` cached ones:
//! `inputs_embeds` `[1,S,hidden]`, `attention_mask` `[1,P+S]`, `position_ids` `[1,S]`, past K/V
//! `[1,kv_heads,P,head_dim]`), decluttered, and rewritten by tract-transformers: the
//! `Concat(past, new) → present` pairs become stateful `DynKeyValueCache` ops (the runtime keeps
//! the cache; the model is left with 3 inputs and the `logits` output), RoPE, masked softmax and
//! RMSNorm become fused ops. Then it is optimised and one state is spawned per sequence.
//! [`QuantMatMul`] passes through every stage untouched.
//!
//! The context length comes from the GGUF metadata or the ONNX model's config;
//! [`TractModel::set_context_length`] lowers it to bound KV-cache memory.
//!
//! Should inference itself fail, the sequence is reset (the KV cache might hold part of the
//! failed call).
//!
//! By job: loading and running ([`TractModel`], here), the plan it runs (`plan.rs`), the
//! decoder graph of a GGUF ([`graph`]), the quantised matmul op ([`QuantMatMul`]).

pub mod graph;
mod plan;
mod quant_op;

use std::sync::Arc;

use prost::bytes::Buf;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::{ensure, format_err, OpState};

use super::onnx::{OnnxDecoder, ReadExternal};
use super::quant::{Kernel, QuantMatrix};
use super::arch::decoder::soft_cap;
use super::weights::{GgufModel, ModelWeights};
use super::{check_append, check_copy, check_truncate, CacheRows, EmbeddingTable, LanguageModel, ModelConfig};
use tract_transformers::ops::dyn_kv_cache::{DynKeyValueCache, DynKeyValueCacheState};
use crate::error::{Error, Result};
use crate::tokenizer::TextTokenizer;

use plan::{build_plan, Rewrites};
pub use quant_op::QuantMatMul;

/// tract errors carry a chain of contexts; keep all of it.
fn tract_error(what: &str, e: TractError) -> Error {
    Error::Model(format!("{what}: {e:#}"))
}

/// A causal LM running in tract, holding one sequence's KV cache.
pub struct TractModel {
    plan: Arc<TypedRunnableModel>,
    /// `None` until the first call after a (re)set.
    state: Option<TypedSimpleState>,
    /// `slots[k]`: which of (embeds, mask, position_ids) the plan takes as its k-th input (a
    /// graph that computes its positions takes no position_ids).
    slots: Vec<usize>,
    /// A block-quantised output projection, applied here rather than in the graph so that a
    /// prefill projects its last position only: the graph then ends at the normed hidden state.
    head: Option<(Arc<QuantMatrix>, Kernel)>,
    /// How the weights are held, e.g. `["Q4_1", "Q8_0"]` (ONNX models: see [`super::onnx::weight_types`]).
    weight_types: Vec<&'static str>,
    embeddings: EmbeddingTable,
    config: ModelConfig,
    /// The architecture's final soft-cap of the logits (gemma3).
    logit_softcap: Option<f32>,
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

    /// [`from_buf`](Self::from_buf) for a graph whose weights are external data (`model.onnx_data`),
    /// read through `data` by the `location` the graph names (see [`super::onnx::data_files`]).
    pub fn from_buf_with_data(onnx: impl Buf, data: &mut ReadExternal<'_>, config: Option<&ModelConfig>) -> Result<Self> {
        Self::build(OnnxDecoder::read_with_data(onnx, data, config)?, Rewrites::ByName)
    }

    fn load(onnx: impl Buf, config: Option<&ModelConfig>, rewrites: Rewrites) -> Result<Self> {
        Self::build(OnnxDecoder::read(onnx, config)?, rewrites)
    }

    fn build(decoder: OnnxDecoder, rewrites: Rewrites) -> Result<Self> {
        let OnnxDecoder { proto, embeddings, config, weight_types, kv_f16 } = decoder;
        let model = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .model_for_proto_model(&proto)
            .map_err(|e| tract_error("cannot build the ONNX graph", e))?;
        drop(proto);
        let kv_type = if kv_f16 { f16::datum_type() } else { f32::datum_type() };
        let (plan, slots) = build_plan(model, &config, kv_type, rewrites, (&Default::default(), Kernel::Simd), config.vocab_size)
            .map_err(|e| tract_error("cannot prepare the model", e))?;
        Ok(TractModel { plan, state: None, slots, head: None, weight_types, embeddings, config, logit_softcap: None, position: 0 })
    }

    /// Loads a model from a `.gguf` file streamed from `gguf` (in wasm, from JS in
    /// chunks), in the file's own precision, and returns it with the tokenizer from the file's
    /// metadata. Each tensor's bytes are dropped once its blocks are in place.
    pub fn from_gguf(gguf: impl Buf) -> Result<(Self, TextTokenizer)> {
        Self::from_gguf_with_kernel(gguf, Kernel::Simd)
    }

    /// [`from_gguf`](Self::from_gguf) with the quantised products computed by `kernel`: the
    /// scalar reference, or f32 activations, to measure what the fast kernel costs in accuracy.
    pub fn from_gguf_with_kernel(gguf: impl Buf, kernel: Kernel) -> Result<(Self, TextTokenizer)> {
        let GgufModel { weights, tokenizer } = GgufModel::read(gguf)?;
        Ok((Self::from_weights(&weights, kernel, None)?, tokenizer))
    }

    /// Builds the decoder graph over `weights` for at most `context_length` positions (`None`:
    /// the model's own), sharing their quantised blocks (the CPU fallback of the WebGPU backend
    /// uses the weights it uploaded). The context chooses LongRoPE's factors, as llama.cpp's
    /// does; a later [`set_context_length`](Self::set_context_length) keeps them.
    pub fn from_weights(weights: &ModelWeights, kernel: Kernel, context_length: Option<usize>) -> Result<Self> {
        let p = &weights.params;
        let context_length = p.context(context_length, p.context_length)?;
        let (proto, quantised, head) = graph::onnx_graph(weights, context_length);
        let config = ModelConfig {
            vocab_size: p.vocab_size,
            hidden_size: p.hidden_size,
            num_layers: p.num_layers,
            num_key_value_heads: p.num_kv_heads,
            head_dim: p.head_dim,
            context_length,
        };
        let mut onnx = tract_onnx::onnx();
        onnx.op_register.insert(QuantMatMul::ONNX_OP, quant_op::onnx_builder);
        let model = onnx
            .with_ignore_value_info(true)
            .model_for_proto_model(&proto)
            .map_err(|e| tract_error("cannot build the decoder graph", e))?;
        drop(proto);
        let width = if head.is_some() { config.hidden_size } else { config.vocab_size };
        let (plan, slots) = build_plan(model, &config, f32::datum_type(), Rewrites::ByName, (&quantised, kernel), width)
            .map_err(|e| tract_error("cannot prepare the model", e))?;
        let head = head.map(|h| (h, kernel));
        let (embeddings, weight_types) = (weights.embeddings.clone(), weights.matrix_types());
        let logit_softcap = weights.params.final_softcap;
        Ok(TractModel { plan, state: None, slots, head, weight_types, embeddings, config, logit_softcap, position: 0 })
    }

    /// [`from_bytes`](Self::from_bytes) with the text of a `config.json`.
    pub fn from_bytes_with_config_json(onnx: &[u8], config_json: &str) -> Result<Self> {
        let config = ModelConfig::from_json(config_json)?;
        Self::from_bytes(onnx, Some(&config))
    }

    /// How the weights are held in memory, e.g. `["Q4_1", "Q8_0"]` for SmolLM2's GGUF; for ONNX,
    /// how tract holds the graph's weights (`["F32"]`, `["F16"]`, `["INT8"]` after
    /// `quantize_dynamic`, `["Q4_0"]` for `MatMulNBits`).
    pub fn weight_types(&self) -> &[&'static str] {
        &self.weight_types
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
    ///
    /// The pass runs on one of rayon's pool threads when there is a pool, with the others at hand
    /// for its products' parts (`crew`): from outside the pool, every product would wait for its
    /// threads to wake and for the caller to be woken in turn, ~50 µs a product in wasm, where a
    /// decode step has ~200.
    fn run(&mut self, embeds: Vec<f32>, s: usize, all_logits: bool) -> Result<Vec<f32>> {
        crate::model::crew::with_crew(|| self.run_here(embeds, s, all_logits))
    }

    fn run_here(&mut self, embeds: Vec<f32>, s: usize, all_logits: bool) -> Result<Vec<f32>> {
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
            .map(|&k| by_kind[k].take().expect("slots name each input once"))
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
        let output = &outputs[0];
        let head = self.head.as_ref();
        let read = || -> TractResult<Vec<f32>> {
            let width = if head.is_some() { hidden } else { vocab };
            ensure!(
                output.shape() == [1, s, width],
                "the output has shape {:?}, expected [1, {s}, {width}]",
                output.shape()
            );
            let view = output.try_as_plain_ram()?;
            let values = view.as_slice::<f32>()?;
            let rows = if all_logits { values } else { &values[(s - 1) * width..] };
            let Some((head, kernel)) = head else { return Ok(rows.to_vec()) };
            let m = rows.len() / hidden;
            let mut logits = vec![0.0; m * vocab];
            head.matmul_with(*kernel, rows, m, &mut logits).map_err(|e| format_err!("output projection: {e}"))?;
            Ok(logits)
        };
        match read() {
            Ok(mut values) => {
                self.position += s;
                soft_cap(self.logit_softcap, &mut values);
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
}

/// Rows of tract's KV caches: one tensor per cache op, cut along its position axis.
#[derive(Debug)]
pub struct TractRows {
    start: usize,
    positions: usize,
    tensors: Vec<Tensor>,
}

impl CacheRows for TractRows {
    fn start(&self) -> usize {
        self.start
    }
    fn positions(&self) -> usize {
        self.positions
    }
    fn bytes(&self) -> usize {
        self.tensors.iter().map(|t| t.len() * t.datum_type().size_of()).sum()
    }
}

impl TractModel {
    /// Each KV-cache op's node, with the axis its positions run along.
    fn cache_axes(&self) -> Vec<(usize, usize)> {
        let nodes = self.plan.model().nodes().iter();
        nodes.filter_map(|node| Some((node.id, node.op_as::<DynKeyValueCache>()?.axis))).collect()
    }

    fn cached_tensor(op_state: &dyn OpState) -> TractResult<TValue> {
        let mut saved = Vec::with_capacity(1);
        op_state.save_to(&mut saved)?;
        saved.pop().ok_or_else(|| format_err!("a KV cache saved nothing"))
    }

    fn append_rows(&mut self, rows: &TractRows, range: std::ops::Range<usize>) -> TractResult<()> {
        if self.state.is_none() {
            self.state = Some(self.plan.spawn()?);
        }
        let axes = self.cache_axes();
        ensure!(axes.len() == rows.tensors.len(), "the rows hold {} caches, the model {}", rows.tensors.len(), axes.len());
        let state = self.state.as_mut().expect("just set");
        let mut turn = std::mem::take(&mut state.turn_state);
        let position = self.position;
        let appended = axes.into_iter().zip(&rows.tensors).try_for_each(|((node, axis), rows)| {
            let op_state = state.op_states[node].as_mut().ok_or_else(|| format_err!("a KV cache has no state"))?;
            let piece = rows.slice(axis, range.start, range.end)?;
            let whole = match position {
                0 => piece,
                _ => Tensor::stack_tensors(axis, &[Self::cached_tensor(op_state.as_ref())?.into_tensor(), piece])?,
            };
            op_state.load_from(&mut turn, &mut std::iter::once(whole.into_tvalue()))
        });
        // Symbols resolve again from the caches at the next run.
        turn.resolved_symbols = Default::default();
        state.turn_state = turn;
        appended
    }
}

impl LanguageModel for TractModel {
    type Rows = TractRows;

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn context_length(&self) -> usize {
        self.config.context_length
    }

    fn embeddings(&self) -> &EmbeddingTable {
        &self.embeddings
    }

    async fn prefill(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let embeds = self.embeddings.rows(ids)?;
        self.run(embeds, ids.len(), false)
    }

    async fn prefill_all_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let embeds = self.embeddings.rows(ids)?;
        self.run(embeds, ids.len(), true)
    }

    async fn step_embedding(&mut self, embedding: &[f32]) -> Result<Vec<f32>> {
        self.embeddings.check_input(embedding)?;
        self.run(embedding.to_vec(), 1, false)
    }

    fn position(&self) -> usize {
        self.position
    }

    fn truncate(&mut self, len: usize) -> Result<()> {
        check_truncate(len, self.position)?;
        if len == 0 {
            self.reset();
        }
        let Some(state) = self.state.as_mut().filter(|_| len < self.position) else { return Ok(()) };
        let mut caches = 0;
        for op_state in state.op_states.iter_mut().flatten() {
            if let Some(cache) = op_state.downcast_mut::<DynKeyValueCacheState>() {
                if let Err(e) = cache.truncate(len) {
                    self.reset();
                    return Err(tract_error("cannot truncate the KV cache (the sequence was reset)", e));
                }
                caches += 1;
            }
        }
        if caches == 0 {
            self.reset();
            return Err(Error::Model("this graph keeps no KV cache to truncate (the sequence was reset)".into()));
        }
        self.position = len;
        Ok(())
    }

    fn reset(&mut self) {
        self.state = None;
        self.position = 0;
    }

    fn copy_cache(&self, range: std::ops::Range<usize>) -> Result<TractRows> {
        check_copy(&range, self.position)?;
        let state = self.state.as_ref().ok_or_else(|| Error::Model("the KV cache is empty".into()))?;
        let tensors = self
            .cache_axes()
            .into_iter()
            .map(|(node, axis)| {
                let op_state = state.op_states[node].as_ref().ok_or_else(|| format_err!("a KV cache has no state"))?;
                Self::cached_tensor(op_state.as_ref())?.slice(axis, range.start, range.end)
            })
            .collect::<TractResult<Vec<_>>>()
            .map_err(|e| tract_error("cannot copy the KV cache", e))?;
        Ok(TractRows { start: range.start, positions: range.len(), tensors })
    }

    fn append_cache(&mut self, rows: &TractRows, range: std::ops::Range<usize>) -> Result<()> {
        check_append(rows, &range, self.position, self.config.context_length)?;
        if let Err(e) = self.append_rows(rows, range.clone()) {
            self.reset();
            return Err(tract_error("cannot append to the KV cache (the sequence was reset)", e));
        }
        self.position += range.len();
        Ok(())
    }
}
