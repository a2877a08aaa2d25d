//! The same determinism and error cases as natively, through the JS API, in Node and in
//! headless Chromium. The ids must equal the native fixture exactly.
use crate::common;

use common::{fixture_cases, synthetic_logits};
use decoding_playground::wasm::Sampler;
use decoding_playground::StepRecord;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

fn js(json: &str) -> JsValue {
    js_sys::JSON::parse(json).expect("test JSON parses")
}

fn message(error: impl Into<JsValue>) -> String {
    error.into().dyn_into::<js_sys::Error>().expect("a JS Error").message().into()
}

#[wasm_bindgen_test]
fn ids_match_the_native_fixture() {
    for case in fixture_cases() {
        let mut sampler = Sampler::new(js(&case.config.to_string())).unwrap();
        let tokens: Vec<u32> = (0..case.steps)
            .map(|step| {
                let record = sampler.sample(&synthetic_logits(case.vocab, case.logits_seed, step)).unwrap();
                serde_wasm_bindgen::from_value::<StepRecord>(record).unwrap().token
            })
            .collect();
        assert_eq!(tokens, case.tokens, "case {}", case.name);
    }
}

#[wasm_bindgen_test]
fn records_are_plain_objects_with_camel_case_fields() {
    let mut sampler = Sampler::new(js(r#"{"mirostat": {"version": 2, "tau": 3}, "topK": 5}"#)).unwrap();
    let record = sampler.sample(&synthetic_logits(100, 1, 0)).unwrap();
    for field in ["token", "prob", "surpriseBits", "entropyBits", "kept", "top", "perplexity", "mu"] {
        let value = js_sys::Reflect::get(&record, &field.into()).unwrap();
        assert!(!value.is_undefined(), "record.{field} is missing");
    }
    let top = js_sys::Reflect::get(&record, &"top".into()).unwrap();
    assert_eq!(top.dyn_into::<js_sys::Array>().unwrap().length(), 10);
    assert_eq!(sampler.stages(), ["temperature", "mirostatV2"]);
    assert_eq!(sampler.ignored_settings(), ["topK", "topP"], "Mirostat skips top-k and top-p");
    // A whole generate config: superposed decoding replaces the chain, so any sampler setting
    // given with it is reported.
    let ignored = decoding_playground::wasm::ignored_settings(js(r#"{"superposed": {}, "sampler": {"topK": 5, "seed": 3}}"#)).unwrap();
    assert_eq!(ignored, ["sampler.seed", "sampler.topK"]);
    assert!(decoding_playground::wasm::ignored_settings(js(r#"{"sampler": {"topK": 5}}"#)).unwrap().is_empty());
}

#[wasm_bindgen_test]
fn bad_parameters_throw_errors_with_messages() {
    let cases = [
        (r#"{"topP": 1.5}"#, "topP must be in (0, 1], got 1.5"),
        (r#"{"topK": 0}"#, "topK must be at least 1, got 0"),
        (r#"{"temperature": -1}"#, "temperature must be 0 (greedy)"),
        (r#"{"minP": 2}"#, "minP must be in [0, 1], got 2"),
        (r#"{"mirostat": {"version": 1, "tau": 0}}"#, "mirostat.tau must be a number > 0"),
        (r#"{"mirostat": {"version": 2, "eta": -1}}"#, "mirostat.eta must be a number > 0"),
        (r#"{"topp": 0.9}"#, "unknown field `topp`"),
        (r#"{"topK": "many"}"#, "invalid config"),
        (r#"{"penalties": {"repetition": 1.1, "lastn": 3}}"#, "unknown field `penalties.lastn`"),
    ];
    for (config, expected) in cases {
        let error = Sampler::new(js(config)).err().unwrap_or_else(|| panic!("{config} was accepted"));
        let text = message(error);
        assert!(text.contains(expected), "{config}: {text:?} lacks {expected:?}");
    }
}

#[wasm_bindgen_test]
fn bad_logits_throw_and_the_sampler_survives() {
    let mut sampler = Sampler::new(JsValue::UNDEFINED).unwrap();
    assert_eq!(message(sampler.sample(&[]).unwrap_err()), "logits are empty");
    assert_eq!(message(sampler.sample(&[0.0, f32::NAN]).unwrap_err()), "logit 1 is NaN; logits must be finite numbers");
    assert!(message(sampler.sample(&[f32::INFINITY]).unwrap_err()).contains("must be finite"));
    assert!(sampler.sample(&[0.0, 1.0]).is_ok());
}
