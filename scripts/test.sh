#!/usr/bin/env bash
# Runs every test: native (unit, property, statistical, fixtures), then the wasm tests in
# Node and in headless Chromium. Installs what is missing first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh >/tmp/decoding-playground-setup.log 2>&1 || {
  cat /tmp/decoding-playground-setup.log; exit 1; }

# Every runner's output also goes to a log, so that one closing line can count them all.
log=$(mktemp)
exec > >(tee "$log") 2>&1

echo "== native tests"
# Debug builds: one build of tract serves every test binary (the SmolLM2 tests take ~1 min).
cargo test --workspace
# Benchmarks and examples are not run here (they print figures, not verdicts), but must build.
cargo build --workspace --benches --examples

echo "== wasm tests in Node"
(cd crate && wasm-pack test --node)

echo "== wasm tests in headless Chromium"
(cd crate && WASM_BINDGEN_USE_BROWSER=1 wasm-pack test --headless --chrome)

echo "== all tests passed"
# cargo and wasm-bindgen-test print "test result: ok. N passed; M failed; ..." per binary.
awk '/test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
