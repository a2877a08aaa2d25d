//! The Rust tokenizer against ids computed by an independent Python BPE over the GGUF's vocab
//! and merges (models/fixtures/smollm2_reference.json), and streaming without broken characters.
use decoding_playground::tokenizer::{TextStream, TextTokenizer};

use crate::common;

const TINY: &[u8] = include_bytes!("../../../models/tiny/tokenizer.json");

fn smollm2() -> Option<TextTokenizer> {
    let path = common::smollm2::model_file("tokenizer.json")?;
    Some(TextTokenizer::from_bytes(&std::fs::read(path).unwrap()).unwrap())
}

fn reference() -> serde_json::Value {
    let text = include_str!("../../../models/fixtures/smollm2_reference.json");
    serde_json::from_str(text).unwrap()
}

#[test]
fn smollm2_ids_match_the_independent_bpe() {
    let Some(tokenizer) = smollm2() else { return };
    let reference = reference();
    let cases = reference["tokenizer_cases"].as_array().expect("tokenizer_cases");
    assert!(cases.len() >= 10);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        assert_eq!(tokenizer.encode(text).unwrap(), expected, "{text:?}");
    }
}

#[test]
fn streaming_never_shows_a_broken_character() {
    let tokenizer = TextTokenizer::from_bytes(TINY).unwrap();
    let text = "Héllo, 日本語 wörld! 🦀 ok";
    let ids = tokenizer.encode(text).unwrap();
    assert!(ids.len() > text.chars().count() / 2, "a byte-level tokenizer splits characters");
    let mut stream = TextStream::default();
    let mut shown = String::new();
    for &id in &ids {
        let piece = stream.push(&tokenizer, id).unwrap();
        assert!(!piece.contains(char::REPLACEMENT_CHARACTER), "piece {piece:?}");
        shown.push_str(&piece);
    }
    assert_eq!(shown, text);
    assert_eq!(tokenizer.decode(&ids).unwrap(), text);
}

#[test]
fn special_tokens_in_text_become_their_ids() {
    let tokenizer = TextTokenizer::from_bytes(TINY).unwrap();
    let ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>").unwrap();
    assert_eq!(ids.first(), Some(&1));
    assert_eq!(ids.last(), Some(&2));
}

#[test]
fn a_bad_tokenizer_json_is_a_clear_error() {
    for bytes in [&b"{not json"[..], b"{}", &TINY[..TINY.len() / 2]] {
        let err = TextTokenizer::from_bytes(bytes).err().expect("refused").to_string();
        assert!(err.starts_with("tokenizer error: invalid tokenizer.json"), "{err}");
    }
}
