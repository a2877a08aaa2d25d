//! The tiny model through the JS API in Node and headless Chromium: the same tokens and text as
//! natively (tests/fixtures/tiny_generation.json), streaming, cancellation and bad input.
use crate::common;

use common::tiny::{
    CONFIG, GENERATION_FIXTURE, GGUF, GGUF_GENERATION_FIXTURE, GGUF_SUPERPOSED_FIXTURE, NGRAMS, NGRAM_CORPUS, ONNX,
    PROMPT, SPLIT, SUPERPOSED_FIXTURE, TOKENIZER,
};
use decoding_playground::wasm::Model;
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

pub fn js(json: &str) -> JsValue {
    js_sys::JSON::parse(json).expect("test JSON parses")
}

fn message(error: JsValue) -> String {
    error.dyn_into::<js_sys::Error>().expect("a JS Error").message().into()
}

fn field(object: &JsValue, name: &str) -> JsValue {
    js_sys::Reflect::get(object, &name.into()).unwrap()
}

fn model() -> Model {
    Model::new(ONNX.into(), TOKENIZER, Some(CONFIG.into()), JsValue::UNDEFINED).unwrap()
}

/// `Model.fromGguf` as JS calls it: a promise of a Model.
pub async fn from_gguf(bytes: &[u8], options: JsValue) -> Result<Model, JsValue> {
    from_gguf_value(js_sys::Uint8Array::from(bytes).into(), options).await
}

/// `Model.fromGguf` of any JS value: a Uint8Array, an array of a split GGUF's parts, or not.
async fn from_gguf_value(gguf: JsValue, options: JsValue) -> Result<Model, JsValue> {
    let model = JsFuture::from(Model::from_gguf(gguf, options)).await?;
    Ok(Model::try_from_js_value(model).expect("a Model"))
}

/// The tiny GGUF on the CPU: its fixtures were recorded there.
async fn gguf_model() -> Model {
    from_gguf(GGUF, js(r#"{"backend": "cpu"}"#)).await.unwrap()
}

/// Each tiny model with its native fixtures.
async fn models() -> [(&'static str, Model, &'static str, &'static str); 2] {
    [("onnx", model(), GENERATION_FIXTURE, SUPERPOSED_FIXTURE), ("gguf", gguf_model().await, GGUF_GENERATION_FIXTURE, GGUF_SUPERPOSED_FIXTURE)]
}

async fn call(promise: js_sys::Promise) -> Result<JsValue, String> {
    JsFuture::from(promise).await.map_err(message)
}

async fn start(model: &Model, prompt: &str, config: JsValue) -> Result<(), String> {
    call(model.start(prompt.into(), config)).await.map(|_| ())
}

async fn next(model: &Model) -> JsValue {
    call(model.next()).await.unwrap()
}

#[wasm_bindgen_test]
async fn generations_match_the_native_fixture() {
    for (name, model, fixture, _) in models().await {
        generations_match(name, &model, fixture).await;
    }
}

pub async fn generations_match(name: &str, model: &Model, fixture: &str) {
    let cases: Vec<serde_json::Value> = serde_json::from_str(fixture).unwrap();
    for case in cases {
        start(model, PROMPT, js(&case["config"].to_string())).await.unwrap();
        let (mut tokens, mut text) = (Vec::new(), String::new());
        loop {
            let step = next(model).await;
            if step.is_undefined() {
                break;
            }
            tokens.push(field(&step, "token").as_f64().unwrap() as u32);
            text.push_str(&field(&step, "text").as_string().unwrap());
        }
        let expected: Vec<u32> = serde_json::from_value(case["tokens"].clone()).unwrap();
        assert_eq!(tokens, expected, "{name}: {}", case["name"]);
        assert_eq!(text, case["text"].as_str().unwrap(), "{name}: {}", case["name"]);
    }
}

fn ids(value: &JsValue) -> Vec<u32> {
    js_sys::Array::from(value).iter().map(|id| id.as_f64().unwrap() as u32).collect()
}

#[wasm_bindgen_test]
async fn superposed_drafts_match_the_native_fixture() {
    for (name, model, _, fixture) in models().await {
        drafts_match(name, &model, fixture).await;
    }
}

async fn drafts_match(name: &str, model: &Model, fixture: &str) {
    model.set_ngram_store(Some(NGRAMS.to_vec())).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(fixture).unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        start(model, PROMPT, js(&case["config"].to_string())).await.unwrap();
        let (mut live, mut last) = (Vec::new(), JsValue::UNDEFINED);
        loop {
            let step = next(model).await;
            if step.is_undefined() {
                break;
            }
            assert_eq!(field(&step, "kind").as_string().as_deref(), Some("drafts"));
            let nodes = js_sys::Array::from(&field(&step, "live"));
            live.push(nodes.iter().map(|n| field(&n, "token").as_f64().unwrap() as u32).collect::<Vec<_>>());
            last = step;
        }
        let drafts = js_sys::Array::from(&field(&last, "drafts"));
        let tokens: Vec<Vec<u32>> = drafts.iter().map(|d| ids(&field(&d, "tokens"))).collect();
        let texts: Vec<String> = drafts.iter().map(|d| field(&d, "text").as_string().unwrap()).collect();
        let expected = |key: &str| serde_json::from_value::<Vec<serde_json::Value>>(case[key].clone()).unwrap();
        assert_eq!(serde_json::to_value(&live).unwrap(), serde_json::Value::Array(expected("live")), "{name}: {}", case["name"]);
        assert_eq!(serde_json::to_value(&tokens).unwrap(), serde_json::Value::Array(expected("drafts")), "{name}: {}", case["name"]);
        assert_eq!(serde_json::to_value(&texts).unwrap(), serde_json::Value::Array(expected("texts")), "{name}: {}", case["name"]);
    }
}

#[wasm_bindgen_test]
fn an_ngram_store_built_in_wasm_is_the_native_one() {
    let model = model();
    assert_eq!(model.ngram_store_tokens().unwrap(), 0);
    let bytes = model.build_ngram_store(NGRAM_CORPUS, false).unwrap();
    assert!(bytes == NGRAMS, "the same bytes as models/tiny/ngrams.bin");
    let tokens = model.ngram_store_tokens().unwrap();
    model.build_ngram_store("Once upon a time there was a whale.", true).unwrap();
    assert!(model.ngram_store_tokens().unwrap() > tokens, "extend adds to the store");
    model.build_ngram_store("Once upon a time there was a whale.", false).unwrap();
    assert!(model.ngram_store_tokens().unwrap() < tokens, "without extend it replaces the store");
}

#[wasm_bindgen_test]
async fn bad_superposed_input_throws_errors_with_messages() {
    let model = model();
    let store_err = |bytes: &[u8]| message(model.set_ngram_store(Some(bytes.to_vec())).err().expect("refused").into());
    assert!(store_err(b"").contains("not a valid n-gram store"));
    assert!(store_err(&NGRAMS[..NGRAMS.len() - 4]).contains("not a valid n-gram store"));
    let start_err = |config: &'static str| {
        let model = &model;
        async move { start(model, PROMPT, js(config)).await.expect_err("refused") }
    };
    assert!(start_err(r#"{"superposed": {}}"#).await.contains("needs an n-gram store"));
    model.set_ngram_store(Some(NGRAMS.to_vec())).unwrap();
    assert!(start_err(r#"{"superposed": {"drafts": 0}}"#).await.contains("superposed.drafts"));
    assert!(start_err(r#"{"superposed": {"alpha": -0.1}}"#).await.contains("superposed.alpha"));
    assert!(start_err(r#"{"superposed": {"k": 3}}"#).await.contains("unknown field"));
}

#[wasm_bindgen_test]
async fn generate_streams_each_step_to_the_callback() {
    let model = model();
    let seen = js_sys::Array::new();
    let on_step = js_sys::Function::new_with_args("step", "this.push(step)").bind0(&seen);
    let promise = model.generate(PROMPT.into(), js(r#"{"maxTokens": 12}"#), Some(on_step), None);
    let steps: js_sys::Array = JsFuture::from(promise).await.unwrap().dyn_into().unwrap();
    assert_eq!(steps.length(), 12);
    assert_eq!(seen.length(), 12);
    let last = steps.get(11);
    assert_eq!(field(&last, "finish").as_string().as_deref(), Some("length"));
    for name in ["surpriseBits", "entropyBits", "top", "perplexity", "text"] {
        assert!(!field(&last, name).is_undefined(), "step.{name}");
    }
}

#[wasm_bindgen_test]
async fn an_aborted_signal_cancels_within_a_step() {
    let model = model();
    let signal = js("{\"aborted\": false}");
    let on_step = js_sys::Function::new_with_args("step", "this.aborted = true").bind0(&signal);
    let promise = model.generate(PROMPT.into(), js(r#"{"maxTokens": 50}"#), Some(on_step), Some(signal.into()));
    let error = JsFuture::from(promise).await.expect_err("cancelled");
    assert_eq!(field(&error, "name").as_string().as_deref(), Some("AbortError"));
    assert_eq!(field(&error, "code").as_string().as_deref(), Some("Cancelled"));
    assert_eq!(js_sys::Array::from(&field(&error, "steps")).length(), 1, "the step made before the abort");
    assert_eq!(message(error), "generation was cancelled");
    assert!(next(&model).await.is_undefined(), "the generation is gone");
    start(&model, PROMPT, JsValue::UNDEFINED).await.unwrap();
    assert!(!next(&model).await.is_undefined(), "the model is usable after");
}

/// A callback that throws ends the generation with its own error, and frees the model.
#[wasm_bindgen_test]
async fn a_throwing_callback_rejects_generate_with_its_error() {
    let model = model();
    let on_step = js_sys::Function::new_with_args("step", "throw new RangeError('the page gave up')");
    let error = JsFuture::from(model.generate(PROMPT.into(), js(r#"{"maxTokens": 5}"#), Some(on_step), None)).await.expect_err("thrown");
    assert_eq!(field(&error, "name").as_string().as_deref(), Some("RangeError"));
    assert_eq!(message(error), "the page gave up");
    let steps = JsFuture::from(model.generate(PROMPT.into(), js(r#"{"maxTokens": 5}"#), None, None)).await.unwrap();
    assert_eq!(js_sys::Array::from(&steps).length(), 5, "the model is usable after");
}

/// `cancel()` between the call and its first step (while the prompt is read) is not lost.
#[wasm_bindgen_test]
async fn a_cancel_before_the_first_step_cancels_the_generation() {
    let model = model();
    let promise = model.generate(PROMPT.into(), js(r#"{"maxTokens": 50}"#), None, None);
    model.cancel();
    let error = JsFuture::from(promise).await.expect_err("cancelled");
    assert_eq!(field(&error, "code").as_string().as_deref(), Some("Cancelled"));
    assert!(js_sys::Array::from(&field(&error, "steps")).length() <= 1, "it stopped at its first step");
}

/// The tokens of `generate()`'s or `fork()`'s steps.
async fn step_tokens(promise: js_sys::Promise) -> Vec<u32> {
    let steps = js_sys::Array::from(&call(promise).await.unwrap());
    steps.iter().map(|step| field(&step, "token").as_f64().unwrap() as u32).collect()
}

/// `beamSearch()` in wasm gives the reference's hypotheses (models/beam_reference.py) on the
/// tiny ONNX export, streams its steps, and refuses a bad config with a message.
#[wasm_bindgen_test]
async fn beam_search_gives_the_reference_hypotheses() {
    let fixture: serde_json::Value = serde_json::from_str(include_str!("../fixtures/beam_reference.json")).unwrap();
    let prompt = fixture["prompt"].as_str().unwrap();
    let model = model();
    for case in fixture["cases"].as_array().unwrap().iter().filter(|c| c["model"] == "tiny") {
        let steps = js_sys::Array::new();
        let collect = js_sys::Function::new_with_args("steps", "return (step) => steps.push(step)");
        let on_step: js_sys::Function = collect.call1(&JsValue::NULL, &steps).unwrap().dyn_into().unwrap();
        let results = call(model.beam_search(prompt.into(), js(&case["config"].to_string()), Some(on_step), None)).await.unwrap();
        let got: Vec<Vec<u32>> = js_sys::Array::from(&results).iter().map(|h| serde_wasm_bindgen::from_value(field(&h, "tokens")).unwrap()).collect();
        let want: Vec<Vec<u32>> = case["results"].as_array().unwrap().iter().map(|r| serde_json::from_value(r["tokens"].clone()).unwrap()).collect();
        assert_eq!(got, want, "{case}");
        let last = steps.get(steps.length() - 1);
        assert_eq!(js_sys::Array::from(&field(&last, "results")).length(), want.len() as u32);
    }
    let error = call(model.beam_search(prompt.into(), js(r#"{"beams": 40}"#), None, None)).await.expect_err("refused");
    assert!(error.contains("beams"), "{error}");
}

/// `fork()` on a run's own token goes on as the run did, from the kept rows of its prefix, in
/// wasm as natively; a bad token is a clear error and the model goes on.
#[wasm_bindgen_test]
async fn a_fork_on_the_runs_own_token_goes_on_as_the_run_did() {
    let model = gguf_model().await;
    let greedy = r#"{"maxTokens": 14, "stopTokens": [], "sampler": {"temperature": 0}}"#;
    let whole = step_tokens(model.generate(PROMPT.into(), js(greedy), None, None)).await;
    let held = model.prefix_cache_positions().unwrap();
    step_tokens(model.fork(PROMPT.into(), vec![(whole[0] + 1) % 60], js(greedy), None, None)).await;
    assert!(model.prefix_cache_positions().unwrap() > held, "the run's rows were kept when the branch took the cache");
    let forked = step_tokens(model.fork(PROMPT.into(), whole[..6].to_vec(), js(r#"{"maxTokens": 8, "stopTokens": [], "sampler": {"temperature": 0}}"#), None, None)).await;
    assert_eq!(forked, whole[6..]);
    let error = call(model.fork(PROMPT.into(), vec![100_000], js(greedy), None, None)).await.expect_err("refused");
    assert!(error.contains("100000"), "{error}");
    model.set_prefix_cache_bytes(0).unwrap();
    assert_eq!((model.prefix_cache_held_bytes().unwrap(), model.prefix_cache_positions().unwrap()), (0, 0));
    assert_eq!(step_tokens(model.fork(PROMPT.into(), whole[..6].to_vec(), js(greedy), None, None)).await[..8], whole[6..]);
}

#[wasm_bindgen_test]
fn an_onnx_exports_data_file_and_configs_come_through_the_options() {
    let onnx: &[u8] = include_bytes!("../../../models/tiny/variants/external-data/model.onnx");
    let data: &[u8] = include_bytes!("../../../models/tiny/variants/external-data/model.onnx_data");
    let with = |files: JsValue| {
        let options = js_sys::Object::new();
        js_sys::Reflect::set(&options, &"externalData".into(), &files).unwrap();
        js_sys::Reflect::set(&options, &"generationConfigJson".into(), &r#"{"eos_token_id": 5}"#.into()).unwrap();
        Model::new(onnx.into(), TOKENIZER, None, options.into())
    };
    let files = js_sys::Object::new();
    js_sys::Reflect::set(&files, &"model.onnx_data".into(), &js_sys::Uint8Array::from(data)).unwrap();
    // No config.json: the dimensions from the graph, the default context.
    let model = with(files.into()).expect("loads with its data file from the options");
    assert_eq!((model.vocab_size().unwrap(), model.context_length().unwrap()), (512, 2048));
    let missing = message(with(js_sys::Object::new().into()).err().expect("refused"));
    assert!(missing.contains("`model.onnx_data`, which was not given"), "{missing}");
    let files = js_sys::Object::new();
    js_sys::Reflect::set(&files, &"model.onnx_data".into(), &"not bytes".into()).unwrap();
    assert_eq!(message(with(files.into()).err().expect("refused")), "invalid config: externalData[\"model.onnx_data\"] must be a Uint8Array");
}

#[wasm_bindgen_test]
async fn bad_input_throws_errors_with_messages() {
    let err = |r: Result<Model, JsValue>| message(r.err().expect("refused"));
    assert!(err(Model::new(ONNX[..ONNX.len() / 2].into(), TOKENIZER, Some(CONFIG.into()), JsValue::UNDEFINED)).starts_with("model error"));
    assert!(err(Model::new(b"not onnx at all"[..].into(), TOKENIZER, Some(CONFIG.into()), JsValue::UNDEFINED)).starts_with("model error"));
    assert!(err(Model::new(ONNX.into(), b"{oops", Some(CONFIG.into()), JsValue::UNDEFINED)).starts_with("tokenizer error: invalid tokenizer.json"));
    assert!(err(Model::new(js_sys::Uint8Array::new_with_length(0), TOKENIZER, Some(CONFIG.into()), JsValue::UNDEFINED)).starts_with("model error"));
    let model = model();
    let start_err = |prompt: String, config: &'static str| {
        let model = &model;
        async move { start(model, &prompt, js(config)).await.expect_err("refused") }
    };
    assert_eq!(start_err("".into(), "{}").await, "the prompt is empty");
    assert!(start_err(PROMPT.into(), r#"{"maxTokens": 0}"#).await.starts_with("maxTokens must be at least 1"));
    assert!(start_err(PROMPT.into(), r#"{"sampler": {"topK": 0}}"#).await.contains("topK must be at least 1"));
    // Each error carries a stable code, and a parameter out of range its field.
    let error = JsFuture::from(model.start(PROMPT.into(), js(r#"{"sampler": {"topK": 0}}"#))).await.unwrap_err();
    assert_eq!((field(&error, "code").as_string(), field(&error, "field").as_string()), (Some("InvalidConfig".into()), Some("topK".into())));
    let error = JsFuture::from(model.start("".into(), JsValue::UNDEFINED)).await.unwrap_err();
    assert_eq!(field(&error, "code").as_string().as_deref(), Some("InvalidInput"));
    assert!(start_err(PROMPT.into(), r#"{"maxtokens": 3}"#).await.contains("unknown field `maxtokens`"));
    let long = "a b ".repeat(model.context_length().unwrap());
    assert!(start_err(long, "{}").await.contains("the context holds"));
}

#[wasm_bindgen_test]
async fn a_split_ggufs_parts_load_as_the_whole_file() {
    let parts = |order: &[usize]| -> JsValue { order.iter().map(|&i| JsValue::from(js_sys::Uint8Array::from(SPLIT[i]))).collect::<js_sys::Array>().into() };
    let cpu = || js(r#"{"backend": "cpu"}"#);
    let ids = vec![1, 42, 7, 300, 12];
    let log_probs = |model: Model| {
        let ids = ids.clone();
        async move { js_sys::Float64Array::from(call(model.log_probs(ids)).await.unwrap()).to_vec() }
    };
    let whole = log_probs(gguf_model().await).await;
    assert_eq!(log_probs(from_gguf_value(parts(&[2, 0, 1]), cpu()).await.unwrap()).await, whole);
    let missing = from_gguf_value(parts(&[0, 2]), cpu()).await.err().expect("refused");
    assert_eq!(message(missing), "model error: 2 files for a GGUF split into 3 parts: give all 3, each once");
    let wrong = from_gguf_value("model.gguf".into(), cpu()).await.err().expect("refused");
    assert_eq!(message(wrong), "invalid config: fromGguf takes a Uint8Array, or an array of them (the parts of a split GGUF)");
}

#[wasm_bindgen_test]
async fn a_model_says_its_architecture_parameters_and_tokenizer() {
    let gguf = gguf_model().await;
    assert_eq!(gguf.architecture().unwrap().as_deref(), Some("llama"));
    assert_eq!(gguf.parameter_count().unwrap(), Some(106_816.0));
    assert_eq!(gguf.tokenizer_kind().unwrap().as_deref(), Some("byte-level BPE (smollm)"));
    // An ONNX export: config.json's model_type and tokenizer.json's kind, no parameter count.
    let onnx = model();
    assert_eq!(onnx.architecture().unwrap().as_deref(), Some("llama"));
    assert_eq!(onnx.parameter_count().unwrap(), None);
    assert_eq!(onnx.tokenizer_kind().unwrap().as_deref(), Some("byte-level BPE"));
}

#[wasm_bindgen_test]
async fn bad_gguf_bytes_throw_errors_with_messages() {
    let err = |bytes: Vec<u8>| async move {
        message(from_gguf(&bytes, JsValue::UNDEFINED).await.err().expect("refused"))
    };
    let patched = |at: usize, with: &[u8]| {
        let mut bytes = GGUF.to_vec();
        bytes[at..at + with.len()].copy_from_slice(with);
        bytes
    };
    assert!(err(Vec::new()).await.starts_with("model error"));
    assert!(err(patched(0, b"GGML")).await.contains("not a GGUF file"));
    assert!(err(patched(4, &1u32.to_le_bytes())).await.contains("version 1"));
    // The first "llama" in the file is the value of general.architecture.
    let arch = GGUF.windows(5).position(|w| w == b"llama").unwrap();
    assert!(err(patched(arch, b"gpt-2")).await.contains("gpt-2"));
    for cut in [3, 24, 1000, 13_000, GGUF.len() / 2, GGUF.len() - 1] {
        assert!(err(GGUF[..cut].to_vec()).await.starts_with("model error"), "cut at {cut}");
    }
    let after = |needle: &[u8]| GGUF.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len();
    // token_embd's tensor info: its name, 2 dims (u32 count, 2 × u64), the type (u32), the offset (u64).
    let info = after(b"token_embd.weight") + 4 + 16;
    assert!(err(patched(info, &12u32.to_le_bytes())).await.contains("Q4_K"));
    assert!(err(patched(info + 4, &(1u64 << 40).to_le_bytes())).await.starts_with("model error"));
    assert!(err(patched(after(b"llama.block_count") - 5, b"X")).await.contains("`llama.block_count` is missing"));
    // A value (after its u32 type id) that disagrees with the tokenizer's 512 tokens.
    let vocab = after(b"llama.vocab_size") + 4;
    assert!(err(patched(vocab, &500u32.to_le_bytes())).await.contains("512 tokens"));
}

/// The simd128 kernels equal the scalar reference bit for bit here, and the reference's outputs
/// hash to what the native build computes: the precondition for the same tokens everywhere.
#[wasm_bindgen_test]
fn quantised_kernels_equal_the_native_reference() {
    decoding_playground::model::quant::self_check().unwrap();
    assert_eq!(decoding_playground::model::quant::simd_kernel_name(), "wasm simd128");
}

/// The GGUF path's logits in wasm against the native ones (fixtures/tiny_gguf_logits.json). They
/// are not bit-identical: tract's own f32 kernels differ by platform (FMA natively, none in
/// wasm; platform exp, sin and cos), by ~1e-6, and quantising activations to int16 can turn such
/// a difference into one quantisation step of an input. So a sample that falls within ~1e-4 of
/// a tie may differ; every token fixture case replays exactly (generations_match_the_native_fixture).
#[wasm_bindgen_test]
async fn gguf_logits_are_within_a_quantisation_step_of_the_native_ones() {
    use decoding_playground::model::LanguageModel;
    let fixture: serde_json::Value = serde_json::from_str(include_str!("../fixtures/tiny_gguf_logits.json")).unwrap();
    let steps: Vec<Vec<u32>> = serde_json::from_value(fixture["steps"].clone()).unwrap();
    let native: Vec<Vec<f32>> = serde_json::from_value(fixture["logits"].clone()).unwrap();
    let (mut model, _) = decoding_playground::TractModel::from_gguf(GGUF).unwrap();
    for (ids, native) in steps.iter().zip(&native) {
        let logits = model.prefill(ids).await.unwrap();
        let diff = logits.iter().zip(native).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff < 2e-3, "max |wasm - native| = {diff}");
        let argmax = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
        assert_eq!(argmax(&logits), argmax(native));
    }
}

fn in_browser() -> bool {
    !field(&js_sys::global(), "window").is_undefined()
}

/// The automatic backend on WebGPU in Chromium (webdriver.json passes `--enable-unsafe-webgpu`,
/// which gives SwiftShader, a fallback adapter, which `auto` takes only when asked for it), the
/// CPU in Node, which has no WebGPU, saying so.
async fn auto_model() -> Model {
    let model = from_gguf(GGUF, js(r#"{"forceFallbackAdapter": true}"#)).await.unwrap();
    let info = model.backend().unwrap();
    let backend = field(&info, "backend").as_string().unwrap();
    if in_browser() {
        assert_eq!(backend, "webgpu", "{:?}", js_sys::JSON::stringify(&info));
        assert_eq!(field(&field(&info, "adapter"), "fallback").as_bool(), Some(true), "SwiftShader");
    } else {
        assert_eq!(backend, "cpu");
        let reason = field(&info, "fallbackReason").as_string().unwrap();
        assert!(reason.contains("navigator.gpu"), "{reason}");
    }
    model
}

/// Unasked, `auto` does not run on a software adapter, many times slower than the CPU: it runs
/// on the CPU and says why. `backend: "webgpu"` still runs on it.
#[wasm_bindgen_test]
async fn the_automatic_backend_leaves_a_software_adapter_to_the_cpu() {
    if !in_browser() {
        return;
    }
    let info = from_gguf(GGUF, JsValue::UNDEFINED).await.unwrap().backend().unwrap();
    assert_eq!(field(&info, "backend").as_string().as_deref(), Some("cpu"));
    let reason = field(&info, "fallbackReason").as_string().unwrap();
    assert!(reason.starts_with("the WebGPU adapter is a software fallback"), "{reason}");
    assert!(reason.ends_with("slower than the CPU; backend \"webgpu\" runs on it anyway"), "{reason}");
    assert!(field(&info, "fallbackWeightBytes").is_null(), "no CPU copy is kept on the CPU");
    let forced = from_gguf(GGUF, js(r#"{"backend": "webgpu"}"#)).await.unwrap().backend().unwrap();
    assert_eq!(field(&forced, "backend").as_string().as_deref(), Some("webgpu"));
    assert!(field(&forced, "fallbackWeightBytes").is_null(), "forced WebGPU keeps no CPU copy");
    let auto = auto_model().await.backend().unwrap();
    let copy = field(&auto, "fallbackWeightBytes").as_f64().unwrap();
    let weights = decoding_playground::model::weights::GgufModel::read(GGUF).unwrap().weights;
    assert_eq!(copy as usize, weights.storage_bytes());
}

/// A GPU call holds the engine across the await of its read-back. Meanwhile the properties,
/// text in and out, and the chat template are read as at any other time (a worker sends the
/// properties with every reply); only calls that need the engine wait for it.
#[wasm_bindgen_test]
async fn properties_and_text_never_wait_on_a_call_in_flight() {
    let model = auto_model().await;
    let before = js_sys::JSON::stringify(&model.backend().unwrap()).unwrap();
    let template = model.chat_template().unwrap();
    let outcome = std::rc::Rc::new(std::cell::RefCell::new(None));
    let settled = outcome.clone();
    let text = NGRAM_CORPUS.split("\n\n").next().unwrap().to_string();
    let facts = (model.vocab_size().unwrap(), model.context_length().unwrap(), model.weight_types().unwrap(), model.kv_cache_bytes_per_token().unwrap());
    let scoring = call(model.score(text, JsValue::UNDEFINED));
    wasm_bindgen_futures::spawn_local(async move {
        *settled.borrow_mut() = Some(scoring.await.map(|_| ()));
    });
    let mut reads_in_flight = 0;
    loop {
        yield_to_event_loop().await;
        if let Some(outcome) = outcome.borrow().as_ref() {
            outcome.as_ref().expect("the score completes");
            break;
        }
        assert_eq!((model.vocab_size().unwrap(), model.context_length().unwrap(), model.weight_types().unwrap(), model.kv_cache_bytes_per_token().unwrap()), facts);
        assert_eq!(js_sys::JSON::stringify(&model.backend().unwrap()).unwrap(), before);
        assert_eq!(model.decode(&model.encode(PROMPT).unwrap()).unwrap(), PROMPT);
        assert_eq!(model.chat_template().unwrap(), template);
        model.set_chat_template(Some("{{ messages | length }}".into())).unwrap();
        let messages = js(r#"[{"role": "user", "content": "hi"}]"#);
        assert_eq!(model.apply_chat_template(messages, JsValue::UNDEFINED).unwrap(), "1");
        model.set_chat_template(template.clone()).unwrap();
        reads_in_flight += 1;
    }
    wasm_bindgen_test::console_log!("properties read while a score was in flight: {reads_in_flight} times");
    if in_browser() {
        assert!(reads_in_flight > 0, "on WebGPU a score awaits its read-backs");
    }
}

/// A macrotask, as a page's event loop gives between two messages.
async fn yield_to_event_loop() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let set_timeout: js_sys::Function = field(&js_sys::global(), "setTimeout").unchecked_into();
        set_timeout.call2(&JsValue::NULL, &resolve, &0.into()).unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

#[wasm_bindgen_test]
async fn the_automatic_backend_replays_the_native_fixtures() {
    let model = auto_model().await;
    generations_match("gguf, auto backend", &model, GGUF_GENERATION_FIXTURE).await;
    drafts_match("gguf, auto backend", &model, GGUF_SUPERPOSED_FIXTURE).await;
}

#[wasm_bindgen_test]
async fn webgpu_logits_match_the_native_cpu_ones_and_a_missing_adapter_is_a_clear_error() {
    use decoding_playground::model::webgpu::{GpuOptions, WebGpuModel};
    use decoding_playground::model::LanguageModel;
    if !in_browser() {
        let forced = from_gguf(GGUF, js(r#"{"backend": "webgpu"}"#)).await;
        let error = message(forced.err().expect("no WebGPU in Node"));
        assert!(error.starts_with("WebGPU: this JavaScript environment has no WebGPU"), "{error}");
        return;
    }
    let fixture: serde_json::Value = serde_json::from_str(include_str!("../fixtures/tiny_gguf_logits.json")).unwrap();
    let steps: Vec<Vec<u32>> = serde_json::from_value(fixture["steps"].clone()).unwrap();
    let native: Vec<Vec<f32>> = serde_json::from_value(fixture["logits"].clone()).unwrap();
    let (mut model, _) = WebGpuModel::from_gguf(GGUF, &GpuOptions::default()).await.unwrap();
    let (mut worst, mut same_top10) = (0.0f32, 0);
    for (ids, native) in steps.iter().zip(&native) {
        let logits = model.prefill(ids).await.unwrap();
        let (diff, same) = common::logit_agreement(&logits, native, logits.len());
        worst = worst.max(diff);
        same_top10 += same;
        assert_eq!(common::argmax(&logits), common::argmax(native));
    }
    wasm_bindgen_test::console_log!(
        "tiny GGUF on WebGPU ({:?}) vs native tract: max |Δlogit| {worst:.2e}, top-10 sets equal at {same_top10}/{} steps",
        model.adapter(),
        steps.len()
    );
    assert_eq!(same_top10, steps.len());
    assert!(worst < 5e-3, "max |WebGPU − native| = {worst}");
}

/// `score` through the JS API against `logProbs` of the same ids, on the CPU and (in Chromium)
/// on WebGPU; bad input rejects with a message.
#[wasm_bindgen_test]
async fn score_agrees_with_log_probs_on_every_backend() {
    for model in [gguf_model().await, auto_model().await] {
        let text = NGRAM_CORPUS.split("\n\n").next().unwrap();
        let result = call(model.score(text.into(), js(r#"{"topAlternatives": 5}"#))).await.unwrap();
        let tokens = js_sys::Array::from(&field(&result, "tokens"));
        let top = js_sys::Array::from(&field(&tokens.get(1), "top"));
        assert_eq!(top.length(), 5);
        let best = top.get(0);
        let best_id = field(&best, "token").as_f64().unwrap() as u32;
        assert_eq!(field(&best, "text").as_string(), Some(model.decode(&[best_id]).unwrap()), "alternatives carry their text");
        let old_name = call(model.score(text.into(), js(r#"{"topN": 2}"#))).await.unwrap();
        let second = js_sys::Array::from(&field(&old_name, "tokens")).get(1);
        assert_eq!(js_sys::Array::from(&field(&second, "top")).length(), 2, "the deprecated `topN` still works");
        let ids: Vec<u32> = tokens.iter().map(|t| field(&t, "token").as_f64().unwrap() as u32).collect();
        assert_eq!(ids, model.encode(text).unwrap());
        let log_probs = js_sys::Float64Array::from(call(model.log_probs(ids.clone())).await.unwrap()).to_vec();
        assert!(field(&tokens.get(0), "prob").is_null(), "the first token has nothing before it");
        for (i, lp) in log_probs.iter().enumerate() {
            let bits = field(&tokens.get(i as u32 + 1), "surpriseBits").as_f64().unwrap();
            assert!((bits + lp / std::f64::consts::LN_2).abs() < 2e-3, "token {}: {bits} bits vs ln p {lp}", i + 1);
        }
        let mean = -log_probs.iter().sum::<f64>() / log_probs.len() as f64 / std::f64::consts::LN_2;
        let ppl = field(&result, "perplexity").as_f64().unwrap();
        assert!((ppl / mean.exp2() - 1.0).abs() < 1e-3, "perplexity {ppl} vs {}", mean.exp2());
        assert_eq!(js_sys::Array::from(&field(&tokens.get(1), "top")).length(), 5);
        let err = |text: &'static str, config: &'static str| {
            let model = &model;
            async move { call(model.score(text.into(), js(config))).await.expect_err("refused") }
        };
        assert!(err("", "{}").await.starts_with("text must be at least two tokens"));
        assert!(err(PROMPT, r#"{"topn": 3}"#).await.contains("unknown field `topn`"));
    }
}

/// One model, many callers: a call that would interleave with a running generation is refused
/// with one clear error, the running one is untouched, and cancel() ends it from anywhere.
#[wasm_bindgen_test]
async fn a_call_that_would_interleave_with_a_generation_is_refused() {
    const BUSY: &str = "a generation is running on this model: await it or cancel it first";
    let model = model();
    let config = || js(r#"{"maxTokens": 6, "sampler": {"seed": 5}}"#);
    let solo = JsFuture::from(model.generate(PROMPT.into(), config(), None, None)).await.unwrap();
    // Two generate() calls at once (a React effect run twice): the second is refused, the first
    // gives the same steps as when alone.
    let first = JsFuture::from(model.generate(PROMPT.into(), config(), None, None));
    let second = JsFuture::from(model.generate("Another prompt".into(), config(), None, None));
    assert_eq!(message(second.await.expect_err("refused")), BUSY);
    let first = first.await.unwrap();
    assert_eq!(js_sys::JSON::stringify(&first).unwrap(), js_sys::JSON::stringify(&solo).unwrap());

    // While generate() runs, every call that would touch its cache is refused.
    let model = std::rc::Rc::new(model);
    let refusals = js_sys::Array::new();
    let check = {
        let (model, refusals) = (model.clone(), refusals.clone());
        wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |_step: JsValue| {
            if refusals.length() > 0 {
                return;
            }
            for promise in [model.start(PROMPT.into(), JsValue::UNDEFINED), model.next(), model.score(PROMPT.into(), JsValue::UNDEFINED), model.log_probs(vec![1, 2, 3])] {
                // A handler now, so that Node does not take the rejection as unhandled before
                // the test awaits it.
                let _ = js_sys::Promise::all_settled(&js_sys::Array::of1(&promise));
                refusals.push(&promise);
            }
            refusals.push(&model.set_ngram_store(Some(NGRAMS.to_vec())).err().unwrap());
            refusals.push(&model.set_reuse_prefix(true).err().unwrap());
        })
    };
    let on_step: js_sys::Function = check.as_ref().unchecked_ref::<js_sys::Function>().clone();
    let steps = JsFuture::from(model.generate(PROMPT.into(), config(), Some(on_step), None)).await.unwrap();
    assert_eq!(js_sys::JSON::stringify(&steps).unwrap(), js_sys::JSON::stringify(&solo).unwrap(), "the run is untouched");
    for refusal in refusals.iter() {
        let error = match refusal.dyn_into::<js_sys::Promise>() {
            Ok(promise) => JsFuture::from(promise).await.expect_err("refused"),
            Err(error) => error,
        };
        assert_eq!(field(&error, "code").as_string().as_deref(), Some("Busy"), "a code to switch on");
        assert_eq!(message(error), BUSY);
    }

    // A start()ed generation owns the model until its last step, or a cancel().
    start(&model, PROMPT, config()).await.unwrap();
    assert_eq!(message(JsFuture::from(model.generate(PROMPT.into(), config(), None, None)).await.unwrap_err()), BUSY);
    assert_eq!(start(&model, PROMPT, config()).await.unwrap_err(), BUSY);
    assert!(!next(&model).await.is_undefined());
    model.cancel();
    assert!(next(&model).await.is_undefined(), "cancelled");
    start(&model, PROMPT, js(r#"{"maxTokens": 2}"#)).await.unwrap();
    assert!(!next(&model).await.is_undefined());
    assert_eq!(field(&next(&model).await, "finish").as_string().as_deref(), Some("length"));
    assert!(next(&model).await.is_undefined());
    call(model.score(PROMPT.into(), JsValue::UNDEFINED)).await.expect("free again after the last step");
}

/// `contextLength` caps the context on the CPU too, bounding the KV cache; a run into it ends
/// with `finish: "context"`, not an error.
#[wasm_bindgen_test]
async fn a_capped_context_ends_a_run_with_finish_context() {
    let model = from_gguf(GGUF, js(r#"{"backend": "cpu", "contextLength": 24}"#)).await.unwrap();
    assert_eq!(model.context_length().unwrap(), 24);
    // 2 layers × (keys + values) × 2 KV heads × 16 dims × 4 bytes.
    assert_eq!(model.kv_cache_bytes_per_token().unwrap(), 2 * 2 * 2 * 16 * 4);
    let steps: js_sys::Array = JsFuture::from(model.generate(PROMPT.into(), js(r#"{"maxTokens": 1000, "stopTokens": []}"#), None, None))
        .await
        .unwrap()
        .dyn_into()
        .unwrap();
    let prompt_tokens = model.encode(PROMPT).unwrap().len() as u32;
    assert_eq!(steps.length(), 24 - prompt_tokens);
    assert_eq!(field(&steps.get(steps.length() - 1), "finish").as_string().as_deref(), Some("context"));
    for bad in ["0", "100000"] {
        let error = message(from_gguf(GGUF, js(&format!(r#"{{"backend": "cpu", "contextLength": {bad}}}"#))).await.err().unwrap());
        assert!(error.starts_with("contextLength must be at least 1 and at most the model's context"), "{error}");
    }
}

/// `stream()` speaks the async-iterator protocol: the same steps as `generate()`, `return()`
/// cancels, an aborted signal rejects with an AbortError, and bad input rejects (never throws).
#[wasm_bindgen_test]
async fn stream_is_an_async_iterator_of_the_generation() {
    let model = model();
    let config = || js(r#"{"maxTokens": 6, "stopTokens": [], "stopStrings": ["never here"]}"#);
    let generated = js_sys::Array::from(&call(model.generate(PROMPT.into(), config(), None, None)).await.unwrap());
    let stream = model.stream(PROMPT.into(), config(), JsValue::UNDEFINED);
    // `[Symbol.asyncIterator]()` gives the stream itself: its first step, then the rest.
    let mut streamed = vec![field(&call(stream.async_iterator().next()).await.unwrap(), "value")];
    loop {
        let result = call(stream.next()).await.unwrap();
        if field(&result, "done").as_bool().unwrap() {
            break;
        }
        streamed.push(field(&result, "value"));
    }
    let json = |v: &JsValue| js_sys::JSON::stringify(v).unwrap().as_string().unwrap();
    assert_eq!(streamed.iter().map(json).collect::<Vec<_>>(), generated.iter().map(|v| json(&v)).collect::<Vec<_>>());
    assert!(field(&call(stream.next()).await.unwrap(), "done").as_bool().unwrap(), "done stays done");

    let early = model.stream(PROMPT.into(), config(), JsValue::UNDEFINED);
    assert!(!field(&call(early.next()).await.unwrap(), "done").as_bool().unwrap());
    call(early.return_()).await.unwrap();
    assert_eq!(js_sys::Array::from(&call(model.generate(PROMPT.into(), config(), None, None)).await.unwrap()).length(), 6, "return() freed the model");

    let signal = js(r#"{"aborted": false}"#);
    let aborted = model.stream(PROMPT.into(), config(), js_sys::Object::from_entries(&js_sys::Array::of1(&js_sys::Array::of2(&"signal".into(), &signal))).unwrap().into());
    call(aborted.next()).await.unwrap();
    js_sys::Reflect::set(&signal, &"aborted".into(), &true.into()).unwrap();
    let error = JsFuture::from(aborted.next()).await.expect_err("aborted");
    assert_eq!(field(&error, "name").as_string().as_deref(), Some("AbortError"));
    assert!(field(&call(aborted.next()).await.unwrap(), "done").as_bool().unwrap());
    assert!(next(&model).await.is_undefined(), "the aborted generation is gone");

    let bad = model.stream(PROMPT.into(), js(r#"{"maxTokens": 0}"#), JsValue::UNDEFINED);
    let refused = call(bad.next()).await.unwrap_err();
    assert!(refused.contains("maxTokens must be at least 1"), "{refused}");
}
