//! Decoding playground: see and compare how a language model picks its next token.
//!
//! [`sampling`] is the pure decoding core (no wasm or web types). The wasm-bindgen layer in
//! `wasm` is compiled only for `wasm32`.

pub mod beam;
pub mod chat;
pub mod error;
pub mod generate;
pub mod math;
pub mod model;
pub mod ngram;
pub mod sampling;
pub mod score;
pub mod summary;
pub mod superposed;
pub mod tokenizer;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use error::{Error, Result};
pub use model::{LanguageModel, TractModel};
pub use sampling::{Chain, SamplerConfig, StepRecord};
