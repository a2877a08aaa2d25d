//! A GGUF (v2/v3) reader that streams: it parses the header from a [`Buf`](prost::bytes::Buf)
//! (in wasm the bytes come from JS one chunk at a time, see `JsChunks` in `wasm/bytes.rs`;
//! natively `&[u8]` is a `Buf`), then hands out each tensor's bytes in file order, so at most one
//! tensor is copied at a time.
//!
//! Layout (all little-endian): magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata
//! count; the metadata key/value pairs; one info record per tensor (name, dims in ggml order,
//! type, offset into the data section); padding to `general.alignment` (default 32); the data
//! section, each tensor at its offset (a multiple of the alignment).
//!
//! Everything here treats the file as untrusted: every length is checked against
//! [`Buf::remaining`](prost::bytes::Buf::remaining) before anything is allocated or read, nothing
//! panics, and every failure is an [`Error::Model`] that says what is wrong and where.
//!
//! By job: the metadata values ([`MetaValue`], `value.rs`), the header and its typed getters
//! ([`GgufHeader`], `header.rs`), parsing it (`parse.rs`), the streaming tensor reader
//! ([`GgufReader`], [`TensorInfo`], `reader.rs`), the tokenizer's facts
//! ([`GgufTokenizerMeta`], `tokenizer_meta.rs`), and split files ([`split`]).
//!
//! What the metadata means for a model is `arch::params`'; [`llama_permutation`](crate::model::arch::llama_permutation)
//! undoes the Q/K row permutation of `llama` files; [`GgufHeader::tokenizer_meta`] reads the
//! tokenizer's special ids and chat template (the tokenizer itself: `TextTokenizer::from_gguf`).

use crate::error::Error;

pub mod split;

mod header;
mod parse;
mod reader;
mod tokenizer_meta;
mod value;

pub use header::GgufHeader;
pub use reader::{GgufReader, TensorInfo};
pub use tokenizer_meta::GgufTokenizerMeta;
pub use value::MetaValue;

const MAGIC: [u8; 4] = *b"GGUF";
/// `general.alignment` when the key is absent.
pub const DEFAULT_ALIGNMENT: usize = 32;

fn model_err(msg: impl Into<String>) -> Error {
    Error::Model(msg.into())
}

pub use super::formats::{ggml_type_name, GgmlType};
