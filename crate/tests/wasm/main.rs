//! The wasm tests, in Node and headless Chromium, in one binary: `wasm-pack test` builds and
//! runs only this one (scripts/test.sh passes `--test wasm`).
#![cfg(target_arch = "wasm32")]

#[path = "../common/mod.rs"]
mod common;

mod architectures;
mod model;
mod sampler;
mod tokenizer;
