//! The CPU engine's threads, in the threaded build (`+atomics`, scripts/package.sh): rayon's
//! global pool on Web Workers that share this module's memory (wasm-bindgen-rayon). Each forward
//! pass runs on the pool with the other threads at hand for its quantised products
//! (`model::crew`). The single-threaded build has no pool: everything runs on the calling thread.

use wasm_bindgen::prelude::*;

/// Starts rayon's pool on `threads` Web Workers; resolves to the pool's size. Call it once,
/// before anything else runs: rayon's first use fixes its pool (tokenizers uses rayon too), and a
/// pool fixed at one thread cannot be replaced.
///
/// tract's own ops stay on the pass's thread: on its rayon executor they measured no faster
/// (prefill 2 threads ÷ 1 was 1.58–1.71× with it, 1.65–1.82× without, in Chromium), since the
/// pool's other threads wait on the crew during a pass.
#[wasm_bindgen(js_name = startThreads)]
pub async fn start_threads(threads: usize) -> Result<usize, JsValue> {
    wasm_bindgen_futures::JsFuture::from(wasm_bindgen_rayon::init_thread_pool(threads)).await?;
    Ok(rayon::current_num_threads())
}
