//! The CPU engine's threads. The threaded build (`+atomics`, scripts/package.sh) exports
//! wasm-bindgen-rayon's `initThreadPool(n)`, which starts rayon's global pool on `n` Web
//! Workers sharing this module's memory; the quantised products then split their rows between
//! them (`model::quant::kernel`). The single-threaded build has no pool: rayon runs everything
//! on the calling thread.

use wasm_bindgen::prelude::*;

#[cfg(target_feature = "atomics")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// The threads the CPU engine computes on: the pool's size once `initThreadPool` has run, else
/// 1. Call it only after `initThreadPool` (or in the single-threaded build): rayon's first use
/// fixes its pool, and a pool fixed at one thread cannot be replaced.
#[wasm_bindgen(js_name = engineThreads)]
pub fn engine_threads() -> usize {
    rayon::current_num_threads()
}
