//! Every architecture through the JS API, in Node and headless Chromium: llama.cpp's
//! log-probabilities on the tiny fixtures (`common::archs`), and the time to load a model and
//! give its first token, per byte of file, next to the tiny llama's.
use crate::common::archs::{Reference, CONTEXT, FIXTURES};
use crate::common::tiny::GGUF;
use crate::model::{from_gguf, js};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

async fn load(gguf: &[u8]) -> decoding_playground::wasm::Model {
    from_gguf(gguf, js(&format!(r#"{{"backend": "cpu", "contextLength": {CONTEXT}}}"#))).await.unwrap()
}

/// The median of 5 loads + one-token prefills of `gguf`, in ms per MB of file.
async fn load_and_first_token_ms_per_mb(gguf: &[u8]) -> f64 {
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = js_sys::Date::now();
        let model = load(gguf).await;
        JsFuture::from(model.log_probs(vec![1, 2])).await.unwrap();
        times.push(js_sys::Date::now() - start);
    }
    times.sort_by(f64::total_cmp);
    times[2] / (gguf.len() as f64 / 1e6)
}

#[wasm_bindgen_test]
async fn every_architecture_matches_llama_cpp_in_wasm() {
    let llama = load_and_first_token_ms_per_mb(GGUF).await;
    for (name, gguf, json) in FIXTURES {
        let r = Reference::parse(json);
        let model = load(gguf).await;
        let got = js_sys::Float64Array::from(JsFuture::from(model.log_probs(r.ids.clone())).await.unwrap()).to_vec();
        let want = r.log_probs();
        assert_eq!(got.len(), want.len(), "{name}");
        let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        let per_mb = load_and_first_token_ms_per_mb(gguf).await;
        console_log!(
            "{name:14} wasm: max |Δ log p| vs llama.cpp {diff:.2e} (goal ≤ 2e-3 × range {:.2}); load + first token {per_mb:.0} ms/MB (tiny llama: {llama:.0} ms/MB)",
            r.range
        );
        // Logits within 1e-3 × range move a log-probability by at most twice that.
        assert!(diff <= 2e-3 * r.range as f64, "{name}: log-probabilities differ from llama.cpp's by {diff}");
    }
}
