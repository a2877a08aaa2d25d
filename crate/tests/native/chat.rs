//! Chat templates against Python's Jinja2 configured as transformers' `apply_chat_template`
//! (models/chat_reference.py renders the same cases, with Qwen2.5's, Qwen3's and Gemma 3's
//! templates from fixtures/chat_templates/), SmolLM2's template as its GGUF ships it, the BOS a
//! tokenizer adds itself, and the errors a template can give.
use crate::common;

use decoding_playground::chat::{ChatMessage, ChatTemplate, SpecialTokens};
use decoding_playground::model::gguf::{GgufHeader, MetaValue};
use decoding_playground::tokenizer::TextTokenizer;
use decoding_playground::Error;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Reference {
    gguf: Option<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    template: String,
    messages: Vec<ChatMessage>,
    add_generation_prompt: bool,
    bos_token: Option<String>,
    eos_token: Option<String>,
    expected: Option<String>,
    error: Option<String>,
    /// "raised" (raise_exception: the message must match) or "undefined" (wording differs).
    error_kind: Option<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The cases and Jinja2's renderings, or `None` (after saying why) without the models venv.
fn reference(special_tokens: bool) -> Option<Reference> {
    let python = common::built_file(root().join("models/.venv/bin/python"))?;
    let gguf = common::smollm2::smollm2_dir().join("model.gguf");
    let mut command = std::process::Command::new(python);
    command.arg(root().join("models/chat_reference.py")).arg(gguf);
    if !special_tokens {
        command.arg("--without-special-tokens");
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "chat_reference.py: {}", String::from_utf8_lossy(&output.stderr));
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

#[test]
fn templates_render_as_jinja2_renders_them_for_hf() {
    // Without special tokens, `bos_token` is undefined: Jinja2 renders it empty.
    let cases = [true, false].into_iter().filter_map(reference).flat_map(|r| r.cases).collect::<Vec<_>>();
    assert!(cases.len() >= 160 || cases.is_empty());
    for model in ["qwen2.5", "qwen3", "gemma3"] {
        let rendered = cases.iter().filter(|c| c.name.starts_with(model) && c.expected.is_some()).count();
        assert!(rendered >= 8 || cases.is_empty(), "{model}: {rendered} renderings");
    }
    for case in &cases {
        let special = SpecialTokens { bos_token: case.bos_token.clone(), eos_token: case.eos_token.clone() };
        let rendered = ChatTemplate::new(&case.template).unwrap().render(&case.messages, case.add_generation_prompt, &special);
        match (&case.expected, &case.error) {
            (Some(expected), _) => assert_eq!(rendered.as_ref(), Ok(expected), "{}", case.name),
            (None, Some(error)) if case.error_kind.as_deref() == Some("raised") => {
                assert_eq!(rendered, Err(Error::ChatTemplate(error.clone())), "{}", case.name)
            }
            (None, Some(_)) => assert!(matches!(rendered, Err(Error::ChatTemplate(_))), "{}: {rendered:?}", case.name),
            (None, None) => panic!("{}: the reference has neither a rendering nor an error", case.name),
        }
    }
}

#[test]
fn smollm2_ships_its_template_in_the_gguf_and_the_prompt_encodes_to_chat_tokens() {
    let Some(path) = common::smollm2::model_file("model.gguf") else { return };
    let bytes = std::fs::read(path).unwrap();
    let tokenizer = TextTokenizer::from_gguf(&GgufHeader::read(&mut &bytes[..]).unwrap()).unwrap();
    if let Some(reference) = reference(true) {
        assert!(reference.gguf.is_some());
        let gguf_case = reference.cases.iter().find(|c| c.name.starts_with("gguf")).unwrap();
        assert_eq!(tokenizer.chat_template(), Some(gguf_case.template.as_str()), "the template as gguf-py reads it");
    }
    let messages = [ChatMessage { role: "user".into(), content: "Hi".into() }];
    let prompt = tokenizer.apply_chat_template(&messages, true).unwrap();
    assert!(prompt.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"), "{prompt:?}");
    let ids = tokenizer.encode(&prompt).unwrap();
    let im_start = tokenizer.token_to_id("<|im_start|>").unwrap();
    assert_eq!(ids.iter().filter(|&&id| id == im_start).count(), 3, "system, user and assistant turns");
}

#[test]
fn a_tokenizer_that_adds_bos_takes_the_templates_bos_off_the_prompt_as_llama_cpp_does() {
    // The SentencePiece fixture set up as Gemma's (BOS added, "<start_of_turn>" a control token)
    // with Gemma 3's template, which writes `{{ bos_token }}` itself.
    let mut header = GgufHeader::read(&mut &include_bytes!("../fixtures/tokenizers/spm.gguf")[..]).unwrap();
    header.metadata.insert("tokenizer.ggml.add_space_prefix".into(), MetaValue::Bool(false));
    let mut tokenizer = TextTokenizer::from_gguf(&header).unwrap();
    tokenizer.set_chat_template(Some(include_str!("../fixtures/chat_templates/gemma3.jinja"))).unwrap();
    let messages = [ChatMessage { role: "user".into(), content: "Hi".into() }];
    let prompt = tokenizer.apply_chat_template(&messages, true).unwrap();
    assert_eq!(prompt, "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
    let ids = tokenizer.encode_with_special(&prompt).unwrap();
    let (bos, turn) = (tokenizer.token_to_id("<s>").unwrap(), tokenizer.token_to_id("<start_of_turn>").unwrap());
    assert_eq!(ids[..2], [bos, turn], "one BOS, then the turn marker as one token");
    assert_eq!(ids.iter().filter(|&&id| id == bos).count(), 1);
}

#[test]
fn template_errors_are_clear() {
    let tokenizer = || TextTokenizer::from_bytes(common::tiny::TOKENIZER).unwrap();
    let mut bare = tokenizer();
    let none = bare.apply_chat_template(&[], true).unwrap_err();
    assert!(matches!(&none, Error::ChatTemplate(m) if m.contains("no chat template")), "{none}");
    assert_eq!(none.code(), "ChatTemplate");
    let broken = bare.set_chat_template(Some("{% for m in messages %}{{ m.content }}")).unwrap_err();
    assert!(matches!(broken, Error::ChatTemplate(_)), "{broken}");
    assert_eq!(bare.chat_template(), None, "a template that does not compile is not kept");
    bare.set_chat_template(Some("{{ messages | length }}:{{ add_generation_prompt }}")).unwrap();
    assert_eq!(bare.apply_chat_template(&[ChatMessage { role: "user".into(), content: "x".into() }], false).unwrap(), "1:False", "Python's spelling, as Jinja2 renders it");
    bare.set_chat_template(None).unwrap();
    assert_eq!(bare.chat_template(), None);
}
