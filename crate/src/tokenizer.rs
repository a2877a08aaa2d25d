//! Text ↔ token ids with the HF `tokenizers` crate, and streaming decode that never shows a
//! broken character.

use crate::error::{Error, Result};
use tokenizers::Tokenizer;

/// A `tokenizer.json` loaded from bytes (the browser fetches them).
pub struct TextTokenizer {
    inner: Tokenizer,
}

fn tokenizer_error(what: &str) -> impl Fn(tokenizers::Error) -> Error + '_ {
    move |e| Error::Tokenizer(format!("{what}: {e}"))
}

impl TextTokenizer {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let inner = Tokenizer::from_bytes(bytes).map_err(tokenizer_error("invalid tokenizer.json"))?;
        Ok(Self { inner })
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
