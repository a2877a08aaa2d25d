//! The weights of a Llama-family model as one loader reads them from a GGUF file, in the file's
//! own precision, for every backend to share.
//!
//! Each tensor is held as the registry (`model::formats`) says for its stored type:
//! block-quantised ones (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q3_K, Q4_K, Q5_K, Q6_K) as blocks
//! ([`QuantMatrix`]), F16 and F32 ones as they are, BF16 ones widened to F32. Each tensor's file bytes are dropped as soon as they are converted, so the
//! peak while loading is the weights plus one tensor. llama.cpp stores the Q and K rows permuted
//! for its adjacent-pair RoPE; they are put back in HF's half-split order here, a pure row
//! reordering of whole blocks, so every backend can use the usual `rotate_half` RoPE.

use std::sync::Arc;

use prost::bytes::Buf;

use super::formats::{GgmlType, Held};
use super::gguf::{llama_permutation, GgufReader, LlamaParams, TensorInfo};
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

/// One transformer block.
#[derive(Debug, Clone)]
pub struct LayerWeights {
    pub attn_norm: Vec<f32>,
    /// Rows in HF order (see the module docs).
    pub q: Matrix,
    pub k: Matrix,
    pub v: Matrix,
    pub o: Matrix,
    pub ffn_norm: Vec<f32>,
    pub gate: Matrix,
    pub up: Matrix,
    pub down: Matrix,
}

/// A whole Llama-family model.
#[derive(Debug, Clone)]
pub struct LlamaWeights {
    pub params: LlamaParams,
    pub embeddings: EmbeddingTable,
    pub layers: Vec<LayerWeights>,
    pub output_norm: Vec<f32>,
    /// The output projection `[vocab × hidden]`; `None` when it is tied to the embeddings.
    pub output: Option<Matrix>,
}

impl LlamaWeights {
    /// Bytes held by all the weights.
    pub fn storage_bytes(&self) -> usize {
        let norms = |v: &Vec<f32>| v.len() * 4;
        self.embeddings.storage_bytes()
            + self.output.as_ref().map_or(0, Matrix::storage_bytes)
            + norms(&self.output_norm)
            + self
                .layers
                .iter()
                .map(|l| {
                    [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down]
                        .iter()
                        .map(|m| m.storage_bytes())
                        .sum::<usize>()
                        + norms(&l.attn_norm)
                        + norms(&l.ffn_norm)
                })
                .sum::<usize>()
    }

    /// The distinct storage types of the matrices and the embedding table, e.g. `["Q4_1", "Q8_0"]`.
    pub fn matrix_types(&self) -> Vec<&'static str> {
        let embedding = match self.embeddings.storage() {
            EmbeddingStorage::Quant(q) => q.format().name(),
            EmbeddingStorage::F32(_) => "F32",
            EmbeddingStorage::F16(_) => "F16",
        };
        let layers = self.layers.iter().flat_map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down]);
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
}

/// A complete model read from one `.gguf`: the weights and the tokenizer from its metadata.
pub struct GgufModel {
    pub weights: LlamaWeights,
    pub tokenizer: TextTokenizer,
}

impl GgufModel {
    /// Reads a GGUF file streamed from `buf` (see [`GgufReader`]): the hyper-parameters, the
    /// tokenizer and every tensor, checked against each other. Errors name what is wrong.
    pub fn read(buf: impl Buf) -> Result<Self> {
        let mut reader = GgufReader::new(buf)?;
        let params = LlamaParams::from_header(reader.header())?;
        let tokenizer = TextTokenizer::from_gguf(reader.header())?;
        if tokenizer.vocab_size() > params.vocab_size {
            return Err(Error::Model(format!(
                "the GGUF's tokenizer has {} tokens but its embedding table only {} rows",
                tokenizer.vocab_size(),
                params.vocab_size
            )));
        }
        let mut slots = Slots::new(&params);
        while let Some((info, bytes)) = reader.next_tensor()? {
            slots.take(info, bytes)?;
        }
        let weights = slots.finish(params)?;
        Ok(GgufModel { weights, tokenizer })
    }
}

/// The tensors read so far, by role.
struct Slots {
    layer_count: usize,
    q_order: Vec<usize>,
    k_order: Vec<usize>,
    embeddings: Option<Matrix>,
    output: Option<Matrix>,
    output_norm: Option<Vec<f32>>,
    matrices: std::collections::HashMap<String, Matrix>,
    norms: std::collections::HashMap<String, Vec<f32>>,
}

impl Slots {
    fn new(params: &LlamaParams) -> Self {
        Slots {
            layer_count: params.num_layers,
            q_order: llama_permutation(params.num_heads * params.head_dim, params.num_heads),
            k_order: llama_permutation(params.num_kv_heads * params.head_dim, params.num_kv_heads),
            embeddings: None,
            output: None,
            output_norm: None,
            matrices: Default::default(),
            norms: Default::default(),
        }
    }

    fn take(&mut self, info: TensorInfo, bytes: Vec<u8>) -> Result<()> {
        let name = info.name.as_str();
        let row_order = if name.ends_with(".attn_q.weight") {
            Some(self.q_order.as_slice())
        } else if name.ends_with(".attn_k.weight") {
            Some(self.k_order.as_slice())
        } else {
            None
        };
        match name {
            "token_embd.weight" => self.embeddings = Some(matrix(&info, &bytes, None)?),
            "output.weight" => self.output = Some(matrix(&info, &bytes, None)?),
            "output_norm.weight" => self.output_norm = Some(vector(&info, &bytes)?),
            _ if name.starts_with("blk.") && name.ends_with("_norm.weight") => {
                self.norms.insert(info.name.clone(), vector(&info, &bytes)?);
            }
            // Tensors this runtime does not use (e.g. rope_freqs) are skipped.
            _ if name.starts_with("blk.") => {
                self.matrices.insert(info.name.clone(), matrix(&info, &bytes, row_order)?);
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(mut self, params: LlamaParams) -> Result<LlamaWeights> {
        let missing = |name: &str| Error::Model(format!("the GGUF has no tensor `{name}`"));
        let mut layers = Vec::with_capacity(self.layer_count);
        for i in 0..self.layer_count {
            let mut m = |part: &str| {
                let name = format!("blk.{i}.{part}.weight");
                self.matrices.remove(&name).ok_or_else(|| missing(&name))
            };
            let (q, k, v, o) = (m("attn_q")?, m("attn_k")?, m("attn_v")?, m("attn_output")?);
            let (gate, up, down) = (m("ffn_gate")?, m("ffn_up")?, m("ffn_down")?);
            let mut norm = |part: &str| {
                let name = format!("blk.{i}.{part}.weight");
                self.norms.remove(&name).ok_or_else(|| missing(&name))
            };
            let (attn_norm, ffn_norm) = (norm("attn_norm")?, norm("ffn_norm")?);
            layers.push(LayerWeights { attn_norm, q, k, v, o, ffn_norm, gate, up, down });
        }
        let embeddings = match self.embeddings.take().ok_or_else(|| missing("token_embd.weight"))? {
            Matrix::Quant(q) => EmbeddingStorage::Quant(q),
            Matrix::F32 { values, .. } => EmbeddingStorage::F32(values),
            Matrix::F16 { bits, .. } => EmbeddingStorage::F16(bits),
        };
        let embeddings = EmbeddingTable::new(params.vocab_size, params.hidden_size, embeddings)?;
        let output_norm = self.output_norm.take().ok_or_else(|| missing("output_norm.weight"))?;
        Ok(LlamaWeights { params, embeddings, layers, output_norm, output: self.output })
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

/// A 1-D F32 tensor (the norms).
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
    use crate::model::quant::{random_blocks, Lcg};

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
