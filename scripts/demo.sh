#!/usr/bin/env bash
# Sets everything up, then runs the main job. Until the model and the page land, that is a
# tour of the samplers on a synthetic model.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
cargo run --release --example sampler_demo
