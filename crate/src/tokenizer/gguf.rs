//! The tokenizer stored in a GGUF's metadata, as llama.cpp runs it: its settings with
//! llama.cpp's per-type defaults, special tokens split out of the text first, then SentencePiece
//! or byte-level BPE on the rest, and BOS/EOS added where the model asks for them.

use super::bpe::{self, Bpe};
use super::decode::{self, Pieces};
use super::special::{partition, Fragment};
use super::spm;
use super::vocab::Vocab;
use crate::error::{Error, Result};
use crate::model::gguf::GgufHeader;

/// `tokenizer.ggml.model`.
pub(super) enum Kind {
    /// "llama": SentencePiece with scores and byte fallback.
    Spm,
    /// "gpt2": byte-level BPE with merges.
    Bpe,
}

pub(super) fn kind(header: &GgufHeader) -> Result<Kind> {
    match header.get_str("tokenizer.ggml.model")? {
        "llama" => Ok(Kind::Spm),
        "gpt2" => Ok(Kind::Bpe),
        model => Err(Error::Model(format!(
            "tokenizer model `{model}` (tokenizer.ggml.model) is not supported; supported: llama \
             (SentencePiece), gpt2 (byte-level BPE)"
        ))),
    }
}

enum Model {
    Spm { scores: Vec<f32> },
    Bpe(Box<Bpe>),
}

pub(super) struct GgufTokenizer {
    vocab: Vocab,
    model: Model,
    /// [`Vocab::specials`], computed once.
    specials: Vec<u32>,
    /// SentencePiece's " " before the text and after each special token; decoding drops the
    /// first token's leading space where it is set, whatever the model.
    add_space_prefix: bool,
    clean_spaces: bool,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
}

impl GgufTokenizer {
    pub fn from_header(header: &GgufHeader) -> Result<Self> {
        let kind = kind(header)?;
        let vocab = Vocab::from_header(header)?;
        let meta = header.tokenizer_meta()?;
        // llama.cpp's defaults: SentencePiece files name BOS 1, EOS 2 and add BOS; BPE ones
        // name token 11 for both (GPT-2's era) and leave BOS to the pre-tokenizer.
        let (model, default_ids, add_space_prefix, clean_spaces, add_bos) = match kind {
            Kind::Spm => (Model::Spm { scores: scores(header, vocab.len())? }, (1, 2), true, false, true),
            Kind::Bpe => {
                let pre = bpe::pre_tokenizer(header)?;
                (Model::Bpe(Box::new(Bpe::new(header, &vocab, pre)?)), (11, 11), false, pre.clean_spaces, pre.add_bos)
            }
        };
        let in_vocab = |id: u32| ((id as usize) < vocab.len()).then_some(id);
        let bos = meta.bos_token_id.or_else(|| in_vocab(default_ids.0));
        let eos = meta.eos_token_id.or_else(|| in_vocab(default_ids.1));
        let add_bos = meta.add_bos_token.unwrap_or(add_bos);
        let add_eos = meta.add_eos_token.unwrap_or(false);
        // `tokenizer.ggml.remove_extra_whitespaces` is read by llama.cpp but applied only by
        // its T5 (UGM) tokenizer, so it is not read here.
        let add_space_prefix = header.opt_bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(add_space_prefix);
        for (adds, id, what) in [(add_bos, bos, "BOS"), (add_eos, eos, "EOS")] {
            if adds && id.is_none() {
                return Err(Error::Model(format!("the tokenizer adds a {what} token but its vocabulary has none")));
            }
        }
        let specials = vocab.specials();
        Ok(Self { vocab, model, specials, add_space_prefix, clean_spaces, bos, eos, add_bos, add_eos })
    }

    /// Ids of `text`; special tokens written in it become their ids. With `add_special`, BOS and
    /// EOS as the model adds them (llama.cpp's `tokenize(text, add_special, parse_special=true)`).
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        let mut after_special = true;
        for fragment in partition(text, &self.specials, &self.vocab) {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    after_special = true;
                }
                Fragment::Text(text) => {
                    match &self.model {
                        Model::Spm { scores } => {
                            let prefix = if self.add_space_prefix && after_special { " " } else { "" };
                            let escaped = format!("{prefix}{text}").replace(' ', "▁");
                            spm::encode(&escaped, &self.vocab, scores, &mut out)?;
                        }
                        Model::Bpe(bpe) => bpe.encode(text, &mut out)?,
                    }
                    after_special = false;
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        Ok(out)
    }

    /// The text of `ids`, special tokens written out (see [`decode::detokenize`]); bytes that
    /// are not UTF-8 (a character cut between tokens) become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let pieces = match self.model {
            Model::Spm { .. } => Pieces::Spm,
            Model::Bpe(_) => Pieces::ByteLevel,
        };
        let bytes = decode::detokenize(&self.vocab, pieces, ids, self.add_space_prefix, self.clean_spaces);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }
}

/// `tokenizer.ggml.scores` (f32 or integers), 0 for every token without it, as in llama.cpp.
fn scores(header: &GgufHeader, n_tokens: usize) -> Result<Vec<f32>> {
    const KEY: &str = "tokenizer.ggml.scores";
    let Some(value) = header.get(KEY) else { return Ok(vec![0.0; n_tokens]) };
    let scores: Option<Vec<f32>> = value
        .as_array()
        .and_then(|items| items.iter().map(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64))).collect())
        .map(|scores: Vec<f64>| scores.into_iter().map(|s| s as f32).collect());
    match scores {
        Some(scores) if scores.len() >= n_tokens => Ok(scores),
        Some(scores) => Err(Error::Model(format!("`{KEY}` has {} entries for {n_tokens} tokens", scores.len()))),
        None => Err(Error::Model(format!("metadata key `{KEY}` has type {}, expected an array of numbers", value.type_name()))),
    }
}
