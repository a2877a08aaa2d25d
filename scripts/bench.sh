#!/usr/bin/env bash
# Prints the sampler benchmarks: native (criterion, with ratios to a softmax pass and to a
# naive full-sort chain), then the default chain in wasm (Node) against the native figure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo bench --bench sampling
(cd crate && wasm-pack build --release --target nodejs --out-dir pkg-node >/dev/null 2>&1)
node crate/benches/sampling_wasm.mjs
