//! The WebGPU backend of [`LanguageModel`]: the decoder's forward pass (the layer loop of
//! `arch::decoder`, recorded as dispatches by [`builder`]) in WGSL compute kernels (`kernels/`,
//! one file per kernel and per weight format), through wgpu. In wasm it runs on the
//! browser's WebGPU; natively on Vulkan (lavapipe, Mesa's software driver, for the tests).
//!
//! It reads the same [`ModelWeights`] as the tract backend: quantised matrices are uploaded in
//! the CPU's repacked layout (`QuantMatrix::packed_parts`), so there is one loader and one
//! layout. The math is f32 throughout (SwiftShader has no `shader-f16`): weights are widened in
//! the kernels, activations stay f32 (the CPU kernels quantise them to int16), so the two
//! backends' logits agree closely but not bit for bit.
//!
//! One call feeds at most [`MAX_CHUNK`] tokens per submit: the embeddings are uploaded, every
//! layer's dispatches go into one compute pass (bind groups built at load), and only the rows
//! whose logits are wanted are projected and read back, once per submit. The KV cache lives in
//! GPU buffers for [`GpuOptions::context_length`] positions.

mod builder;
mod cache_rows;
mod gpu;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

pub use cache_rows::GpuRows;
pub use gpu::{AdapterSummary, Gpu};

use builder::{GpuBuilder, Slot};
use gpu::{gpu_error, Bound, Step};

use super::arch::decoder::{self, soft_cap};
use super::weights::{GgufModel, ModelWeights};
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
    /// One workgroup per row: `n` rows per token.
    TokenRows(usize),
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
            Groups::TokenRows(n) => [c(tokens * n), 1, 1],
            Groups::HeadsByTokens(heads) => [c(heads), c(tokens), 1],
            Groups::Elements(width) => [c((tokens * width).div_ceil(256)), 1, 1],
        }
    }
}

/// The decoder's forward pass on a WebGPU device, holding one sequence's KV cache.
pub struct WebGpuModel {
    gpu: Gpu,
    /// Every layer's dispatches, then the final norm.
    body: Vec<Dispatch>,
    /// The output projection, run only when logits are read.
    head: Dispatch,
    input: wgpu::Buffer,
    /// Every layer's key and value caches (see `GpuBuilder::caches`).
    caches: Vec<wgpu::Buffer>,
    /// Bytes of one position in one cache.
    cache_row_bytes: u64,
    logits: wgpu::Buffer,
    staging: wgpu::Buffer,
    embeddings: EmbeddingTable,
    vocab_size: usize,
    context_length: usize,
    weight_types: Vec<&'static str>,
    /// The architecture's final soft-cap of the logits (gemma3).
    logit_softcap: Option<f32>,
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
    pub async fn new(weights: &ModelWeights, options: &GpuOptions) -> Result<Self> {
        let gpu = Gpu::new(options.force_fallback_adapter).await?;
        Self::with_gpu(gpu, weights, options).await
    }

    pub async fn with_gpu(gpu: Gpu, weights: &ModelWeights, options: &GpuOptions) -> Result<Self> {
        let p = &weights.params;
        let context_length = p.context(options.context_length, p.context_length.min(DEFAULT_GPU_CONTEXT))?;
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

    fn build(gpu: Gpu, weights: &ModelWeights, context_length: usize) -> Result<Self> {
        let p = &weights.params;
        let vocab = p.vocab_size;
        let mut builder = GpuBuilder::new(&gpu, weights, context_length)?;
        let normed = decoder::build(&mut builder, weights, Slot::X);
        if let Some(e) = builder.error.take() {
            return Err(e);
        }
        let logits = gpu.zeroed("logits", MAX_CHUNK * vocab)?;
        let staging = gpu.staging(MAX_CHUNK * vocab);
        let output = gpu.upload("output", &weights.output_matrix())?;
        let bound = gpu.bind_matmul(&output, builder.buffer(normed), &logits, false, true);
        let head = Dispatch { bound, groups: Groups::HeadRows(output.rows) };
        let (input, body, caches) = (builder.buffer(Slot::X).clone(), builder.body, builder.caches);
        Ok(WebGpuModel {
            gpu,
            body,
            head,
            input,
            caches,
            cache_row_bytes: (p.kv_width() * 4) as u64,
            logits,
            staging,
            embeddings: weights.embeddings.clone(),
            vocab_size: vocab,
            context_length,
            weight_types: weights.matrix_types(),
            logit_softcap: p.final_softcap,
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
        let mut logits = gpu.run(&dispatches, Some((&self.logits, logit_rows * self.vocab_size, &self.staging))).await?;
        soft_cap(self.logit_softcap, &mut logits);
        Ok(logits)
    }
}

impl LanguageModel for WebGpuModel {
    type Rows = GpuRows;

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

    fn copy_cache(&self, range: std::ops::Range<usize>) -> Result<GpuRows> {
        super::check_copy(&range, self.position)?;
        GpuRows::copy(&self.gpu, &self.caches, self.cache_row_bytes, range)
    }

    fn append_cache(&mut self, rows: &GpuRows, range: std::ops::Range<usize>) -> Result<()> {
        super::check_append(rows, &range, self.position, self.context_length)?;
        rows.append(&self.gpu, &self.caches, range.clone())?;
        self.position += range.len();
        Ok(())
    }
}
