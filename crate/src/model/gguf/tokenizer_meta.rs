//! The tokenizer facts besides the vocabulary: [`GgufTokenizerMeta`], from [`GgufHeader::tokenizer_meta`].

use super::value::MetaValue;
use super::{model_err, GgufHeader};
use crate::error::Result;

/// The tokenizer facts a runtime needs besides the vocabulary (`tokenizer.ggml.*` keys and
/// `tokenizer.chat_template`). Ids are checked to be inside the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTokenizerMeta {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE), "llama" (SentencePiece), ...
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer ("smollm", "gpt-2", "llama-bpe", ...).
    pub pre: Option<String>,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub padding_token_id: Option<u32>,
    pub unknown_token_id: Option<u32>,
    /// `None` when the key is absent (llama.cpp then picks a default per tokenizer type).
    pub add_bos_token: Option<bool>,
    pub add_eos_token: Option<bool>,
    pub chat_template: Option<String>,
}

impl GgufHeader {
    /// Special ids, BOS/EOS policy and chat template of the file's tokenizer.
    pub fn tokenizer_meta(&self) -> Result<GgufTokenizerMeta> {
        let n_tokens = self
            .get("tokenizer.ggml.tokens")
            .and_then(MetaValue::as_array)
            .map(|a| a.len());
        let id = |key: &str| -> Result<Option<u32>> {
            let id = self.opt_u32(key)?;
            match (id, n_tokens) {
                (Some(id), Some(n)) if id as usize >= n => Err(model_err(format!(
                    "metadata key `{key}` is {id}, outside the vocabulary of {n} tokens"
                ))),
                _ => Ok(id),
            }
        };
        Ok(GgufTokenizerMeta {
            model: self.get_str("tokenizer.ggml.model")?.to_string(),
            pre: self.opt_str("tokenizer.ggml.pre")?.map(str::to_string),
            bos_token_id: id("tokenizer.ggml.bos_token_id")?,
            eos_token_id: id("tokenizer.ggml.eos_token_id")?,
            padding_token_id: id("tokenizer.ggml.padding_token_id")?,
            unknown_token_id: id("tokenizer.ggml.unknown_token_id")?,
            add_bos_token: self.opt_bool("tokenizer.ggml.add_bos_token")?,
            add_eos_token: self.opt_bool("tokenizer.ggml.add_eos_token")?,
            chat_template: self.opt_str("tokenizer.chat_template")?.map(str::to_string),
        })
    }
}
