//! Text ↔ token ids with the HF `tokenizers` crate, and streaming decode that never shows a
//! broken character.

use crate::chat::{self, ChatMessage, ChatTemplate, SpecialTokens};
use crate::error::{Error, Result};
use crate::model::gguf::GgufHeader;
use tokenizers::Tokenizer;

/// A `tokenizer.json` loaded from bytes (the browser fetches them).
pub struct TextTokenizer {
    inner: Tokenizer,
    /// The end-of-sequence tokens the model's metadata names (a GGUF's, or a Hugging Face
    /// config's `eos_token_id`).
    eos: Vec<u32>,
    /// The model's chat template (Jinja source), compiled when applied: a model whose template
    /// does not compile still loads, and says why when a chat prompt is asked for.
    chat_template: Option<String>,
    special: SpecialTokens,
}

fn tokenizer_error(what: &str) -> impl Fn(tokenizers::Error) -> Error + '_ {
    move |e| Error::Tokenizer(format!("{what}: {e}"))
}

impl TextTokenizer {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        // `tokenizers` 0.23 panics (`expect("Helper")` in its decoder's Deserialize) where the
        // JSON breaks inside or after the `decoder` object (bad syntax, invalid UTF-8, a lone
        // surrogate escape). Parsed to a `Value` first, only well-formed JSON reaches it (found
        // by tests/fuzz.rs).
        let invalid = |e: serde_json::Error| Error::Tokenizer(format!("invalid tokenizer.json: {e}"));
        let json: serde_json::Value = serde_json::from_slice(bytes).map_err(invalid)?;
        let inner: Tokenizer = serde_json::from_value(json).map_err(invalid)?;
        Ok(Self { inner, eos: Vec::new(), chat_template: None, special: SpecialTokens::default() })
    }

    /// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`), for
    /// `tokenizer.ggml.model = "gpt2"` (byte-level BPE). Built as the HF `tokenizer.json` of
    /// [`gguf_tokenizer_json`], so it gives the same ids as the `tokenizer.json` that
    /// `models/build_model.py` writes from the same GGUF. Errors about the file's metadata are
    /// [`Error::Model`].
    pub fn from_gguf(header: &GgufHeader) -> Result<Self> {
        let json = gguf_tokenizer_json(header)?;
        let inner: Tokenizer = serde_json::from_value(json)
            .map_err(|e| Error::Tokenizer(format!("the GGUF's tokenizer is not valid: {e}")))?;
        let meta = header.tokenizer_meta()?;
        let name = |id: Option<u32>| id.and_then(|id| inner.id_to_token(id));
        let special = SpecialTokens { bos_token: name(meta.bos_token_id), eos_token: name(meta.eos_token_id) };
        Ok(Self { eos: meta.eos_token_id.into_iter().collect(), chat_template: meta.chat_template, special, inner })
    }

    /// The end-of-sequence ids of a model whose metadata is beside its tokenizer.json (a
    /// Hugging Face config's `eos_token_id`); the first also names `eos_token` in chat templates.
    pub fn set_eos_ids(&mut self, ids: &[u32]) {
        let vocab = self.vocab_size();
        self.eos = ids.iter().copied().filter(|&id| (id as usize) < vocab).collect();
        self.special.eos_token = self.eos.first().and_then(|&id| self.inner.id_to_token(id));
    }

    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Replaces the chat template (`None` removes it); refuses one that does not compile.
    pub fn set_chat_template(&mut self, source: Option<&str>) -> Result<()> {
        self.chat_template = chat::checked_source(source)?;
        Ok(())
    }

    /// The prompt for a conversation, through the model's chat template (see [`ChatTemplate`]).
    pub fn apply_chat_template(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        self.render_chat(self.chat_template.as_deref(), messages, add_generation_prompt)
    }

    /// The prompt for a conversation through `template` (Jinja source), with this tokenizer's
    /// special tokens; `None` is the error of a model without a template.
    pub fn render_chat(&self, template: Option<&str>, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let source = template.ok_or_else(|| {
            Error::ChatTemplate("this model has no chat template: set one (`setChatTemplate`), or write the prompt yourself".into())
        })?;
        ChatTemplate::new(source)?.render(messages, add_generation_prompt, &self.special)
    }

    /// Ids of `text`. Special tokens written in the text (`<|im_start|>`) become their ids;
    /// nothing is added around the text (SmolLM2 uses no BOS).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.inner.encode(text, false).map_err(tokenizer_error("cannot encode"))?;
        Ok(encoding.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(tokenizer_error("cannot decode"))
    }

    /// Vocabulary size including added (special) tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The tokens that end a generation by default: the model's own end-of-sequence tokens (from
    /// a GGUF's metadata or a config's `eos_token_id`) and ChatML's / GPT-2's end markers where
    /// the vocabulary has them.
    pub fn end_of_text_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = ["<|im_end|>", "<|endoftext|>"].iter().filter_map(|t| self.token_to_id(t)).collect();
        for &id in &self.eos {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token's own string (byte-level symbols for a BPE vocabulary).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// A hash of the id → token mapping (FNV-1a, 64 bits): equal for tokenizers that give the
    /// same ids, so an n-gram store can tell whether it was built with this one.
    pub fn fingerprint(&self) -> u64 {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for id in 0..self.vocab_size() as u32 {
            let token = self.id_to_token(id).unwrap_or_default();
            for byte in (token.len() as u32).to_le_bytes().into_iter().chain(token.bytes()) {
                hash = (hash ^ byte as u64).wrapping_mul(PRIME);
            }
        }
        hash
    }
}

/// Incremental decoding. A byte-level BPE token can end inside a UTF-8 character; the stream
/// holds such bytes back (no U+FFFD ever shows) until the character completes. Like HF's
/// `DecodeStream` it re-decodes only a short window: the tokens since the last emitted piece.
#[derive(Debug, Default, Clone)]
pub struct TextStream {
    /// Tokens of the last emitted piece (context for the decoder) and those not yet emitted.
    ids: Vec<u32>,
    /// Bytes of `decode(ids)` already emitted.
    prefix_len: usize,
}

impl TextStream {
    /// Adds a token; returns the new text, which is empty while a character is incomplete.
    pub fn push(&mut self, tokenizer: &TextTokenizer, id: u32) -> Result<String> {
        self.ids.push(id);
        let text = tokenizer.decode(&self.ids)?;
        if text.ends_with(char::REPLACEMENT_CHARACTER) {
            return Ok(String::new());
        }
        let piece = text.get(self.prefix_len..).unwrap_or_default().to_string();
        // Keep the last token as context: decoders may treat a sequence's first token apart.
        let last = self.ids.len() - 1;
        self.ids.drain(..last);
        self.prefix_len = tokenizer.decode(&self.ids)?.len();
        Ok(piece)
    }
}

/// The pre-tokenizers of llama.cpp's `tokenizer.ggml.pre` that are HF's Digits(individual) +
/// ByteLevel (llama.cpp gives them one regex set: `\p{N}`, then GPT-2's).
const DIGITS_BYTE_LEVEL_PRE: [&str; 3] = ["smollm", "starcoder", "refact"];

/// The HF `tokenizer.json` (as a JSON value) of a GGUF's byte-level BPE tokenizer, laid out as
/// `models/bpe.py::hf_tokenizer_json` writes it: vocabulary from `tokenizer.ggml.tokens`,
/// merges from `tokenizer.ggml.merges` ("a b"), control tokens (`tokenizer.ggml.token_type`
/// 3) as special added tokens and user-defined ones (4) as non-special added tokens, the
/// pre-tokenizer from `tokenizer.ggml.pre`: "smollm", "starcoder", "refact" (digits split one
/// by one, then byte-level) or "gpt-2" (byte-level only); others are refused.
pub fn gguf_tokenizer_json(header: &GgufHeader) -> Result<serde_json::Value> {
    use serde_json::{json, Map, Value};
    let model_err = |m: String| Error::Model(m);
    let model = header.get_str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(model_err(format!(
            "tokenizer model `{model}` is not supported (only `gpt2`, byte-level BPE)"
        )));
    }
    let pre = header.opt_str("tokenizer.ggml.pre")?.unwrap_or("(missing)");
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                            "use_regex": true});
    let pre_tokenizer = if DIGITS_BYTE_LEVEL_PRE.contains(&pre) {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level]})
    } else if pre == "gpt-2" {
        byte_level
    } else {
        return Err(model_err(format!(
            "pre-tokenizer `{pre}` (tokenizer.ggml.pre) is not supported (supported: smollm, \
             starcoder, refact, gpt-2)"
        )));
    };

    let tokens = header.get_str_array("tokenizer.ggml.tokens")?;
    let mut vocab = Map::new();
    let mut ids = std::collections::HashMap::with_capacity(tokens.len());
    for (id, &t) in tokens.iter().enumerate() {
        if let Some(first) = ids.insert(t, id) {
            return Err(model_err(format!(
                "the tokenizer has token {t:?} twice (ids {first} and {id})"
            )));
        }
        vocab.insert(t.to_string(), Value::from(id));
    }
    let types = header
        .opt_i32_array("tokenizer.ggml.token_type")?
        .unwrap_or_default();
    if !types.is_empty() && types.len() != tokens.len() {
        return Err(model_err(format!(
            "`tokenizer.ggml.token_type` has {} entries for {} tokens",
            types.len(),
            tokens.len()
        )));
    }
    let added: Vec<Value> = types
        .iter()
        .enumerate()
        .filter(|&(_, &t)| t == 3 || t == 4)
        .map(|(id, &t)| {
            json!({"id": id, "content": tokens[id], "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": t == 3})
        })
        .collect();
    let merges = header.get_str_array("tokenizer.ggml.merges")?;
    let mut pairs = Vec::with_capacity(merges.len());
    for (i, m) in merges.iter().enumerate() {
        let (a, b) = m
            .split_once(' ')
            .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains(' '))
            .ok_or_else(|| {
                model_err(format!(
                    "merge {i} ({m:?}) is not two tokens split by a space"
                ))
            })?;
        let joined = format!("{a}{b}");
        for part in [a, b, joined.as_str()] {
            if !ids.contains_key(part) {
                return Err(model_err(format!(
                    "merge {i} ({m:?}) uses {part:?}, which is not in the vocabulary"
                )));
            }
        }
        pairs.push(json!([a, b]));
    }
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false,
                           "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                    "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab,
            "merges": pairs,
        },
    }))
}
