//! The model the wasm API holds: one [`LanguageModel`] over either backend, WebGPU when an
//! adapter exists and tract otherwise, which moves to the CPU when the GPU fails mid-run.

use serde::{Deserialize, Serialize};

use super::quant::Kernel;
use super::tract::{TractModel, TractRows};
use super::webgpu::{AdapterSummary, Gpu, GpuOptions, GpuRows, WebGpuModel};
use super::weights::ModelWeights;
use super::{CacheRows, EmbeddingTable, LanguageModel};
use crate::error::{check, Error, Result};

/// Which backend runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase")]
pub enum Backend {
    /// WebGPU when an adapter opens and takes the model, else the CPU; a GPU failure mid-run
    /// moves to the CPU.
    #[default]
    Auto,
    /// WebGPU only: no adapter, or a GPU failure, is an error.
    Webgpu,
    /// tract on the CPU (wasm SIMD in the browser).
    Cpu,
}

/// Which backend is running, on what, and why not the GPU if it was wanted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct BackendInfo {
    /// `"webgpu"` or `"cpu"`.
    pub backend: &'static str,
    /// The WebGPU adapter, while it runs the model.
    pub adapter: Option<AdapterSummary>,
    /// Why the model runs on the CPU although WebGPU was asked for (`auto`): no adapter, a
    /// software adapter, out of memory, a device lost mid-run…
    pub fallback_reason: Option<String>,
    /// Bytes of memory (wasm memory, in the browser) that the CPU's copy of the weights takes
    /// while `auto` runs on the GPU, kept so that a GPU failure can move the run to the CPU.
    pub fallback_weight_bytes: Option<usize>,
}

/// `$body` with `$m` bound to the active backend's model.
macro_rules! active {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            Active::Cpu($m) => $body,
            Active::Gpu($m) => $body,
        }
    };
}

enum Active {
    Cpu(TractModel),
    Gpu(WebGpuModel),
}

/// One call's input, kept while on the GPU so that the CPU can replay the sequence.
#[derive(Clone)]
enum Fed {
    Ids { ids: Vec<u32>, all_logits: bool },
    Embedding(Vec<f32>),
}

/// The inputs of positions `range` of a sequence fed `history`.
fn inputs_at(history: &[Fed], range: std::ops::Range<usize>) -> Vec<Fed> {
    let mut at = 0;
    let mut inputs = Vec::new();
    for fed in history {
        let positions = match fed {
            Fed::Ids { ids, .. } => ids.len(),
            Fed::Embedding(_) => 1,
        };
        let (from, to) = (range.start.max(at), range.end.min(at + positions));
        match fed {
            _ if from >= to => {}
            Fed::Ids { ids, .. } => inputs.push(Fed::Ids { ids: ids[from - at..to - at].to_vec(), all_logits: false }),
            Fed::Embedding(_) => inputs.push(fed.clone()),
        }
        at += positions;
    }
    inputs
}

/// KV-cache rows of the backend that copied them.
enum BackendRows {
    Cpu(TractRows),
    Gpu(GpuRows),
}

/// [`AutoModel`]'s cache rows; on the GPU under [`Backend::Auto`], with their positions' inputs,
/// so that the CPU can still replay a sequence that took them.
pub struct AutoRows {
    rows: BackendRows,
    inputs: Vec<Fed>,
}

impl CacheRows for AutoRows {
    fn start(&self) -> usize {
        match &self.rows {
            BackendRows::Cpu(r) => r.start(),
            BackendRows::Gpu(r) => r.start(),
        }
    }
    fn positions(&self) -> usize {
        match &self.rows {
            BackendRows::Cpu(r) => r.positions(),
            BackendRows::Gpu(r) => r.positions(),
        }
    }
    fn bytes(&self) -> usize {
        match &self.rows {
            BackendRows::Cpu(r) => r.bytes(),
            BackendRows::Gpu(r) => r.bytes(),
        }
    }
}

pub struct AutoModel {
    active: Active,
    /// While on the GPU under [`Backend::Auto`]: the weights to build the CPU model from, and
    /// what the current sequence has been fed.
    fallback: Option<(ModelWeights, Vec<Fed>)>,
    fallback_reason: Option<String>,
    /// `GpuOptions::context_length`, which caps the CPU model's context too.
    context_cap: Option<usize>,
    kv_cache_bytes_per_token: usize,
}

/// Bytes of KV cache per position: keys and values of every layer, f32 on both backends.
fn kv_bytes(layers: usize, kv_heads: usize, head_dim: usize) -> usize {
    2 * layers * kv_heads * head_dim * std::mem::size_of::<f32>()
}

/// A CPU model of `weights`, its context capped at `cap`.
fn cpu_model(weights: &ModelWeights, cap: Option<usize>) -> Result<TractModel> {
    TractModel::from_weights(weights, Kernel::Simd, cap)
}

impl AutoModel {
    /// Puts `weights` on the backend `backend` asks for. `options.context_length` caps the
    /// context on either backend, to bound the KV cache's memory.
    pub async fn load(weights: ModelWeights, backend: Backend, options: &GpuOptions) -> Result<Self> {
        let context = weights.params.context_length;
        if let Some(cap) = options.context_length {
            check((1..=context).contains(&cap), "contextLength", "at least 1 and at most the model's context", format!("{cap} (the model's is {context})"))?;
        }
        let cpu = |weights: &ModelWeights| cpu_model(weights, options.context_length).map(Active::Cpu);
        let p = &weights.params;
        let kv = kv_bytes(p.num_layers, p.num_kv_heads, p.head_dim);
        let on = |active, fallback_reason| Self::on(active, fallback_reason, options.context_length, kv);
        match backend {
            Backend::Cpu => Ok(on(cpu(&weights)?, None)),
            Backend::Webgpu => Ok(on(Active::Gpu(WebGpuModel::new(&weights, options).await?), None)),
            Backend::Auto => match auto_gpu(&weights, options).await {
                Ok(gpu) => Ok(AutoModel { fallback: Some((weights, Vec::new())), ..on(Active::Gpu(gpu), None) }),
                Err(Error::Gpu(reason)) => Ok(on(cpu(&weights)?, Some(reason))),
                Err(e) => Err(e),
            },
        }
    }

    fn on(active: Active, fallback_reason: Option<String>, context_cap: Option<usize>, kv_cache_bytes_per_token: usize) -> Self {
        AutoModel { active, fallback: None, fallback_reason, context_cap, kv_cache_bytes_per_token }
    }

    /// A CPU model (an ONNX file has no GPU path).
    pub fn cpu(model: TractModel) -> Self {
        let c = model.config();
        let kv = kv_bytes(c.num_layers, c.num_key_value_heads, c.head_dim);
        Self::on(Active::Cpu(model), None, None, kv)
    }

    /// What the KV cache takes per position: a longer context costs this much memory more.
    pub fn kv_cache_bytes_per_token(&self) -> usize {
        self.kv_cache_bytes_per_token
    }

    pub fn info(&self) -> BackendInfo {
        let (backend, adapter) = match &self.active {
            Active::Cpu(_) => ("cpu", None),
            Active::Gpu(gpu) => ("webgpu", Some(gpu.adapter().clone())),
        };
        let fallback_weight_bytes = self.fallback.as_ref().map(|(weights, _)| weights.storage_bytes());
        BackendInfo { backend, adapter, fallback_reason: self.fallback_reason.clone(), fallback_weight_bytes }
    }

    /// Destroys the GPU device, if one runs the model (see [`WebGpuModel::lose_device`]).
    pub fn lose_device(&self) {
        if let Active::Gpu(gpu) = &self.active {
            gpu.lose_device();
        }
    }

    pub fn weight_types(&self) -> &[&'static str] {
        active!(&self.active, m => m.weight_types())
    }

    async fn feed(&mut self, input: Fed) -> Result<Vec<f32>> {
        if let Active::Gpu(gpu) = &mut self.active {
            let result = run(gpu, &input).await;
            match (result, &mut self.fallback) {
                (Err(Error::Gpu(reason)), Some(_)) => self.move_to_cpu(reason).await?,
                (result, fallback) => {
                    if let (Ok(_), Some((_, history))) = (&result, fallback) {
                        history.push(input);
                    }
                    return result;
                }
            }
        }
        active!(&mut self.active, m => run(m, &input).await)
    }

    /// Builds the CPU model and replays the sequence on it.
    async fn move_to_cpu(&mut self, reason: String) -> Result<()> {
        let Some((weights, history)) = self.fallback.take() else { return Err(Error::Gpu(reason)) };
        let mut cpu = cpu_model(&weights, self.context_cap)?;
        drop(weights);
        for input in &history {
            run(&mut cpu, input).await?;
        }
        self.active = Active::Cpu(cpu);
        self.fallback_reason = Some(format!("{reason} (moved to the CPU mid-run)"));
        Ok(())
    }
}

/// WebGPU for [`Backend::Auto`]: not on a software adapter, which runs many times slower than
/// the CPU path (SwiftShader: 1.3 tok/s on SmolLM2 where the CPU makes 65), unless the caller
/// asked for the fallback adapter.
async fn auto_gpu(weights: &ModelWeights, options: &GpuOptions) -> Result<WebGpuModel> {
    let gpu = Gpu::new(options.force_fallback_adapter).await?;
    let adapter = gpu.adapter();
    if adapter.fallback && !options.force_fallback_adapter {
        let name = if adapter.name.is_empty() { String::new() } else { format!(" ({})", adapter.name) };
        return Err(Error::Gpu(format!("the WebGPU adapter is a software fallback{name}, slower than the CPU; backend \"webgpu\" runs on it anyway")));
    }
    WebGpuModel::with_gpu(gpu, weights, options).await
}

async fn run(model: &mut impl LanguageModel, input: &Fed) -> Result<Vec<f32>> {
    match input {
        Fed::Ids { ids, all_logits: true } => model.prefill_all_logits(ids).await,
        Fed::Ids { ids, all_logits: false } => model.prefill(ids).await,
        Fed::Embedding(e) => model.step_embedding(e).await,
    }
}

impl LanguageModel for AutoModel {
    type Rows = AutoRows;

    fn vocab_size(&self) -> usize {
        active!(&self.active, m => m.vocab_size())
    }

    fn context_length(&self) -> usize {
        active!(&self.active, m => m.context_length())
    }

    fn embeddings(&self) -> &EmbeddingTable {
        active!(&self.active, m => m.embeddings())
    }

    async fn prefill(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        self.feed(Fed::Ids { ids: ids.to_vec(), all_logits: false }).await
    }

    async fn prefill_all_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        self.feed(Fed::Ids { ids: ids.to_vec(), all_logits: true }).await
    }

    async fn step_embedding(&mut self, embedding: &[f32]) -> Result<Vec<f32>> {
        self.feed(Fed::Embedding(embedding.to_vec())).await
    }

    fn position(&self) -> usize {
        active!(&self.active, m => m.position())
    }

    fn truncate(&mut self, len: usize) -> Result<()> {
        active!(&mut self.active, m => m.truncate(len))?;
        if let Some((_, history)) = &mut self.fallback {
            let mut kept = 0;
            history.retain_mut(|fed| {
                let positions = match fed {
                    Fed::Ids { ids, .. } => {
                        ids.truncate(len.saturating_sub(kept));
                        ids.len()
                    }
                    Fed::Embedding(_) => usize::from(kept < len),
                };
                kept += positions;
                positions > 0
            });
        }
        Ok(())
    }

    fn reset(&mut self) {
        if let Some((_, history)) = &mut self.fallback {
            history.clear();
        }
        active!(&mut self.active, m => m.reset())
    }

    fn copy_cache(&self, range: std::ops::Range<usize>) -> Result<AutoRows> {
        let inputs = match &self.fallback {
            Some((_, history)) => inputs_at(history, range.clone()),
            None => Vec::new(),
        };
        let rows = match &self.active {
            Active::Cpu(m) => BackendRows::Cpu(m.copy_cache(range)?),
            Active::Gpu(m) => BackendRows::Gpu(m.copy_cache(range)?),
        };
        Ok(AutoRows { rows, inputs })
    }

    fn append_cache(&mut self, rows: &AutoRows, range: std::ops::Range<usize>) -> Result<()> {
        match (&mut self.active, &rows.rows) {
            (Active::Cpu(m), BackendRows::Cpu(r)) => m.append_cache(r, range),
            (Active::Gpu(m), BackendRows::Gpu(r)) => {
                m.append_cache(r, range.clone())?;
                if let Some((_, history)) = &mut self.fallback {
                    history.extend(inputs_at(&rows.inputs, range));
                }
                Ok(())
            }
            _ => Err(Error::Model("these KV-cache rows were kept by the other backend".into())),
        }
    }
}
