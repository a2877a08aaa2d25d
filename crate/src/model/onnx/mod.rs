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
//!
//! The files, one job each: the [`OnnxDecoder`] and the order of the steps here; `rewrite.rs`
//! rewires optimum's layouts (merged decoders, f16 KV casts, wide integer matmuls);
//! `embedding.rs` takes the embedding table out of the graph; `external.rs` reads external
//! data; `check.rs` checks the signature and what tract's parser assumes; `held.rs` says how
//! tract will hold the weights; `proto.rs` holds the protobuf helpers they share.

mod check;
mod embedding;
mod external;
mod held;
mod proto;
mod rewrite;

use prost::bytes::Buf;
use prost::Message;
use tract_onnx::pb;

use super::{EmbeddingTable, ModelConfig};
use crate::error::{Error, Result};
use check::{check_causal_lm_with_cache, check_signature};
use embedding::{take_embeddings, take_gathered_embeddings};
use external::{inline_external_data, missing_data_file};
pub use external::{data_files, external_data_files, DataFile, ReadExternal};
pub use held::weight_types;
pub(crate) use proto::{attr_int, attr_ints, attr_string, value_info, Dim, ONNX_FLOAT, ONNX_FLOAT16};
use rewrite::{kv_cache_in_stored_type, take_use_cache_branch};
pub use rewrite::{split_wide_integer_matmuls, TRACT_CONST_FOLD_ELEMENTS};

/// Context length used when no config is given.
pub const DEFAULT_CONTEXT_LENGTH: usize = 2048;
/// Name of the embedding initializer the runtime reads.
pub const EMBED_TOKENS_INITIALIZER: &str = "model.embed_tokens.weight";
/// The inputs a backend feeds besides the KV cache.
pub const INPUT_NAMES: [&str; 3] = ["inputs_embeds", "attention_mask", "position_ids"];

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
