#!/usr/bin/env bash
# Runs every test: native (unit, property, statistical, fixtures), the wasm tests in Node and in
# headless Chromium, then the page: typecheck, vitest unit tests and the end-to-end tests in
# headless Chromium (playwright-core). Installs what is missing first (scripts/setup.sh).
#
#   bash scripts/test.sh          everything (the README's test command, and CI's)
#   bash scripts/test.sh quick    the library, sampling and tiny-model tests, natively and in Node
#                                 wasm: a few minutes once built; no SmolLM2, browser or page
set -euo pipefail
tier=${1:-full}
case $tier in
  full | quick) ;;
  *) echo "usage: bash scripts/test.sh [quick]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# A clean clone gains nothing from incremental caches, and they cost a gigabyte of disk.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

bash scripts/setup.sh >/tmp/decoding-playground-setup.log 2>&1 || {
  cat /tmp/decoding-playground-setup.log; exit 1; }

# Each stage's start, so that the run ends with the time each took (setup began with the script).
stages=("0 setup (scripts/setup.sh)")
stage() {
  stages+=("$SECONDS $1")
  echo "== $1"
}
stage_times() {
  local i end name start
  stages+=("$SECONDS end")
  for ((i = 0; i + 1 < ${#stages[@]}; i++)); do
    read -r start name <<<"${stages[$i]}"
    read -r end _ <<<"${stages[$((i + 1))]}"
    printf '%6d s  %s\n' $((end - start)) "$name"
  done
}

# Every runner's output also goes to a log, so that one closing line can count them all.
log=$(mktemp)
exec > >(tee "$log") 2>&1

# Three test binaries: `native` (every integration test), `fuzz` (its own allocator) and `wasm`
# (wasm-pack builds only that one). One dev-profile build serves them all, the benchmarks and
# the examples: the crate is optimised and its dependencies are at opt-level 1 (Cargo.toml),
# which keeps the SmolLM2 tests to minutes. The 4096-token soak runs once, in the npm package's
# tests (wasm, as users run it); the native one is there to run by hand
# (`cargo test --release --test native soak:: -- --ignored --nocapture`).
if [ "$tier" = quick ]; then
  echo "== quick: library and native tests without SmolLM2"
  cargo test --lib --test native -- --skip smollm2
  echo "== quick: wasm tests in Node"
  (cd crate && wasm-pack test --release --node -- --test wasm)
  echo "== quick tests passed (the full run: bash scripts/test.sh)"
  exit 0
fi

# The full run has built the models (scripts/setup.sh): a test that needs one fails without it.
export DECODING_PLAYGROUND_REQUIRE_MODELS=1

stage "native tests ($(df -h --output=avail . | tail -1 | tr -d ' ') of disk free)"
cargo test --workspace
# Benchmarks and examples are not run here (they print figures, not verdicts), but must build.
cargo build --workspace --benches --examples

# The wasm tests run the release build: the npm package's build below then reuses its tract,
# wgpu and tokenizers, where a debug build would compile them a second time (minutes on 2 cores).
# The native tests above keep the debug assertions.
stage "wasm tests in Node"
(cd crate && wasm-pack test --release --node -- --test wasm)

stage "wasm tests in headless Chromium"
# The runner gives the whole page, every test of a binary together, WASM_BINDGEN_TEST_TIMEOUT
# seconds (20 by default); the model tests took about that in a debug build on 2 cores, and ran
# past it in CI. A hung test still fails, after 10 minutes.
(cd crate && WASM_BINDGEN_USE_BROWSER=1 WASM_BINDGEN_TEST_TIMEOUT=600 wasm-pack test --release --headless --chrome -- --test wasm)

# --- npm package: pack it, npm install the tarball in a fresh folder, run its Node, TypeScript,
# Vite + Chromium consumers and the README example; prints its own "test result:" lines.
stage "npm package (tests/npm/run.sh)"
bash tests/npm/run.sh
# --- end npm package

stage "web: wasm package for the page (release)"
bash scripts/web-pkg.sh

stage "web: typecheck and build"
npm run --silent typecheck
npm run --silent build

# vitest and node:test print their own totals; each is turned into a cargo-style
# "test result:" line so that the summary below counts them too.
stage "web: unit tests (vitest)"
vitest_json=$(mktemp)
npx vitest run --reporter=default --reporter=json --outputFile.json="$vitest_json"
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`test result: ${r.success ? "ok" : "FAILED"}. ${r.numPassedTests} passed; ${r.numFailedTests} failed (vitest)`)' "$vitest_json"

stage "web: end-to-end tests in headless Chromium (tiny model, then SmolLM2)"
e2e_tap=$(mktemp)
node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$e2e_tap" tests/e2e/
awk '/^# pass / { p = $3 } /^# fail / { f = $3 }
     END { printf "test result: %s. %d passed; %d failed (e2e)\n", f ? "FAILED" : "ok", p, f }' "$e2e_tap"

echo "== all tests passed; each stage took:"
stage_times
# cargo and wasm-bindgen-test print "test result: ok. N passed; M failed; ..." per binary.
awk '/test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
