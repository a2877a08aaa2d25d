//! The JS-facing API: thin wrappers that convert at the boundary with serde-wasm-bindgen and
//! turn core errors into JS `Error`s carrying the same message.
//!
//! The files, one job each: `failure.rs` what happens after a panic (every call checks it
//! first); `convert.rs` errors, results and configs across the boundary; `sampler.rs` the
//! `Sampler` export; `facts.rs` the default configs, stage orders and supported formats;
//! `model.rs` the `Model` export, its shared state and which calls it refuses
//! while a generation runs, its properties, tokenizer, chat template, n-gram store and scoring;
//! `load.rs` loading it from ONNX or GGUF; `generation.rs` `start`/`next`/`generate`/`cancel`;
//! `stream.rs` the step stream (`model.stream()`); `bytes.rs` the JS byte readers; `threads.rs`
//! the threaded build's pool (that build only).

mod beam;
mod bytes;
mod convert;
mod facts;
mod failure;
mod generation;
mod load;
mod model;
mod sampler;
mod stream;
#[cfg(target_feature = "atomics")]
mod threads;

#[doc(hidden)]
pub use failure::panic_for_testing;
pub use facts::{
    default_dry_config, default_sampler_config, default_superposed_config, stage_orders, supported_architectures, supported_weight_types,
    StageOrders,
};
pub use failure::on_engine_failure;
pub use load::{external_data_files, LoadOptions};
pub use model::Model;
pub use sampler::{ignored_settings, Sampler};
pub use stream::StepStream;
#[cfg(target_feature = "atomics")]
pub use threads::start_threads;
