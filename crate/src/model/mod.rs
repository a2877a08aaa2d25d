//! The language-model runtime: a small backend-neutral [`LanguageModel`] trait, the embedding
//! table it shares with every backend, the file formats ([`gguf`], [`onnx`]), the one loader of a
//! GGUF's weights in their own precision ([`weights`]), the block-quantised matrices and their
//! kernels ([`quant`]), and the tract backend (CPU, native and wasm) in [`tract`].
//!
//! Models are decoder-only causal LMs fed *embeddings*, not ids: the runtime looks ids up in the
//! embedding table itself, which is what lets superposed decoding feed a weighted sum of
//! embedding rows ([`EmbeddingTable::superpose`] + [`LanguageModel::step_embedding`]). A GGUF's
//! table stays in its own blocks, which the tied output projection shares.
//!
//! No backend type appears in the trait: the tract and the WebGPU backends both implement it.

pub mod arch;
pub mod auto;
pub(crate) mod crew;
pub mod formats;
pub mod gguf;
pub mod onnx;
pub mod quant;
pub mod tract;
pub mod webgpu;
pub mod weights;

use std::sync::Arc;

use crate::error::{check, Error, Result};
use serde::Deserialize;

use self::quant::QuantMatrix;

pub use self::tract::{TractModel, TractRows};

/// A causal language model that keeps one sequence's KV cache.
///
/// Every call that feeds tokens appends them at [`position`](LanguageModel::position) and
/// returns logits (length [`vocab_size`](LanguageModel::vocab_size)) for the next token. A call
/// that would take the sequence past [`context_length`](LanguageModel::context_length) returns
/// [`Error::ContextFull`] and changes nothing.
///
/// The feeding calls are `async` because a GPU's logits come back through a buffer mapping,
/// which wasm can only await. The CPU backend's futures are ready at once, and natively so are
/// the GPU's (its readback waits in `poll`), so a native caller can drive them with any
/// `block_on`.
// The futures are driven on one thread (in wasm, by the JS event loop): they need no `Send`.
#[allow(async_fn_in_trait)]
pub trait LanguageModel {
    /// KV-cache rows copied out of the cache, in the backend's own memory.
    type Rows: CacheRows;

    /// Number of tokens (length of every logits vector).
    fn vocab_size(&self) -> usize;
    /// The most tokens one sequence can hold.
    fn context_length(&self) -> usize;
    /// Width of one embedding (one `step_embedding` input).
    fn hidden_size(&self) -> usize {
        self.embeddings().hidden_size()
    }
    /// The token embedding table (the graph does not embed ids itself).
    fn embeddings(&self) -> &EmbeddingTable;

    /// The embedding row of `token`, as f32.
    fn embed(&self, token: u32) -> Result<Vec<f32>> {
        self.embeddings().row(token)
    }

    /// Feeds `ids` (at least one) after what the cache holds and returns the logits of the last
    /// position. Call [`reset`](LanguageModel::reset) first to start a new sequence.
    async fn prefill(&mut self, ids: &[u32]) -> Result<Vec<f32>>;

    /// Like [`prefill`](LanguageModel::prefill), but returns the logits of every fed position,
    /// row-major `[ids.len() × vocab_size]` (teacher-forced scoring, perplexity).
    async fn prefill_all_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>>;

    /// Feeds one token and returns the next-token logits.
    async fn step_token(&mut self, id: u32) -> Result<Vec<f32>> {
        self.prefill(&[id]).await
    }

    /// Feeds one embedding vector (length [`hidden_size`](LanguageModel::hidden_size)), e.g. a
    /// weighted sum of token embeddings, and returns the next-token logits.
    async fn step_embedding(&mut self, embedding: &[f32]) -> Result<Vec<f32>>;

    /// Number of positions held in the KV cache.
    fn position(&self) -> usize;

    /// Rolls the KV cache back to its first `len` positions (at most
    /// [`position`](LanguageModel::position)), so that a new input sharing that prefix feeds only
    /// what follows it. `truncate(0)` is [`reset`](LanguageModel::reset).
    fn truncate(&mut self, len: usize) -> Result<()>;

    /// Empties the KV cache: the next call starts a new sequence at position 0.
    fn reset(&mut self);

    /// Copies the cache's positions `range` (below [`position`](LanguageModel::position)) out,
    /// so that a later sequence sharing them can take them back with
    /// [`append_cache`](LanguageModel::append_cache) instead of computing them again.
    fn copy_cache(&self, range: std::ops::Range<usize>) -> Result<Self::Rows>;

    /// Appends the positions `range` of `rows` (counted from the rows' first) after what the
    /// cache holds, as if they had been fed. Keys carry their position's rotation, so they go
    /// back where they were copied from: the cache must hold exactly the positions before them.
    fn append_cache(&mut self, rows: &Self::Rows, range: std::ops::Range<usize>) -> Result<()>;
}

/// KV-cache rows of consecutive positions, as [`LanguageModel::copy_cache`] copies them.
pub trait CacheRows {
    /// The position of the first row.
    fn start(&self) -> usize;
    /// How many positions the rows hold.
    fn positions(&self) -> usize;
    /// The memory they take.
    fn bytes(&self) -> usize;
}

/// The checks every [`LanguageModel::copy_cache`] makes first.
pub(crate) fn check_copy(range: &std::ops::Range<usize>, position: usize) -> Result<()> {
    check(range.start < range.end && range.end <= position, "range", "a non-empty range of cached positions", format!("{range:?} ({position} cached)"))
}

/// The checks every [`LanguageModel::append_cache`] makes first.
pub(crate) fn check_append(rows: &impl CacheRows, range: &std::ops::Range<usize>, position: usize, context_length: usize) -> Result<()> {
    check(range.start < range.end && range.end <= rows.positions(), "range", "a non-empty range of the rows", format!("{range:?} of {} rows", rows.positions()))?;
    let at = rows.start() + range.start;
    check(at == position, "rows", "the positions that follow the cache's", format!("position {at} after {position} cached"))?;
    match position + range.len() <= context_length {
        true => Ok(()),
        false => Err(Error::ContextFull { context_length }),
    }
}

/// The check every [`LanguageModel::truncate`] makes first.
pub(crate) fn check_truncate(len: usize, position: usize) -> Result<()> {
    check(len <= position, "truncate", "at most the number of cached positions", format!("{len} ({position} cached)"))
}

/// The dimensions of a model, as in the `config.json` written next to each `model.onnx` by
/// `models/build_model.py` (`onnx_files.py`), or in a Hugging Face `config.json` (other keys are ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub context_length: usize,
}

/// A `config.json` in either spelling: ours, or Hugging Face's (`num_hidden_layers`,
/// `max_position_embeddings`, and a head size that may be left to `hidden_size / num_attention_heads`).
#[derive(Deserialize)]
struct ConfigJson {
    vocab_size: usize,
    hidden_size: usize,
    #[serde(alias = "num_hidden_layers")]
    num_layers: usize,
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(alias = "max_position_embeddings")]
    context_length: usize,
}

impl ModelConfig {
    /// Parses a `config.json` (only the dimensions and the context length are read).
    pub fn from_json(json: &str) -> Result<Self> {
        let c: ConfigJson = serde_json::from_str(json)
            .map_err(|e| Error::Model(format!("cannot read the model config JSON: {e}")))?;
        check(c.context_length > 0, "context_length", "at least 1", 0)?;
        let heads = c.num_attention_heads;
        let missing = |what: &str| Error::Model(format!("the model config JSON has no {what}"));
        let head_dim = match (c.head_dim, heads) {
            (Some(d), _) => d,
            (None, Some(h)) if h > 0 => c.hidden_size / h,
            _ => return Err(missing("`head_dim` (nor `num_attention_heads`)")),
        };
        let num_key_value_heads = c.num_key_value_heads.or(heads).ok_or_else(|| missing("`num_key_value_heads` (nor `num_attention_heads`)"))?;
        Ok(ModelConfig { vocab_size: c.vocab_size, hidden_size: c.hidden_size, num_layers: c.num_layers, num_key_value_heads, head_dim, context_length: c.context_length })
    }

    /// The end-of-sequence ids a Hugging Face `config.json` or `generation_config.json` names
    /// (`eos_token_id`: one id or a list); none when it names none or is not JSON.
    pub fn eos_token_ids(json: &str) -> Vec<u32> {
        let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        match &value["eos_token_id"] {
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()).into_iter().collect(),
            serde_json::Value::Array(ids) => ids.iter().filter_map(|n| n.as_u64().and_then(|n| u32::try_from(n).ok())).collect(),
            _ => Vec::new(),
        }
    }
}

/// How the embedding table is stored: in the file's own precision, widened to f32 row by row
/// when read. A block-quantised table (SmolLM2's GGUF: Q8_0) is shared with the tied output
/// projection, so it is held once.
#[derive(Debug, Clone)]
pub enum EmbeddingStorage {
    F32(Vec<f32>),
    /// IEEE 754 binary16 bit patterns.
    F16(Vec<u16>),
    Quant(Arc<QuantMatrix>),
}

/// The `[vocab, hidden]` token embedding table.
#[derive(Debug, Clone)]
pub struct EmbeddingTable {
    vocab_size: usize,
    hidden_size: usize,
    storage: EmbeddingStorage,
}

impl EmbeddingTable {
    /// A table of `vocab_size` rows of `hidden_size` values.
    pub fn new(vocab_size: usize, hidden_size: usize, storage: EmbeddingStorage) -> Result<Self> {
        let len = match &storage {
            EmbeddingStorage::F32(v) => v.len(),
            EmbeddingStorage::F16(v) => v.len(),
            EmbeddingStorage::Quant(q) => q.rows() * q.cols(),
        };
        if let EmbeddingStorage::Quant(q) = &storage {
            if q.rows() != vocab_size || q.cols() != hidden_size {
                return Err(Error::Model(format!(
                    "embedding table is {} x {}, expected {vocab_size} x {hidden_size}",
                    q.rows(),
                    q.cols()
                )));
            }
        }
        if vocab_size == 0 || hidden_size == 0 || Some(len) != vocab_size.checked_mul(hidden_size) {
            return Err(Error::Model(format!(
                "embedding table holds {len} values, expected {vocab_size} x {hidden_size}"
            )));
        }
        Ok(EmbeddingTable {
            vocab_size,
            hidden_size,
            storage,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    pub fn storage(&self) -> &EmbeddingStorage {
        &self.storage
    }

    /// Bytes held by the table.
    pub fn storage_bytes(&self) -> usize {
        match &self.storage {
            EmbeddingStorage::F32(v) => v.len() * 4,
            EmbeddingStorage::F16(v) => v.len() * 2,
            EmbeddingStorage::Quant(q) => q.storage_bytes(),
        }
    }

    fn range(&self, token: u32) -> Result<std::ops::Range<usize>> {
        let t = token as usize;
        if t >= self.vocab_size {
            return Err(Error::TokenOutOfRange {
                token,
                vocab_size: self.vocab_size,
            });
        }
        Ok(t * self.hidden_size..(t + 1) * self.hidden_size)
    }

    /// The row of `token` as f32.
    pub fn row(&self, token: u32) -> Result<Vec<f32>> {
        let mut out = vec![0.0; self.hidden_size];
        self.add_scaled_row(token, 1.0, &mut out)?;
        Ok(out)
    }

    /// Writes the row of `token` into `out` (length `hidden_size`).
    pub fn row_into(&self, token: u32, out: &mut [f32]) -> Result<()> {
        self.check_out(out)?;
        out.iter_mut().for_each(|x| *x = 0.0);
        self.add_scaled_row(token, 1.0, out)
    }

    /// `out += weight * row(token)`, in f32.
    pub fn add_scaled_row(&self, token: u32, weight: f32, out: &mut [f32]) -> Result<()> {
        self.check_out(out)?;
        let r = self.range(token)?;
        match &self.storage {
            EmbeddingStorage::F32(v) => {
                for (o, &x) in out.iter_mut().zip(&v[r]) {
                    *o += weight * x;
                }
            }
            EmbeddingStorage::F16(v) => {
                for (o, &x) in out.iter_mut().zip(&v[r]) {
                    *o += weight * f16_bits_to_f32(x);
                }
            }
            EmbeddingStorage::Quant(q) => q.add_scaled_row(token as usize, weight, out)?,
        }
        Ok(())
    }

    /// The rows of `ids`, back to back: a prefill's input.
    pub fn rows(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let mut out = vec![0.0; ids.len() * self.hidden_size];
        for (&id, row) in ids.iter().zip(out.chunks_exact_mut(self.hidden_size)) {
            self.add_scaled_row(id, 1.0, row)?;
        }
        Ok(out)
    }

    /// Checks a [`LanguageModel::step_embedding`] input: `hidden_size` finite values.
    pub fn check_input(&self, embedding: &[f32]) -> Result<()> {
        self.check_out(embedding)?;
        match embedding.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            Some((index, &value)) => Err(Error::InvalidParameter {
                name: "embedding",
                expected: "finite numbers",
                value: format!("{value} at index {index}"),
            }),
            None => Ok(()),
        }
    }

    /// `sum_k weight_k * row(token_k)` accumulated in f32 in the given order: the input of
    /// superposed decoding. Weights must be finite; at least one pair.
    pub fn superpose(&self, tokens_and_weights: &[(u32, f32)]) -> Result<Vec<f32>> {
        check(
            !tokens_and_weights.is_empty(),
            "superposition",
            "at least one token",
            "none",
        )?;
        let mut out = vec![0.0; self.hidden_size];
        for &(token, weight) in tokens_and_weights {
            check(
                weight.is_finite(),
                "superposition weight",
                "a finite number",
                weight,
            )?;
            self.add_scaled_row(token, weight, &mut out)?;
        }
        Ok(out)
    }

    fn check_out(&self, out: &[f32]) -> Result<()> {
        if out.len() != self.hidden_size {
            return Err(Error::InvalidParameter {
                name: "embedding",
                expected: "a vector of hidden_size values",
                value: format!("{} values (hidden_size is {})", out.len(), self.hidden_size),
            });
        }
        Ok(())
    }
}

/// bfloat16 → binary32: a bf16 is the top half of an f32, so widening is exact (ggml's
/// `ggml_compute_bf16_to_fp32`).
pub fn bf16_bits_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Exact IEEE 754 binary16 → binary32 widening (subnormals, infinities and NaN included).
pub fn f16_bits_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m * 2^-24; normalise it.
            let shift = m.leading_zeros() - 21; // bring the top set bit to bit 10
            let m = (m << shift) & 0x3ff;
            let e = 127 - 15 + 1 - shift;
            sign | (e << 23) | (m << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_widening_is_exact() {
        assert_eq!(f16_bits_to_f32(0x0000), 0.0);
        assert_eq!(f16_bits_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert_eq!(f16_bits_to_f32(0x3c00), 1.0);
        assert_eq!(f16_bits_to_f32(0xc000), -2.0);
        assert_eq!(f16_bits_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_bits_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_bits_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
        assert_eq!(f16_bits_to_f32(0x0400), 2f32.powi(-14));
        assert_eq!(f16_bits_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_bits_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_bits_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_bits_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn embedding_rows_and_superposition() {
        let table =
            EmbeddingTable::new(3, 2, EmbeddingStorage::F32(vec![1., 2., 3., 4., 5., 6.])).unwrap();
        assert_eq!(table.row(1).unwrap(), vec![3., 4.]);
        assert_eq!(
            table.superpose(&[(0, 0.5), (2, 0.5)]).unwrap(),
            vec![3., 4.]
        );
        assert_eq!(
            table.row(3),
            Err(Error::TokenOutOfRange {
                token: 3,
                vocab_size: 3
            })
        );
        let mut out = [0.0; 3];
        assert!(table.row_into(0, &mut out).is_err());
        assert!(EmbeddingTable::new(3, 2, EmbeddingStorage::F32(vec![0.; 5])).is_err());
        let half = EmbeddingTable::new(1, 2, EmbeddingStorage::F16(vec![0x3c00, 0xc000])).unwrap();
        assert_eq!(half.row(0).unwrap(), vec![1.0, -2.0]);
        assert_eq!(half.storage_bytes(), 4);
    }

    #[test]
    fn config_json() {
        let c = ModelConfig::from_json(
            r#"{"vocab_size":5,"hidden_size":4,"num_layers":1,"num_key_value_heads":1,
                "head_dim":4,"context_length":8,"name":"x"}"#,
        )
        .unwrap();
        assert_eq!(c.context_length, 8);
        assert!(matches!(ModelConfig::from_json("{"), Err(Error::Model(_))));
    }
}
