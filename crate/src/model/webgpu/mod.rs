//! The WebGPU backend of [`LanguageModel`]: the Llama forward pass in WGSL compute kernels
//! (`kernels/`, one file per kernel and per weight format), through wgpu. In wasm it runs on the
//! browser's WebGPU; natively on Vulkan (lavapipe, Mesa's software driver, for the tests).
//!
//! It reads the same [`LlamaWeights`] as the tract backend: quantised matrices are uploaded in
//! the CPU's repacked layout (`QuantMatrix::packed_parts`), so there is one loader and one
//! layout. The math is f32 throughout (SwiftShader has no `shader-f16`): weights are widened in
//! the kernels, activations stay f32 (the CPU kernels quantise them to int16), so the two
//! backends' logits agree closely but not bit for bit.
//!
//! One call feeds at most [`MAX_CHUNK`] tokens per submit: the embeddings are uploaded, every
//! layer's dispatches go into one compute pass (bind groups built at load), and only the rows
//! whose logits are wanted are projected and read back, once per submit. The KV cache lives in
//! GPU buffers for [`GpuOptions::context_length`] positions.

mod gpu;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

pub use gpu::{AdapterSummary, Gpu};

use gpu::{gpu_error, Bound, GpuMatrix, Step};

use super::weights::{GgufModel, LlamaWeights};
use super::{EmbeddingTable, LanguageModel};
use crate::error::{check, Error, Result};
use crate::tokenizer::TextTokenizer;

/// The most tokens one submit feeds; longer prefills take several.
pub const MAX_CHUNK: usize = 32;
/// The default KV-cache length on the GPU, when the model allows more: 4096 positions of
/// SmolLM2 take 189 MB of GPU memory.
pub const DEFAULT_GPU_CONTEXT: usize = 4096;

#[derive(Debug, Clone, Default)]
pub struct GpuOptions {
    /// Use the adapter's software fallback (lavapipe, SwiftShader) even if a GPU is present.
    pub force_fallback_adapter: bool,
    /// Positions the KV cache holds; `None`: the model's context, at most
    /// [`DEFAULT_GPU_CONTEXT`].
    pub context_length: Option<usize>,
}

/// Which logits a call reads back.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wanted {
    LastRow,
    AllRows,
}

/// One dispatch, with its workgroup counts as a function of the submit's token count.
struct Dispatch {
    bound: Bound,
    groups: Groups,
}

#[derive(Clone, Copy)]
enum Groups {
    /// A matrix product over `rows` output rows, 8 per workgroup, one workgroup row per token.
    Rows(usize),
    /// The output projection: like `Rows`, for the tokens whose logits are read.
    HeadRows(usize),
    /// One workgroup per token.
    Tokens,
    /// One workgroup per (head, token).
    HeadsByTokens(usize),
    /// 256-invocation workgroups over `width` values per token.
    Elements(usize),
}

impl Groups {
    fn count(self, tokens: usize, logit_rows: usize) -> [u32; 3] {
        let c = |n: usize| n as u32;
        match self {
            Groups::Rows(rows) => [c(rows.div_ceil(8)), c(tokens), 1],
            Groups::HeadRows(rows) => [c(rows.div_ceil(8)), c(logit_rows), 1],
            Groups::Tokens => [c(tokens), 1, 1],
            Groups::HeadsByTokens(heads) => [c(heads), c(tokens), 1],
            Groups::Elements(width) => [c((tokens * width).div_ceil(256)), 1, 1],
        }
    }
}

/// The Llama forward pass on a WebGPU device, holding one sequence's KV cache.
pub struct WebGpuModel {
    gpu: Gpu,
    /// Every layer's dispatches, then the final norm.
    body: Vec<Dispatch>,
    /// The output projection, run only when logits are read.
    head: Dispatch,
    input: wgpu::Buffer,
    logits: wgpu::Buffer,
    staging: wgpu::Buffer,
    embeddings: EmbeddingTable,
    vocab_size: usize,
    context_length: usize,
    weight_types: Vec<&'static str>,
    position: usize,
}

impl std::fmt::Debug for WebGpuModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebGpuModel")
            .field("adapter", self.gpu.adapter())
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl WebGpuModel {
    /// Reads a `.gguf` (see [`GgufModel::read`]) and uploads it; returns the tokenizer too.
    pub async fn from_gguf(gguf: impl prost::bytes::Buf, options: &GpuOptions) -> Result<(Self, TextTokenizer)> {
        let GgufModel { weights, tokenizer } = GgufModel::read(gguf)?;
        Ok((Self::new(&weights, options).await?, tokenizer))
    }

    /// Opens an adapter and uploads `weights`.
    pub async fn new(weights: &LlamaWeights, options: &GpuOptions) -> Result<Self> {
        let gpu = Gpu::new(options.force_fallback_adapter).await?;
        Self::with_gpu(gpu, weights, options).await
    }

    pub async fn with_gpu(gpu: Gpu, weights: &LlamaWeights, options: &GpuOptions) -> Result<Self> {
        let p = &weights.params;
        let context_length = options.context_length.unwrap_or(p.context_length.min(DEFAULT_GPU_CONTEXT));
        check(
            (1..=p.context_length).contains(&context_length),
            "contextLength",
            "at least 1 and at most the model's context length",
            format!("{context_length} (the model's is {})", p.context_length),
        )?;
        check(p.head_dim <= 256 && p.head_dim % 2 == 0, "head_dim", "even and at most 256 on WebGPU", p.head_dim)?;
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let built = Self::build(gpu, weights, context_length);
        let out_of_memory = scope.pop().await;
        let model = built?;
        if let Some(error) = out_of_memory {
            return Err(gpu_error(format!("the GPU has no room for the model: {error}")));
        }
        model.gpu.check()?;
        Ok(model)
    }

    fn build(gpu: Gpu, weights: &LlamaWeights, context_length: usize) -> Result<Self> {
        let p = &weights.params;
        let (d, ffn, vocab) = (p.hidden_size, p.intermediate_size, p.vocab_size);
        let (q_width, kv_width) = (p.num_heads * p.head_dim, p.num_kv_heads * p.head_dim);
        let floats = |label: &str, n: usize| gpu.zeroed(label, MAX_CHUNK * n);
        let x = floats("x", d)?;
        let normed = floats("normed", d)?;
        let q = floats("q", q_width)?;
        let k = floats("k", kv_width)?;
        let v = floats("v", kv_width)?;
        let attended = floats("attended", q_width)?;
        let gate = floats("gate", ffn)?;
        let up = floats("up", ffn)?;
        let logits = floats("logits", vocab)?;
        let staging = gpu.staging(MAX_CHUNK * vocab);
        let angles = gpu.storage("rope angles", bytemuck::cast_slice(&rope_angles(p.rope_theta, p.head_dim, context_length)))?;
        let heads = [p.num_heads as u32, p.num_kv_heads as u32, p.head_dim as u32, 0];
        let norm_dims = [d as u32, p.rms_norm_eps.to_bits(), 0, 0];
        let kernels = &gpu.kernels;
        let dispatch = |bound, groups| Dispatch { bound, groups };
        let matmul = |w: &GpuMatrix, x, out, accumulate| dispatch(gpu.bind_matmul(w, x, out, accumulate, false), Groups::Rows(w.rows));
        let mut body = Vec::new();
        for (l, layer) in weights.layers.iter().enumerate() {
            let name = |what: &str| format!("blk.{l}.{what}");
            let upload = |what: &str, m| gpu.upload(&name(what), m);
            let [wq, wk, wv, wo, wg, wu, wd] = [
                upload("attn_q", &layer.q)?,
                upload("attn_k", &layer.k)?,
                upload("attn_v", &layer.v)?,
                upload("attn_output", &layer.o)?,
                upload("ffn_gate", &layer.gate)?,
                upload("ffn_up", &layer.up)?,
                upload("ffn_down", &layer.down)?,
            ];
            let attn_norm = gpu.storage(&name("attn_norm"), bytemuck::cast_slice(&layer.attn_norm))?;
            let ffn_norm = gpu.storage(&name("ffn_norm"), bytemuck::cast_slice(&layer.ffn_norm))?;
            let k_cache = gpu.zeroed(&name("k cache"), context_length * kv_width)?;
            let v_cache = gpu.zeroed(&name("v cache"), context_length * kv_width)?;
            body.extend([
                dispatch(gpu.bind(&kernels.rmsnorm, norm_dims, &[&x, &normed, &attn_norm]), Groups::Tokens),
                matmul(&wq, &normed, &q, false),
                matmul(&wk, &normed, &k, false),
                matmul(&wv, &normed, &v, false),
                dispatch(gpu.bind(&kernels.rope_store, heads, &[&q, &k, &v, &k_cache, &v_cache, &angles]), Groups::Tokens),
                dispatch(gpu.bind(&kernels.attention, heads, &[&q, &k_cache, &v_cache, &attended]), Groups::HeadsByTokens(p.num_heads)),
                matmul(&wo, &attended, &x, true),
                dispatch(gpu.bind(&kernels.rmsnorm, norm_dims, &[&x, &normed, &ffn_norm]), Groups::Tokens),
                matmul(&wg, &normed, &gate, false),
                matmul(&wu, &normed, &up, false),
                dispatch(gpu.bind(&kernels.swiglu, [ffn as u32, 0, 0, 0], &[&gate, &up]), Groups::Elements(ffn)),
                matmul(&wd, &gate, &x, true),
            ]);
        }
        let output_norm = gpu.storage("output_norm", bytemuck::cast_slice(&weights.output_norm))?;
        body.push(dispatch(gpu.bind(&kernels.rmsnorm, norm_dims, &[&x, &normed, &output_norm]), Groups::Tokens));
        let output = gpu.upload("output", &weights.output_matrix())?;
        let head = dispatch(gpu.bind_matmul(&output, &normed, &logits, false, true), Groups::HeadRows(output.rows));
        Ok(WebGpuModel {
            gpu,
            body,
            head,
            input: x,
            logits,
            staging,
            embeddings: weights.embeddings.clone(),
            vocab_size: vocab,
            context_length,
            weight_types: weights.matrix_types(),
            position: 0,
        })
    }

    pub fn adapter(&self) -> &AdapterSummary {
        self.gpu.adapter()
    }

    /// Destroys the device, as a driver reset or a lost GPU would: every later call fails with
    /// [`Error::Gpu`]. For tests of the fallback.
    pub fn lose_device(&self) {
        self.gpu.device.destroy();
    }

    /// How the weights are held on the GPU: the GGUF's own types, as in the tract backend.
    pub fn weight_types(&self) -> &[&'static str] {
        &self.weight_types
    }

    /// Feeds `embeddings` (`tokens` rows) in submits of at most [`MAX_CHUNK`] tokens.
    async fn feed(&mut self, embeddings: &[f32], wanted: Wanted) -> Result<Vec<f32>> {
        let hidden = self.embeddings.hidden_size();
        let tokens = embeddings.len() / hidden;
        check(tokens > 0, "ids", "at least one token", "none")?;
        if self.position + tokens > self.context_length {
            return Err(Error::ContextFull { context_length: self.context_length });
        }
        let mut logits = Vec::new();
        let chunks = tokens.div_ceil(MAX_CHUNK);
        for (i, chunk) in embeddings.chunks(MAX_CHUNK * hidden).enumerate() {
            let n = chunk.len() / hidden;
            let rows = match wanted {
                Wanted::AllRows => 0..n,
                Wanted::LastRow if i + 1 == chunks => n - 1..n,
                _ => n..n,
            };
            match self.submit(chunk, n, rows).await {
                Ok(values) => logits.extend(values),
                Err(e) => {
                    // The cache may hold part of the failed call.
                    self.reset();
                    return Err(e);
                }
            }
            self.position += n;
        }
        Ok(logits)
    }

    /// One submit: `tokens` embeddings at the current position; reads back the logits of the
    /// chunk's `rows` (none when empty).
    async fn submit(&self, embeddings: &[f32], tokens: usize, rows: std::ops::Range<usize>) -> Result<Vec<f32>> {
        let gpu = &self.gpu;
        gpu.write_step(Step { tokens: tokens as u32, start: self.position as u32, logits_from: rows.start as u32 });
        gpu.queue.write_buffer(&self.input, 0, bytemuck::cast_slice(embeddings));
        let logit_rows = rows.len();
        let mut dispatches: Vec<_> =
            self.body.iter().map(|d| (&d.bound, d.groups.count(tokens, logit_rows))).collect();
        if logit_rows == 0 {
            return gpu.run(&dispatches, None).await;
        }
        dispatches.push((&self.head.bound, self.head.groups.count(tokens, logit_rows)));
        gpu.run(&dispatches, Some((&self.logits, logit_rows * self.vocab_size, &self.staging))).await
    }
}

impl LanguageModel for WebGpuModel {
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn context_length(&self) -> usize {
        self.context_length
    }

    fn embeddings(&self) -> &EmbeddingTable {
        &self.embeddings
    }

    async fn prefill(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let embeddings = self.embeddings.rows(ids)?;
        self.feed(&embeddings, Wanted::LastRow).await
    }

    async fn prefill_all_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let embeddings = self.embeddings.rows(ids)?;
        self.feed(&embeddings, Wanted::AllRows).await
    }

    async fn step_embedding(&mut self, embedding: &[f32]) -> Result<Vec<f32>> {
        self.embeddings.check_input(embedding)?;
        self.feed(embedding, Wanted::LastRow).await
    }

    fn position(&self) -> usize {
        self.position
    }

    fn truncate(&mut self, len: usize) -> Result<()> {
        // Positions past `len` are overwritten by the next feed, and attention reads only
        // positions below the current one.
        super::check_truncate(len, self.position)?;
        self.position = len;
        Ok(())
    }

    fn reset(&mut self) {
        self.position = 0;
    }
}

/// `[position][head_dim / 2]` cosines, then the sines, of HF's RoPE angles `position · θ^(−2i/d)`,
/// computed as the tract graph computes them (libm's pow in f64, then f32).
fn rope_angles(theta: f32, head_dim: usize, positions: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> =
        (0..half).map(|i| (1.0 / libm::pow(theta as f64, (2 * i) as f64 / head_dim as f64)) as f32).collect();
    let angle = |pos: usize, i: usize| pos as f32 * inv_freq[i];
    let table = |f: fn(f32) -> f32| (0..positions).flat_map(move |pos| (0..half).map(move |i| f(angle(pos, i))));
    table(libm::cosf).chain(table(libm::sinf)).collect()
}
