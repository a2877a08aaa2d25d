//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`) with the HF `tokenizers` crate: llama.cpp's
//! pre-tokenizer regexes for `tokenizer.ggml.pre` as HF `Split`s, GPT-2's byte-to-character
//! mapping, and merges by rank (lowest first, leftmost on a tie), which is llama.cpp's order.

use super::gguf::Kind;
use super::vocab::{Attr, Vocab};
use crate::error::{Error, Result};
use crate::model::gguf::GgufHeader;
use serde_json::{json, Value};

/// How llama.cpp splits text into words before merging (`llm_tokenizer_bpe`'s regex sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    /// GPT-2's regex, which HF's `ByteLevel` pre-tokenizer applies itself.
    Gpt2,
    /// Every digit apart (`\p{N}`), then GPT-2's regex.
    DigitsGpt2,
    Llama3,
    /// Llama 3's regex with single digits.
    Qwen2,
    /// llama.cpp's four regexes for a file that names no pre-tokenizer.
    Default,
}

const GPT2_REGEX: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
// llama.cpp's spelling of the case-insensitive contractions (`(?i:'s|...)` in the models' own
// tokenizer.json): the same ids, and no Unicode case folding of `'ſ`.
const LLAMA3_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const DEFAULT_REGEXES: [&str; 4] = [r"[\p{P}\$\+<=>\^~\|]+", GPT2_REGEX, r"\p{N}+", r"[0-9][0-9][0-9]"];

/// A `tokenizer.ggml.pre` family as llama.cpp sets it up (`llama_vocab::impl::load`).
pub(super) struct Pre {
    names: &'static [&'static str],
    split: Split,
    /// A word that is a token as a whole is that token, whatever the merges would make.
    ignore_merges: bool,
    /// The default of `tokenizer.ggml.add_bos_token`.
    pub add_bos: bool,
    /// `clean_up_tokenization_spaces` when decoding (" ," → ",").
    pub clean_spaces: bool,
}

/// The names llama.cpp maps to these regex sets, with their flags. Left out: names whose
/// llama.cpp setup has more to it (a separator token, masks stripped by name, another BOS).
const PRE_TOKENIZERS: &[Pre] = &[
    Pre { names: &["default"], split: Split::Default, ignore_merges: false, add_bos: false, clean_spaces: true },
    Pre {
        names: &["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
        split: Split::Llama3,
        ignore_merges: true,
        add_bos: true,
        clean_spaces: true,
    },
    Pre { names: &["dbrx", "smaug-bpe"], split: Split::Llama3, ignore_merges: false, add_bos: false, clean_spaces: true },
    Pre {
        names: &["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open"],
        split: Split::Qwen2,
        ignore_merges: false,
        add_bos: false,
        clean_spaces: false,
    },
    Pre { names: &["megrez", "stablelm2"], split: Split::Qwen2, ignore_merges: false, add_bos: false, clean_spaces: true },
    Pre { names: &["smollm", "command-r"], split: Split::DigitsGpt2, ignore_merges: false, add_bos: false, clean_spaces: false },
    Pre {
        names: &["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"],
        split: Split::DigitsGpt2,
        ignore_merges: false,
        add_bos: false,
        clean_spaces: true,
    },
    Pre {
        names: &["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "a.x-4.0", "mellum", "exaone4", "mpt", "olmo", "jais"],
        split: Split::Gpt2,
        ignore_merges: false,
        add_bos: false,
        clean_spaces: true,
    },
    Pre { names: &["trillion", "granite-docling"], split: Split::Gpt2, ignore_merges: false, add_bos: false, clean_spaces: false },
];

/// The file's pre-tokenizer; a file that names none gets llama.cpp's `default`.
pub(super) fn pre_tokenizer(header: &GgufHeader) -> Result<&'static Pre> {
    let name = header.opt_str("tokenizer.ggml.pre")?.unwrap_or("default");
    PRE_TOKENIZERS.iter().find(|p| p.names.contains(&name)).ok_or_else(|| {
        let known: Vec<&str> = PRE_TOKENIZERS.iter().flat_map(|p| p.names.iter().copied()).collect();
        Error::Model(format!(
            "pre-tokenizer `{name}` (tokenizer.ggml.pre) is not supported; supported: {}",
            known.join(", ")
        ))
    })
}

/// The word splitter and merges of a byte-level BPE vocabulary.
pub(super) struct Bpe {
    hf: tokenizers::Tokenizer,
}

impl Bpe {
    pub fn new(header: &GgufHeader, vocab: &Vocab, pre: &Pre) -> Result<Self> {
        // Special tokens are split out before text reaches it, as llama.cpp does.
        let json = hf_json(header, vocab, pre, false)?;
        let hf = serde_json::from_value(json)
            .map_err(|e| Error::Tokenizer(format!("the GGUF's tokenizer is not valid: {e}")))?;
        Ok(Self { hf })
    }

    /// Appends the ids of `text` (no special tokens in it) to `out`.
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let encoding = self.hf.encode(text, false).map_err(|e| Error::Tokenizer(format!("cannot encode: {e}")))?;
        out.extend_from_slice(encoding.get_ids());
        Ok(())
    }
}

/// The HF `tokenizer.json` (as a JSON value) of a GGUF's byte-level BPE tokenizer, laid out as
/// `models/bpe.py::hf_tokenizer_json` writes it: vocabulary from `tokenizer.ggml.tokens`,
/// merges from `tokenizer.ggml.merges` ("a b"), control tokens as special added tokens and
/// user-defined ones as non-special added tokens, the pre-tokenizer from `tokenizer.ggml.pre`
/// (llama.cpp's regexes). Its special-token matching is HF's, not llama.cpp's
/// (`TextTokenizer::from_gguf` is llama.cpp's).
pub fn gguf_tokenizer_json(header: &GgufHeader) -> Result<Value> {
    match super::gguf::kind(header)? {
        Kind::Bpe => hf_json(header, &Vocab::from_header(header)?, pre_tokenizer(header)?, true),
        Kind::Spm => Err(Error::Model("a SentencePiece tokenizer (`llama`) has no byte-level BPE tokenizer.json".into())),
    }
}

fn hf_json(header: &GgufHeader, vocab: &Vocab, pre: &Pre, with_added_tokens: bool) -> Result<Value> {
    let merges = header.get_str_array("tokenizer.ggml.merges")?;
    let mut pairs = Vec::with_capacity(merges.len());
    for (i, m) in merges.iter().enumerate() {
        let (a, b) = m
            .split_once(' ')
            .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains(' '))
            .ok_or_else(|| Error::Model(format!("merge {i} ({m:?}) is not two tokens split by a space")))?;
        for part in [a, b, &format!("{a}{b}")] {
            if vocab.id(part).is_none() {
                return Err(Error::Model(format!("merge {i} ({m:?}) uses {part:?}, which is not in the vocabulary")));
            }
        }
        pairs.push(json!([a, b]));
    }
    let added: Vec<Value> = (0..vocab.len())
        .filter(|&id| with_added_tokens && vocab.attrs[id].has(Attr::CONTROL.or(Attr::USER_DEFINED)))
        .map(|id| {
            json!({"id": id, "content": vocab.tokens[id], "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": vocab.attrs[id].has(Attr::CONTROL)})
        })
        .collect();
    let tokens: serde_json::Map<String, Value> =
        vocab.tokens.iter().enumerate().map(|(id, t)| (t.clone(), Value::from(id))).collect();
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": hf_pre_tokenizer(pre.split),
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false,
                           "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                    "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": pre.ignore_merges,
            "vocab": tokens,
            "merges": pairs,
        },
    }))
}

fn hf_pre_tokenizer(split: Split) -> Value {
    let byte_level = |use_regex: bool| {
        json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
    };
    let regex = |pattern: &str| {
        json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false})
    };
    let sequence = |steps: Vec<Value>| json!({"type": "Sequence", "pretokenizers": steps});
    match split {
        Split::Gpt2 => byte_level(true),
        Split::DigitsGpt2 => sequence(vec![json!({"type": "Digits", "individual_digits": true}), byte_level(true)]),
        Split::Llama3 => sequence(vec![regex(LLAMA3_REGEX), byte_level(false)]),
        Split::Qwen2 => sequence(vec![regex(QWEN2_REGEX), byte_level(false)]),
        Split::Default => sequence(DEFAULT_REGEXES.iter().map(|r| regex(r)).chain([byte_level(false)]).collect()),
    }
}
