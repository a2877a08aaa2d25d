//! The weights of a decoder as one loader reads them from a GGUF file, in the file's own
//! precision, for every backend to share.
//!
//! Each tensor is held as the registry (`model::formats`) says for its stored type:
//! block-quantised ones (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q3_K, Q4_K, Q5_K, Q6_K) as blocks
//! ([`QuantMatrix`]), F16 and F32 ones as they are, BF16 ones widened to F32. Each tensor's file bytes are dropped as soon as they are converted, so the
//! peak while loading is the weights plus one tensor. In `llama` files the converter stores the
//! Q and K rows permuted for adjacent-pair RoPE; they are put back in half-split order here, a
//! pure row reordering of whole blocks, so every backend has one RoPE (the NEOX layout of every
//! other architecture). Fused tensors (`attn_qkv`, phi3's `gate|up`) are split by rows here
//! too, so that the backends see one layout.

use std::collections::HashMap;
use std::sync::Arc;

use prost::bytes::Buf;

use super::formats::{GgmlType, Held};
use super::arch::params::ModelParams;
use super::arch::{RopeFactors, RopePairs};
use super::arch::llama_permutation;
use super::gguf::{GgufReader, TensorInfo};
use super::quant::QuantMatrix;
use super::bf16_bits_to_f32;
use super::{EmbeddingStorage, EmbeddingTable};
use crate::error::{Error, Result};
use crate::tokenizer::TextTokenizer;

/// A `[rows × cols]` weight matrix (rows are output features, as GGUF stores them).
#[derive(Debug, Clone)]
pub enum Matrix {
    Quant(Arc<QuantMatrix>),
    F32 { rows: usize, cols: usize, values: Vec<f32> },
    /// IEEE 754 binary16 bit patterns.
    F16 { rows: usize, cols: usize, bits: Vec<u16> },
}

impl Matrix {
    pub fn rows(&self) -> usize {
        match self {
            Matrix::Quant(q) => q.rows(),
            Matrix::F32 { rows, .. } | Matrix::F16 { rows, .. } => *rows,
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            Matrix::Quant(q) => q.cols(),
            Matrix::F32 { cols, .. } | Matrix::F16 { cols, .. } => *cols,
        }
    }

    /// The storage type's name, as GGUF calls it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Matrix::Quant(q) => q.format().name(),
            Matrix::F32 { .. } => "F32",
            Matrix::F16 { .. } => "F16",
        }
    }

    pub fn storage_bytes(&self) -> usize {
        match self {
            Matrix::Quant(q) => q.storage_bytes(),
            Matrix::F32 { values, .. } => values.len() * 4,
            Matrix::F16 { bits, .. } => bits.len() * 2,
        }
    }
}

/// One transformer block. Optional parts are those only some architectures have.
#[derive(Debug, Clone)]
pub struct LayerWeights {
    pub attn_norm: Vec<f32>,
    /// Rows in half-split RoPE order (see the module docs).
    pub q: Matrix,
    pub k: Matrix,
    pub v: Matrix,
    pub q_bias: Option<Vec<f32>>,
    pub k_bias: Option<Vec<f32>>,
    pub v_bias: Option<Vec<f32>>,
    /// Per-head RMSNorm weights of Q and K.
    pub qk_norms: Option<[Vec<f32>; 2]>,
    pub o: Matrix,
    /// The norms of the attention's and the feed-forward's outputs.
    pub post_norms: Option<[Vec<f32>; 2]>,
    pub ffn_norm: Vec<f32>,
    pub gate: Matrix,
    pub up: Matrix,
    pub down: Matrix,
}

impl LayerWeights {
    fn matrices(&self) -> [&Matrix; 7] {
        [&self.q, &self.k, &self.v, &self.o, &self.gate, &self.up, &self.down]
    }

    fn vectors(&self) -> impl Iterator<Item = &Vec<f32>> {
        let optional = [&self.q_bias, &self.k_bias, &self.v_bias].into_iter().flatten();
        let pairs = [&self.qk_norms, &self.post_norms].into_iter().flatten().flatten();
        [&self.attn_norm, &self.ffn_norm].into_iter().chain(optional).chain(pairs)
    }
}

/// A whole model.
#[derive(Debug, Clone)]
pub struct ModelWeights {
    pub params: ModelParams,
    pub embeddings: EmbeddingTable,
    pub layers: Vec<LayerWeights>,
    pub output_norm: Vec<f32>,
    /// The output projection `[vocab × hidden]`; `None` when it is tied to the embeddings.
    pub output: Option<Matrix>,
    /// RoPE frequency divisors (`rope_freqs`, or LongRoPE's short and long ones).
    pub rope_factors: Vec<(String, Vec<f32>)>,
}

impl ModelWeights {
    /// Bytes held by all the weights.
    pub fn storage_bytes(&self) -> usize {
        let floats = |v: &Vec<f32>| v.len() * 4;
        self.embeddings.storage_bytes()
            + self.output.as_ref().map_or(0, Matrix::storage_bytes)
            + floats(&self.output_norm)
            + self
                .layers
                .iter()
                .map(|l| l.matrices().iter().map(|m| m.storage_bytes()).sum::<usize>() + l.vectors().map(floats).sum::<usize>())
                .sum::<usize>()
    }

    /// The distinct storage types of the matrices and the embedding table, e.g. `["Q4_1", "Q8_0"]`.
    pub fn matrix_types(&self) -> Vec<&'static str> {
        let embedding = match self.embeddings.storage() {
            EmbeddingStorage::Quant(q) => q.format().name(),
            EmbeddingStorage::F32(_) => "F32",
            EmbeddingStorage::F16(_) => "F16",
        };
        let layers = self.layers.iter().flat_map(|l| l.matrices());
        let mut types: Vec<&'static str> =
            layers.chain(&self.output).map(Matrix::type_name).chain([embedding]).collect();
        types.sort_unstable();
        types.dedup();
        types
    }

    /// The output projection: its own matrix, or the (tied) embedding table.
    pub fn output_matrix(&self) -> Matrix {
        match (&self.output, self.embeddings.storage()) {
            (Some(m), _) => m.clone(),
            (None, EmbeddingStorage::Quant(q)) => Matrix::Quant(q.clone()),
            (None, EmbeddingStorage::F32(values)) => Matrix::F32 {
                rows: self.embeddings.vocab_size(),
                cols: self.embeddings.hidden_size(),
                values: values.clone(),
            },
            (None, EmbeddingStorage::F16(bits)) => Matrix::F16 {
                rows: self.embeddings.vocab_size(),
                cols: self.embeddings.hidden_size(),
                bits: bits.clone(),
            },
        }
    }

    /// The RoPE divisors for a backend that holds `context` positions: `rope_freqs`, or
    /// LongRoPE's long factors past the original context and its short ones within it (as
    /// llama.cpp's `get_rope_factors` chooses by the context's size).
    pub fn rope_factors(&self, context: usize) -> Option<&[f32]> {
        let name = match self.params.arch.rope_factors {
            RopeFactors::None => return None,
            RopeFactors::Freqs => "rope_freqs.weight",
            RopeFactors::ShortLong if context > self.params.rope.original_context => "rope_factors_long.weight",
            RopeFactors::ShortLong => "rope_factors_short.weight",
        };
        self.rope_factors.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }
}

/// A complete model read from one `.gguf`: the weights and the tokenizer from its metadata.
pub struct GgufModel {
    pub weights: ModelWeights,
    pub tokenizer: TextTokenizer,
}

impl GgufModel {
    /// Reads a GGUF file streamed from `buf` (see [`GgufReader`]): the hyper-parameters, the
    /// tokenizer and every tensor, checked against each other. Errors name what is wrong.
    pub fn read(buf: impl Buf) -> Result<Self> {
        let mut reader = GgufReader::new(buf)?;
        let params = ModelParams::from_header(reader.header())?;
        let tokenizer = TextTokenizer::from_gguf(reader.header())?;
        if tokenizer.vocab_size() > params.vocab_size {
            return Err(Error::Model(format!(
                "the GGUF's tokenizer has {} tokens but its embedding table only {} rows",
                tokenizer.vocab_size(),
                params.vocab_size
            )));
        }
        let mut tensors = Tensors::new(&params);
        while let Some((info, bytes)) = reader.next_tensor()? {
            tensors.take(info, bytes)?;
        }
        let weights = tensors.finish(params)?;
        Ok(GgufModel { weights, tokenizer })
    }
}

enum Tensor {
    Matrix(Matrix),
    Vector(Vec<f32>),
}

/// The tensors read so far, by name, fused ones already split.
struct Tensors {
    /// Q's and K's row orders when the file permutes them (`llama`).
    q_order: Option<Vec<usize>>,
    k_order: Option<Vec<usize>>,
    /// Q's and KV's widths, to split `attn_qkv`.
    q_width: usize,
    kv_width: usize,
    fused_gate_up: bool,
    by_name: HashMap<String, Tensor>,
}

impl Tensors {
    fn new(p: &ModelParams) -> Self {
        let adjacent = p.arch.rope_pairs == RopePairs::Adjacent;
        let order = |heads: usize| adjacent.then(|| llama_permutation(heads * p.head_dim, heads));
        Tensors {
            q_order: order(p.num_heads),
            k_order: order(p.num_kv_heads),
            q_width: p.q_width(),
            kv_width: p.kv_width(),
            fused_gate_up: p.arch.fused_gate_up,
            by_name: HashMap::new(),
        }
    }

    fn take(&mut self, info: TensorInfo, bytes: Vec<u8>) -> Result<()> {
        let name = info.name.clone();
        let (layer, part) = match name.strip_prefix("blk.").and_then(|rest| rest.split_once('.')) {
            Some((layer, part)) => (format!("blk.{layer}."), part),
            None => (String::new(), name.as_str()),
        };
        let (q, kv) = (self.q_width, self.kv_width);
        let pieces: Vec<(&str, usize)> = match part {
            "attn_qkv.weight" | "attn_qkv.bias" => vec![("attn_q", q), ("attn_k", kv), ("attn_v", kv)],
            "ffn_up.weight" if self.fused_gate_up => {
                vec![("ffn_gate", info.rows() / 2), ("ffn_up", info.rows() / 2)]
            }
            _ => vec![],
        };
        if pieces.is_empty() {
            let tensor = self.convert(&info, &bytes, part)?;
            self.by_name.insert(name, tensor);
            return Ok(());
        }
        let suffix = part.rsplit('.').next().unwrap_or("weight");
        let row_bytes = match info.dims.len() {
            1 => Some(4),
            _ => info.ggml_type.row_bytes(info.cols()),
        };
        let row_bytes = row_bytes.ok_or_else(|| Error::Model(format!("tensor `{name}` cannot be split by rows")))?;
        let mut start = 0;
        for (piece, rows) in pieces {
            let end = (start + rows * row_bytes).min(bytes.len());
            let dims = match info.dims.len() {
                1 => vec![rows],
                _ => vec![info.cols(), rows],
            };
            let piece_info = TensorInfo { name: format!("{layer}{piece}.{suffix}"), dims, ..info.clone() };
            let tensor = self.convert(&piece_info, &bytes[start..end], &format!("{piece}.{suffix}"))?;
            self.by_name.insert(piece_info.name, tensor);
            start = end;
        }
        Ok(())
    }

    fn convert(&self, info: &TensorInfo, bytes: &[u8], part: &str) -> Result<Tensor> {
        let order = match part {
            "attn_q.weight" | "attn_q.bias" => self.q_order.as_deref(),
            "attn_k.weight" | "attn_k.bias" => self.k_order.as_deref(),
            _ => None,
        };
        Ok(match info.dims.len() {
            1 => {
                let values = vector(info, bytes)?;
                Tensor::Vector(match order {
                    Some(order) => order.iter().map(|&r| values[r]).collect(),
                    None => values,
                })
            }
            _ => Tensor::Matrix(matrix(info, bytes, order)?),
        })
    }

    fn finish(mut self, params: ModelParams) -> Result<ModelWeights> {
        let missing = |name: &str| Error::Model(format!("the GGUF has no tensor `{name}`"));
        let mut matrix = |name: String| match self.by_name.remove(&name) {
            Some(Tensor::Matrix(m)) => Ok(m),
            _ => Err(missing(&name)),
        };
        let embeddings = match matrix("token_embd.weight".into())? {
            Matrix::Quant(q) => EmbeddingStorage::Quant(q),
            Matrix::F32 { values, .. } => EmbeddingStorage::F32(values),
            Matrix::F16 { bits, .. } => EmbeddingStorage::F16(bits),
        };
        let output = matrix("output.weight".into()).ok();
        let mut layers = Vec::with_capacity(params.num_layers);
        for i in 0..params.num_layers {
            let mut m = |part: &str| match self.by_name.remove(&format!("blk.{i}.{part}.weight")) {
                Some(Tensor::Matrix(m)) => Ok(m),
                _ => Err(missing(&format!("blk.{i}.{part}.weight"))),
            };
            let (q, k, v, o) = (m("attn_q")?, m("attn_k")?, m("attn_v")?, m("attn_output")?);
            let (gate, up, down) = (m("ffn_gate")?, m("ffn_up")?, m("ffn_down")?);
            let mut optional = |part: &str| match self.by_name.remove(&format!("blk.{i}.{part}")) {
                Some(Tensor::Vector(v)) => Some(v),
                _ => None,
            };
            let (q_bias, k_bias, v_bias) = (optional("attn_q.bias"), optional("attn_k.bias"), optional("attn_v.bias"));
            let pair = |a: Option<Vec<f32>>, b: Option<Vec<f32>>| a.zip(b).map(|(a, b)| [a, b]);
            let qk_norms = pair(optional("attn_q_norm.weight"), optional("attn_k_norm.weight"));
            let post_norms = pair(optional("post_attention_norm.weight"), optional("post_ffw_norm.weight"));
            let mut norm = |part: &str| optional(&format!("{part}.weight")).ok_or_else(|| missing(&format!("blk.{i}.{part}.weight")));
            let (attn_norm, ffn_norm) = (norm("attn_norm")?, norm("ffn_norm")?);
            layers.push(LayerWeights {
                attn_norm,
                q,
                k,
                v,
                q_bias,
                k_bias,
                v_bias,
                qk_norms,
                o,
                post_norms,
                ffn_norm,
                gate,
                up,
                down,
            });
        }
        let embeddings = EmbeddingTable::new(params.vocab_size, params.hidden_size, embeddings)?;
        let output_norm = match self.by_name.remove("output_norm.weight") {
            Some(Tensor::Vector(v)) => v,
            _ => return Err(missing("output_norm.weight")),
        };
        let rope_factors = ["rope_freqs.weight", "rope_factors_short.weight", "rope_factors_long.weight"]
            .into_iter()
            .filter_map(|name| match self.by_name.remove(name) {
                Some(Tensor::Vector(v)) => Some((name.to_string(), v)),
                _ => None,
            })
            .collect();
        Ok(ModelWeights { params, embeddings, layers, output_norm, output, rope_factors })
    }
}

/// A 2-D tensor `[cols, rows]` in ggml order as a matrix of `rows` rows.
fn matrix(info: &TensorInfo, bytes: &[u8], row_order: Option<&[usize]>) -> Result<Matrix> {
    let (cols, rows) = match info.dims[..] {
        [cols, rows] => (cols, rows),
        _ => return Err(Error::Model(format!("tensor `{}` has dims {:?}, expected a matrix", info.name, info.dims))),
    };
    let in_context = |e: Error| Error::Model(format!("tensor `{}`: {e}", info.name));
    let reorder = |values: &[u8], width: usize| -> Vec<u8> {
        match row_order {
            None => values.to_vec(),
            Some(order) => order.iter().flat_map(|&r| &values[r * cols * width..(r + 1) * cols * width]).copied().collect(),
        }
    };
    let halves = |bytes: Vec<u8>| bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect::<Vec<_>>();
    Ok(match info.ggml_type.info().held {
        Held::Blocks { .. } => Matrix::Quant(Arc::new(
            QuantMatrix::from_gguf_blocks(info.ggml_type, rows, cols, bytes, row_order).map_err(in_context)?,
        )),
        Held::F32 => Matrix::F32 {
            rows,
            cols,
            values: reorder(bytes, 4).chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        },
        Held::F16 => Matrix::F16 { rows, cols, bits: halves(reorder(bytes, 2)) },
        Held::Bf16AsF32 => Matrix::F32 { rows, cols, values: halves(reorder(bytes, 2)).into_iter().map(bf16_bits_to_f32).collect() },
    })
}

/// A 1-D F32 tensor (norms, biases, RoPE factors).
fn vector(info: &TensorInfo, bytes: &[u8]) -> Result<Vec<f32>> {
    if info.dims.len() != 1 || info.ggml_type != GgmlType::F32 {
        return Err(Error::Model(format!(
            "tensor `{}` must be a vector of F32, got dims {:?} of {}",
            info.name,
            info.dims,
            info.ggml_type.name()
        )));
    }
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::quant::testing::{random_blocks, Lcg};

    /// Row `r` of a loaded matrix, as f32.
    fn row(m: &Matrix, r: usize) -> Vec<f32> {
        let cols = m.cols();
        match m {
            Matrix::Quant(q) => {
                let mut out = vec![0.0; cols];
                q.dequantize_row(r, &mut out).unwrap();
                out
            }
            Matrix::F32 { values, .. } => values[r * cols..][..cols].to_vec(),
            Matrix::F16 { bits, .. } => bits[r * cols..][..cols].iter().map(|&b| crate::model::f16_bits_to_f32(b)).collect(),
        }
    }

    #[test]
    fn every_type_is_held_as_the_registry_says_with_rows_reordered() {
        let (rows, cols, order) = (3, 256, [2, 0, 1]);
        for ty in GgmlType::supported() {
            let mut rng = Lcg(ty.id() as u64);
            let bytes = match ty.scheme() {
                Some(_) => random_blocks(ty, rows, cols, false, &mut rng),
                None => (0..ty.row_bytes(cols).unwrap() * rows).map(|_| rng.next() as u8).collect(),
            };
            let info = |name: &str| TensorInfo { name: name.into(), dims: vec![cols, rows], ggml_type: ty, offset: 0 };
            let plain = matrix(&info("blk.0.ffn_up.weight"), &bytes, None).unwrap();
            let permuted = matrix(&info("blk.0.attn_q.weight"), &bytes, Some(&order)).unwrap();
            let held = match ty {
                GgmlType::BF16 => "F32",
                _ => ty.name(),
            };
            assert_eq!((plain.type_name(), plain.rows(), plain.cols()), (held, rows, cols));
            for (i, &r) in order.iter().enumerate() {
                let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
                assert_eq!(bits(row(&permuted, i)), bits(row(&plain, r)), "{ty} row {i}");
            }
            if ty == GgmlType::BF16 {
                let first = u16::from_le_bytes([bytes[0], bytes[1]]);
                assert_eq!(row(&plain, 0)[0].to_bits(), (first as u32) << 16);
            }
        }
        let bad = TensorInfo { name: "blk.0.attn_q.weight".into(), dims: vec![256, 1], ggml_type: GgmlType::Q4_K, offset: 0 };
        let e = matrix(&bad, &[0; 143], None).unwrap_err().to_string();
        assert!(e.contains("tensor `blk.0.attn_q.weight`") && e.contains("a Q4_K matrix of 1 x 256 takes 144 bytes of blocks, got 143"), "{e}");
    }
}
