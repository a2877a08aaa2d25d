//! A GGUF's vocabulary as llama.cpp loads it (`llama_vocab::impl::load`): the token strings,
//! each token's attributes from `tokenizer.ggml.token_type`, and the control tokens llama.cpp
//! recognises by their text when a converter left them typed as normal.

use crate::error::{Error, Result};
use crate::model::gguf::GgufHeader;
use std::collections::HashMap;

/// llama.cpp's `llama_token_attr` bits that tokenizing and detokenizing look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Attr(u8);

impl Attr {
    pub const UNDEFINED: Attr = Attr(0);
    pub const UNKNOWN: Attr = Attr(1);
    pub const UNUSED: Attr = Attr(2);
    pub const NORMAL: Attr = Attr(4);
    pub const CONTROL: Attr = Attr(8);
    pub const USER_DEFINED: Attr = Attr(16);
    pub const BYTE: Attr = Attr(32);

    /// From a `tokenizer.ggml.token_type` value (gguf-py's `TokenType`).
    fn from_type(token_type: i32) -> Attr {
        match token_type {
            1 => Attr::NORMAL,
            2 => Attr::UNKNOWN,
            3 => Attr::CONTROL,
            4 => Attr::USER_DEFINED,
            5 => Attr::UNUSED,
            6 => Attr::BYTE,
            _ => Attr::UNDEFINED,
        }
    }

    pub fn has(self, any_of: Attr) -> bool {
        self.0 & any_of.0 != 0
    }

    pub fn or(self, other: Attr) -> Attr {
        Attr(self.0 | other.0)
    }
}

/// End-of-generation tokens llama.cpp finds by their text (`special_eog_ids`); it also makes them
/// control tokens. The first two come first: [`super::TextTokenizer::end_of_text_ids`] keeps
/// SmolLM2's order of stop tokens.
pub(super) const END_OF_GENERATION: &[&str] = &[
    "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
    "<|calls|>", "<end_of_turn>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~[",
];

/// The fill-in-the-middle tokens llama.cpp looks for by text where the file names none under
/// the keys, and makes control tokens. llama.cpp takes the first it meets in a hash map's order;
/// all are taken here (a vocabulary with two of one kind could tell).
const FILL_IN_THE_MIDDLE: &[(&[&str], &[&str])] = &[
    (&["tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"], &["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"]),
    (&["tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"], &["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"]),
    (&["tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"], &["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"]),
    (&["tokenizer.ggml.fim_pad_token_id"], &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]),
    (&["tokenizer.ggml.fim_rep_token_id"], &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]),
    (&["tokenizer.ggml.fim_sep_token_id"], &["<|file_sep|>"]),
];

pub(super) struct Vocab {
    pub tokens: Vec<String>,
    pub attrs: Vec<Attr>,
    pub ids: HashMap<String, u32>,
}

impl Vocab {
    pub fn from_header(header: &GgufHeader) -> Result<Self> {
        let model_err = |m: String| Error::Model(m);
        let strings = header.get_str_array("tokenizer.ggml.tokens")?;
        let types = header.opt_i32_array("tokenizer.ggml.token_type")?;
        if let Some(types) = &types {
            if types.len() < strings.len() {
                return Err(model_err(format!(
                    "`tokenizer.ggml.token_type` has {} entries for {} tokens",
                    types.len(),
                    strings.len()
                )));
            }
        }
        let mut tokens = Vec::with_capacity(strings.len());
        let mut ids = HashMap::with_capacity(strings.len());
        for (id, &text) in strings.iter().enumerate() {
            // llama.cpp renames empty tokens so that every text maps to one id.
            let text = if text.is_empty() { format!("[EMPTY_{id}]") } else { text.to_string() };
            if let Some(first) = ids.insert(text.clone(), id as u32) {
                return Err(model_err(format!("the tokenizer has token {text:?} twice (ids {first} and {id})")));
            }
            tokens.push(text);
        }
        let mut attrs: Vec<Attr> = match &types {
            Some(types) => types[..tokens.len()].iter().map(|&t| Attr::from_type(t)).collect(),
            None => vec![Attr::NORMAL; tokens.len()],
        };
        let mut make_control = |text: &str| {
            if let Some(&id) = ids.get(text) {
                attrs[id as usize] = attrs[id as usize].or(Attr::CONTROL);
            }
        };
        END_OF_GENERATION.iter().for_each(|t| make_control(t));
        for (keys, texts) in FILL_IN_THE_MIDDLE {
            if keys.iter().all(|key| header.get(key).is_none()) {
                texts.iter().for_each(|t| make_control(t));
            }
        }
        Ok(Self { tokens, attrs, ids })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    /// The tokens split out of text before the model sees it (`cache_special_tokens`): control,
    /// user-defined and unknown ones, longest first. llama.cpp's sort is not stable; ties go
    /// to the lower id here (only overlapping specials of one length could tell).
    pub fn specials(&self) -> Vec<u32> {
        let special = Attr::CONTROL.or(Attr::USER_DEFINED).or(Attr::UNKNOWN);
        let mut ids: Vec<u32> = (0..self.len() as u32).filter(|&id| self.attrs[id as usize].has(special)).collect();
        ids.sort_by_key(|&id| std::cmp::Reverse(self.tokens[id as usize].len()));
        ids
    }
}
