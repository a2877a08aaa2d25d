//! The CPU engine's threads, in the threaded build (`+atomics`, scripts/package.sh): rayon's
//! global pool on Web Workers that share this module's memory (wasm-bindgen-rayon). The
//! quantised products split their rows between the pool's threads (`model::quant::kernel`), and
//! tract's own ops run on its rayon executor. The single-threaded build has no pool: rayon runs
//! everything on the calling thread there.

use wasm_bindgen::prelude::*;

/// Starts rayon's pool on `threads` Web Workers and hands tract's own ops to it; resolves to the
/// pool's size. Call it once, before anything else runs: rayon's first use fixes its pool
/// (tokenizers uses rayon too), and a pool fixed at one thread cannot be replaced.
#[wasm_bindgen(js_name = startThreads)]
pub async fn start_threads(threads: usize) -> Result<usize, JsValue> {
    wasm_bindgen_futures::JsFuture::from(wasm_bindgen_rayon::init_thread_pool(threads)).await?;
    // tract's defaults keep its wasm matmuls on one thread (their hand-off costs more than they
    // save) and split element-wise ops of 32K elements or more: setting its matmul threshold to
    // 128K measured no different in Chromium on 2 threads.
    tract_linalg::multithread::set_default_executor(tract_linalg::multithread::Executor::RayonGlobal);
    Ok(rayon::current_num_threads())
}
