#!/usr/bin/env bash
# Builds src/lib.rs with +relaxed-simd and times it in Node and in headless Chromium (run.mjs).
# Not part of scripts/bench.sh: an experiment whose answer is in docs/benchmarks.md ("Relaxed
# SIMD").
set -euo pipefail
cd "$(dirname "$0")"
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" \
  cargo build --quiet --release --target wasm32-unknown-unknown --target-dir ../../../target/relaxed-simd
cp ../../../target/relaxed-simd/wasm32-unknown-unknown/release/relaxed_simd_bench.wasm .
# Node 20 has relaxed SIMD behind a flag.
node --experimental-wasm-relaxed-simd run.mjs
node run.mjs --browser
