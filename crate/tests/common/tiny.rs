//! The committed tiny random model, loaded the way the browser loads a model: from bytes.

use decoding_playground::generate::Engine;
use decoding_playground::tokenizer::TextTokenizer;
use decoding_playground::TractModel;

pub const ONNX: &[u8] = include_bytes!("../../../models/tiny/model.onnx");
pub const TOKENIZER: &[u8] = include_bytes!("../../../models/tiny/tokenizer.json");
pub const CONFIG: &str = include_str!("../../../models/tiny/config.json");
pub const GENERATION_FIXTURE: &str = include_str!("../fixtures/tiny_generation.json");
pub const PROMPT: &str = "Once upon a time, there was a little";
/// The same architecture and tokenizer as one GGUF file (other random weights, Q4_1/Q8_0
/// blocks as SmolLM2's), with fixtures of its own.
pub const GGUF: &[u8] = include_bytes!("../../../models/tiny/model.gguf");
/// The same GGUF split in three by gguf-py's splitting writer (`models/split_gguf.py`).
pub const SPLIT: [&[u8]; 3] = [
    include_bytes!("../../../models/tiny/split/model-00001-of-00003.gguf"),
    include_bytes!("../../../models/tiny/split/model-00002-of-00003.gguf"),
    include_bytes!("../../../models/tiny/split/model-00003-of-00003.gguf"),
];
pub const GGUF_GENERATION_FIXTURE: &str = include_str!("../fixtures/tiny_gguf_generation.json");
pub const GGUF_SUPERPOSED_FIXTURE: &str = include_str!("../fixtures/tiny_gguf_superposed.json");

pub fn engine() -> Engine<TractModel> {
    let model = TractModel::from_bytes_with_config_json(ONNX, CONFIG).unwrap();
    Engine::new(model, TextTokenizer::from_bytes(TOKENIZER).unwrap()).unwrap()
}

pub fn gguf_engine() -> Engine<TractModel> {
    let (model, tokenizer) = TractModel::from_gguf(GGUF).unwrap();
    Engine::new(model, tokenizer).unwrap()
}

/// Each tiny model with its fixtures: (name, engine, generation fixture, its file,
/// superposed fixture, its file).
#[allow(dead_code)]
pub fn models() -> [(&'static str, fn() -> Engine<TractModel>, &'static str, &'static str, &'static str, &'static str); 2] {
    [
        ("onnx", engine, GENERATION_FIXTURE, "tiny_generation.json", SUPERPOSED_FIXTURE, "tiny_superposed.json"),
        ("gguf", gguf_engine, GGUF_GENERATION_FIXTURE, "tiny_gguf_generation.json", GGUF_SUPERPOSED_FIXTURE, "tiny_gguf_superposed.json"),
    ]
}

/// The tiny model's n-gram store, built from `NGRAM_CORPUS` by
/// `cargo run --example build_ngram_store -- models/tiny/tokenizer.json models/tiny/ngrams.bin models/tiny/ngram-corpus.txt`.
pub const NGRAMS: &[u8] = include_bytes!("../../../models/tiny/ngrams.bin");
pub const NGRAM_CORPUS: &str = include_str!("../../../models/tiny/ngram-corpus.txt");
pub const SUPERPOSED_FIXTURE: &str = include_str!("../fixtures/tiny_superposed.json");
