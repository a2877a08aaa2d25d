//! The GGUF tokenizers in wasm give llama.cpp's ids and text, as natively
//! (native/tokenizer_gguf.rs): the committed fixtures (SmolLM2's is a built file, out of reach
//! here), through HF tokenizers' wasm regex engine and the crate's SentencePiece.
use crate::common;

use common::tokenizers::reference;
use decoding_playground::tokenizer::TextTokenizer;
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn committed_gguf_tokenizers_give_llama_cpps_ids_and_text() {
    let reference = reference();
    let mut checked = 0;
    for (name, expected) in &reference.tokenizers {
        let Some(bytes) = expected.committed_bytes() else { continue };
        let wrong = expected.differences(&TextTokenizer::from_gguf(&expected.header(bytes)).unwrap(), &reference.texts);
        assert!(wrong.is_empty(), "{name}: {} differences from llama.cpp:\n{}", wrong.len(), wrong.join("\n"));
        checked += 1;
    }
    assert_eq!(checked, 8, "five BPE pre-tokenizers, three SentencePiece setups");
}
