//! llama.cpp's ids and text for the GGUF tokenizer fixtures (fixtures/tokenizers/reference.json,
//! models/tokenizer_fixtures.py), and the comparison every platform runs against them.

use decoding_playground::model::gguf::{GgufHeader, MetaValue};
use decoding_playground::tokenizer::TextTokenizer;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const REFERENCE: &str = include_str!("../fixtures/tokenizers/reference.json");
pub const SPM: &[u8] = include_bytes!("../fixtures/tokenizers/spm.gguf");
pub const BPE: &[u8] = include_bytes!("../fixtures/tokenizers/bpe.gguf");

#[derive(Deserialize)]
pub struct Reference {
    pub texts: Vec<String>,
    pub tokenizers: BTreeMap<String, Expected>,
}

#[derive(Deserialize)]
pub struct Expected {
    /// Relative to the repository root.
    pub file: String,
    /// Metadata set (or removed, `null`) in the file's header.
    pub changes: BTreeMap<String, Value>,
    pub n_vocab: usize,
    pub add_bos: bool,
    pub add_eos: bool,
    pub bos: u32,
    pub eos: u32,
    pub eog: Vec<u32>,
    /// Per text.
    pub ids: Vec<Vec<u32>>,
    pub decoded: Vec<String>,
    pub single_ids: Vec<u32>,
    pub single_decoded: Vec<String>,
}

pub fn reference() -> Reference {
    serde_json::from_str(REFERENCE).unwrap()
}

impl Expected {
    /// The committed file's bytes; `None` for one that models/build.sh makes.
    pub fn committed_bytes(&self) -> Option<&'static [u8]> {
        match self.file.rsplit('/').next() {
            Some("spm.gguf") => Some(SPM),
            Some("bpe.gguf") => Some(BPE),
            _ => None,
        }
    }

    /// The header llama.cpp read: the file's, with the fixture's changes.
    pub fn header(&self, file: &[u8]) -> GgufHeader {
        let mut h = GgufHeader::read(&mut &file[..]).unwrap();
        for (key, value) in &self.changes {
            match value {
                Value::Null => h.metadata.remove(key),
                Value::Bool(b) => h.metadata.insert(key.clone(), MetaValue::Bool(*b)),
                Value::String(s) => h.metadata.insert(key.clone(), MetaValue::String(s.clone())),
                other => panic!("change {key} = {other}"),
            };
        }
        h
    }

    /// Where `tokenizer` differs from llama.cpp: ids (plain and with BOS/EOS), text decoded from
    /// llama.cpp's ids and single tokens, the vocabulary size, and stop tokens outside llama.cpp's
    /// end-of-generation set (which also holds its fill-in-the-middle tokens).
    pub fn differences(&self, tokenizer: &TextTokenizer, texts: &[String]) -> Vec<String> {
        let mut wrong = Vec::new();
        if tokenizer.vocab_size() != self.n_vocab {
            wrong.push(format!("vocabulary of {} tokens vs {}", tokenizer.vocab_size(), self.n_vocab));
        }
        for ((text, ids), decoded) in texts.iter().zip(&self.ids).zip(&self.decoded) {
            let ours = tokenizer.encode(text).unwrap();
            if &ours != ids {
                wrong.push(format!("encode {text:?}:\n  ours  {ours:?}\n  llama {ids:?}"));
            }
            // llama.cpp's tokenize(add_special = true): BOS and EOS as the model says.
            let with_special = [&[self.bos][..self.add_bos as usize], ids, &[self.eos][..self.add_eos as usize]].concat();
            let ours = tokenizer.encode_with_special(text).unwrap();
            if ours != with_special {
                wrong.push(format!("encode_with_special {text:?}: {ours:?} vs {with_special:?}"));
            }
            let ours = tokenizer.decode(ids).unwrap();
            if &ours != decoded {
                wrong.push(format!("decode of {text:?}: {ours:?} vs {decoded:?}"));
            }
        }
        for (&id, text) in self.single_ids.iter().zip(&self.single_decoded) {
            let ours = tokenizer.decode(&[id]).unwrap();
            if &ours != text {
                wrong.push(format!("decode [{id}]: {ours:?} vs {text:?}"));
            }
        }
        let stops = tokenizer.end_of_text_ids();
        if !stops.contains(&self.eos) || !stops.iter().all(|id| self.eog.contains(id)) {
            wrong.push(format!("stop tokens {stops:?}: EOS {}, end of generation {:?}", self.eos, self.eog));
        }
        wrong
    }
}
