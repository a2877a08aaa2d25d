//! Every native integration test in one binary, so that tract, wgpu and tokenizers are linked
//! once rather than once per file. `fuzz` keeps a binary of its own: its allocator meters and
//! caps every allocation of the process. `soak` is ignored here and run alone (scripts/test.sh),
//! so that its resident-memory figures are its own.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../common/mod.rs"]
mod common;

mod architectures;
mod beam;
mod branch;
mod chat;
mod errors;
mod fixtures;
mod generate;
mod gguf;
mod gguf_blocks;
mod gguf_split;
mod gguf_types;
mod mirostat;
mod model_gguf;
mod model_quants;
mod model_smollm2;
mod model_tiny;
mod onnx_variants;
mod properties;
mod sampler_references;
mod score;
mod soak;
mod statistics;
mod superposed;
mod tokenizer;
mod tokenizer_gguf;
mod webgpu;
