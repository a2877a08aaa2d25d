#!/usr/bin/env bash
# Prints the sampler benchmarks: native (criterion, with ratios to a softmax pass and to a
# naive full-sort chain), then the default chain in wasm (Node) against the native figure,
# then SmolLM2 in headless Chromium: our wasm against onnxruntime-web and native.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo bench --bench sampling
(cd crate && wasm-pack build --release --target nodejs --out-dir pkg-node >/dev/null 2>&1)
node crate/benches/sampling_wasm.mjs

cargo bench --bench quant -- --warm-up-time 1 --measurement-time 3

# SmolLM2 in headless Chromium (needs models/build.sh, run by scripts/setup.sh). prepare.py
# builds ORT-web's f32 ONNX and its quantize_dynamic int8 variant once (models/bench/, ~2 min).
# The release wasm build takes minutes once.
[ -d node_modules ] || npm ci --no-audit --no-fund
models/.venv/bin/python tests/bench/browser/prepare.py
bash scripts/web-pkg.sh >/dev/null
node tests/bench/browser/run.mjs

# Superposed decoding's cost: natively (with its quality table), then in headless Chromium.
cargo run --release --example superposed_eval
node tests/bench/browser/superposed.mjs

# The WebGPU backend against the CPU path, natively and in headless Chromium (on this machine
# the adapters are software renderers: the figures only show that the harness works).
bash scripts/bench-webgpu.sh

# Autocomplete latency (with and without prefix reuse) and score throughput in headless Chromium,
# first against the wasm API, then keystroke to suggestions through the built page.
node tests/bench/browser/autocomplete.mjs
npm run --silent build >/dev/null
node tests/bench/browser/autocomplete-page.mjs
