//! What a page shows of a loaded model besides its dimensions: its architecture, its parameter
//! count and the kind of its tokenizer. From a GGUF's header; from an ONNX export's config.json
//! and tokenizer.json, what they say (the parameter count would need the graph decoded again,
//! so an ONNX model has none).

use serde_json::Value;

use crate::model::gguf::GgufHeader;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelSummary {
    /// `general.architecture` ("llama", "qwen3", …), or config.json's `model_type`.
    pub architecture: Option<String>,
    /// The elements of every tensor in the file (a tied output counts once).
    pub parameter_count: Option<u64>,
    /// e.g. "byte-level BPE (smollm)", "SentencePiece".
    pub tokenizer_kind: Option<String>,
}

impl ModelSummary {
    pub fn from_gguf(header: &GgufHeader) -> Self {
        let text = |key: &str| header.get(key).and_then(|v| v.as_str());
        ModelSummary {
            architecture: text("general.architecture").map(str::to_string),
            parameter_count: Some(header.tensors.iter().map(|t| t.n_elements() as u64).sum()),
            tokenizer_kind: text("tokenizer.ggml.model")
                .map(|model| gguf_tokenizer_kind(model, text("tokenizer.ggml.pre"))),
        }
    }

    /// From an ONNX export's config.json (if any) and tokenizer.json; what they do not say (or
    /// what does not parse: the load reports that) is left out.
    pub fn from_onnx(config_json: Option<&str>, tokenizer_json: &[u8]) -> Self {
        let config: Option<Value> = config_json.and_then(|c| serde_json::from_str(c).ok());
        let tokenizer: Option<Value> = serde_json::from_slice(tokenizer_json).ok();
        ModelSummary {
            architecture: config
                .as_ref()
                .and_then(|c| c["model_type"].as_str())
                .map(str::to_string),
            parameter_count: None,
            tokenizer_kind: tokenizer.as_ref().and_then(hf_tokenizer_kind),
        }
    }
}

/// llama.cpp's names (`tokenizer.ggml.model`) in words, with the pre-tokenizer of a BPE one.
fn gguf_tokenizer_kind(model: &str, pre: Option<&str>) -> String {
    match (model, pre) {
        ("gpt2", Some(pre)) => format!("byte-level BPE ({pre})"),
        ("gpt2", None) => "byte-level BPE".into(),
        ("llama", _) => "SentencePiece".into(),
        ("bert", _) => "WordPiece".into(),
        ("t5", _) => "SentencePiece Unigram".into(),
        (other, _) => other.into(),
    }
}

/// A tokenizer.json's model type, "byte-level" when its pre-tokenizer maps bytes to characters.
fn hf_tokenizer_kind(tokenizer: &Value) -> Option<String> {
    let model = tokenizer["model"]["type"].as_str()?;
    Some(match model {
        "BPE" if has_byte_level(&tokenizer["pre_tokenizer"]) => "byte-level BPE".into(),
        "Unigram" => "SentencePiece Unigram".into(),
        other => other.into(),
    })
}

/// Whether a pre-tokenizer, or one in its sequence, is ByteLevel.
fn has_byte_level(pre: &Value) -> bool {
    pre["type"] == "ByteLevel"
        || pre["pretokenizers"]
            .as_array()
            .is_some_and(|all| all.iter().any(has_byte_level))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gguf_tokenizers_are_named_in_words() {
        assert_eq!(
            gguf_tokenizer_kind("gpt2", Some("smollm")),
            "byte-level BPE (smollm)"
        );
        assert_eq!(gguf_tokenizer_kind("gpt2", None), "byte-level BPE");
        assert_eq!(
            gguf_tokenizer_kind("llama", Some("default")),
            "SentencePiece"
        );
        assert_eq!(gguf_tokenizer_kind("rwkv", None), "rwkv");
    }

    #[test]
    fn hf_tokenizers_are_named_by_model_and_pre_tokenizer() {
        let sequence = json!({ "model": { "type": "BPE" }, "pre_tokenizer": { "type": "Sequence", "pretokenizers": [{ "type": "Digits" }, { "type": "ByteLevel" }] } });
        assert_eq!(
            hf_tokenizer_kind(&sequence).as_deref(),
            Some("byte-level BPE")
        );
        let sentencepiece_bpe = json!({ "model": { "type": "BPE", "byte_fallback": true }, "pre_tokenizer": { "type": "Metaspace" } });
        assert_eq!(
            hf_tokenizer_kind(&sentencepiece_bpe).as_deref(),
            Some("BPE")
        );
        assert_eq!(
            hf_tokenizer_kind(&json!({ "model": { "type": "Unigram" } })).as_deref(),
            Some("SentencePiece Unigram")
        );
        assert_eq!(hf_tokenizer_kind(&json!({})), None);
    }

    #[test]
    fn the_tiny_models_summaries() {
        let gguf =
            GgufHeader::read(&mut &include_bytes!("../../models/tiny/model.gguf")[..]).unwrap();
        // 512×64 embeddings; per layer two norms of 64, q and o 64×64, k and v 32×64, three
        // 128×64 feed-forward matrices; the final norm.
        let layer = 2 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 3 * 128 * 64;
        let expected = ModelSummary {
            architecture: Some("llama".into()),
            parameter_count: Some(512 * 64 + 2 * layer + 64),
            tokenizer_kind: Some("byte-level BPE (smollm)".into()),
        };
        assert_eq!(ModelSummary::from_gguf(&gguf), expected);
        let onnx = ModelSummary::from_onnx(
            Some(include_str!("../../models/tiny/config.json")),
            include_bytes!("../../models/tiny/tokenizer.json"),
        );
        assert_eq!(
            onnx,
            ModelSummary {
                parameter_count: None,
                tokenizer_kind: Some("byte-level BPE".into()),
                ..expected
            }
        );
        assert_eq!(
            ModelSummary::from_onnx(None, b"not json"),
            ModelSummary::default()
        );
    }
}
