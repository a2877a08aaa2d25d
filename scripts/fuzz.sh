#!/usr/bin/env bash
# A long run of the mutation fuzzer (crate/tests/fuzz.rs) in release: FUZZ_ITERS cases of each
# cheap target (the tract loaders run a hundredth of that), printing each target's cases and
# peak memory. `FUZZ_ITERS=… FUZZ_SEED=… bash scripts/fuzz.sh` to change the budget or seed;
# a failure prints how to replay its case.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export FUZZ_ITERS="${FUZZ_ITERS:-200000}"
cargo test --release -p decoding-playground --test fuzz -- --nocapture --include-ignored
