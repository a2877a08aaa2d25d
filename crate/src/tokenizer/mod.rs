//! Text ↔ token ids: a model's own tokenizer, from a GGUF's metadata as llama.cpp runs it
//! (SentencePiece or byte-level BPE, `gguf.rs`) or from an HF `tokenizer.json` (the HF
//! `tokenizers` crate), and streaming decode that never shows a broken character.

mod bpe;
mod decode;
mod gguf;
mod special;
mod spm;
mod vocab;

pub use bpe::gguf_tokenizer_json;

use crate::chat::{self, ChatMessage, ChatTemplate, SpecialTokens};
use crate::error::{Error, Result};
use crate::model::gguf::GgufHeader;
use gguf::GgufTokenizer;
use tokenizers::Tokenizer;

/// A model's tokenizer, with its end-of-sequence tokens and chat template.
pub struct TextTokenizer {
    inner: Inner,
    /// The end-of-sequence tokens the model's metadata names (a GGUF's, or a Hugging Face
    /// config's `eos_token_id`).
    eos: Vec<u32>,
    /// The model's chat template (Jinja source), compiled when applied: a model whose template
    /// does not compile still loads, and says why when a chat prompt is asked for.
    chat_template: Option<String>,
    special: SpecialTokens,
}

enum Inner {
    /// A `tokenizer.json` loaded from bytes (the browser fetches them).
    Json(Box<Tokenizer>),
    Gguf(Box<GgufTokenizer>),
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
        Ok(Self { inner: Inner::Json(Box::new(inner)), eos: Vec::new(), chat_template: None, special: SpecialTokens::default() })
    }

    /// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`), giving llama.cpp's
    /// ids: `tokenizer.ggml.model` "llama" (SentencePiece) or "gpt2" (byte-level BPE, with the
    /// pre-tokenizers of `tokenizer.ggml.pre` that llama.cpp runs as Llama 3's, Qwen2's,
    /// SmolLM's, GPT-2's or its default regexes). Errors about the file's metadata are
    /// [`Error::Model`].
    pub fn from_gguf(header: &GgufHeader) -> Result<Self> {
        let inner = GgufTokenizer::from_header(header)?;
        let name = |id: Option<u32>| id.map(|id| inner.vocab().tokens[id as usize].clone());
        let special = SpecialTokens { bos_token: name(inner.bos), eos_token: name(inner.eos) };
        Ok(Self {
            eos: inner.eos.into_iter().collect(),
            chat_template: header.tokenizer_meta()?.chat_template,
            special,
            inner: Inner::Gguf(Box::new(inner)),
        })
    }

    /// The end-of-sequence ids of a model whose metadata is beside its tokenizer.json (a
    /// Hugging Face config's `eos_token_id`); the first also names `eos_token` in chat templates.
    pub fn set_eos_ids(&mut self, ids: &[u32]) {
        let vocab = self.vocab_size();
        self.eos = ids.iter().copied().filter(|&id| (id as usize) < vocab).collect();
        self.special.eos_token = self.eos.first().and_then(|&id| self.id_to_token(id));
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
    /// special tokens; `None` is the error of a model without a template. Like llama.cpp, a
    /// GGUF tokenizer that adds BOS (EOS) itself takes the one the template wrote off the start
    /// (end), so that [`encode_with_special`](Self::encode_with_special) does not double it.
    pub fn render_chat(&self, template: Option<&str>, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let source = template.ok_or_else(|| {
            Error::ChatTemplate("this model has no chat template: set one (`setChatTemplate`), or write the prompt yourself".into())
        })?;
        let mut prompt = ChatTemplate::new(source)?.render(messages, add_generation_prompt, &self.special)?;
        if let Inner::Gguf(gguf) = &self.inner {
            if let (true, Some(bos)) = (gguf.add_bos, &self.special.bos_token) {
                if let Some(rest) = prompt.strip_prefix(bos.as_str()) {
                    prompt = rest.to_string();
                }
            }
            if let (true, Some(eos)) = (gguf.add_eos, &self.special.eos_token) {
                if let Some(rest) = prompt.strip_suffix(eos.as_str()) {
                    prompt = rest.to_string();
                }
            }
        }
        Ok(prompt)
    }

    /// Ids of `text`. Special tokens written in the text (`<|im_start|>`) become their ids;
    /// nothing is added around the text.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match &self.inner {
            Inner::Json(hf) => Ok(hf.encode(text, false).map_err(tokenizer_error("cannot encode"))?.get_ids().to_vec()),
            Inner::Gguf(gguf) => gguf.encode(text, false),
        }
    }

    /// Ids of `text` as the model reads a prompt: [`encode`](Self::encode)'s, with the BOS and
    /// EOS tokens the model adds (a GGUF's `add_bos_token`/`add_eos_token`, with llama.cpp's
    /// defaults: on for SentencePiece's BOS and Llama 3's; a `tokenizer.json`'s post-processor).
    /// SmolLM2 adds none.
    pub fn encode_with_special(&self, text: &str) -> Result<Vec<u32>> {
        match &self.inner {
            Inner::Json(hf) => Ok(hf.encode(text, true).map_err(tokenizer_error("cannot encode"))?.get_ids().to_vec()),
            Inner::Gguf(gguf) => gguf.encode(text, true),
        }
    }

    /// The text of `ids`, special tokens written out. A GGUF tokenizer decodes as llama.cpp's
    /// `detokenize` does: SentencePiece's first leading space dropped, byte tokens as bytes,
    /// the clean-up of spaces before punctuation where the pre-tokenizer asks for it.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match &self.inner {
            Inner::Json(hf) => hf.decode(ids, false).map_err(tokenizer_error("cannot decode")),
            Inner::Gguf(gguf) => Ok(gguf.decode(ids)),
        }
    }

    /// Vocabulary size including added (special) tokens.
    pub fn vocab_size(&self) -> usize {
        match &self.inner {
            Inner::Json(hf) => hf.get_vocab_size(true),
            Inner::Gguf(gguf) => gguf.vocab().len(),
        }
    }

    /// The tokens that end a generation by default: the model's own end-of-sequence tokens (from
    /// a GGUF's metadata or a config's `eos_token_id`) and the end markers llama.cpp stops at
    /// (ChatML's, GPT-2's, Llama 3's, Gemma's, ...) where the vocabulary has them.
    pub fn end_of_text_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = vocab::END_OF_GENERATION.iter().filter_map(|t| self.token_to_id(t)).collect();
        for &id in &self.eos {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        match &self.inner {
            Inner::Json(hf) => hf.token_to_id(token),
            Inner::Gguf(gguf) => gguf.vocab().id(token),
        }
    }

    /// The token's own string (byte-level symbols for a BPE vocabulary, "▁" for SentencePiece's
    /// spaces).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        match &self.inner {
            Inner::Json(hf) => hf.id_to_token(id),
            Inner::Gguf(gguf) => gguf.vocab().tokens.get(id as usize).cloned(),
        }
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

/// DRY's sequence breakers are found in the token texts as llama.cpp finds them: each token
/// decoded alone, the rest of a breaker encoded without BOS or EOS.
impl crate::sampling::BreakerVocab for TextTokenizer {
    fn vocab_size(&self) -> usize {
        TextTokenizer::vocab_size(self)
    }

    fn token_text(&self, id: u32) -> Result<String> {
        self.decode(&[id])
    }

    fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.encode(text)
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
    /// A stream that continues a text ending in token `last` (a prompt's last): its first token
    /// is decoded after it, not as a text's first, which would lose SentencePiece's leading
    /// space (" time" after "Once upon a").
    pub fn after(tokenizer: &TextTokenizer, last: u32) -> Result<Self> {
        Ok(Self { prefix_len: tokenizer.decode(&[last])?.len(), ids: vec![last] })
    }

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
