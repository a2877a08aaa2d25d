#!/usr/bin/env bash
# Tests the npm package as its users get it: packs it (scripts/package.sh), installs the tarball
# with `npm install` in a fresh temporary folder next to the exact versions pinned in
# tests/npm/consumer/package.json, then runs there
#   1. node.test.mjs: the package in Node: every fixture case's ids and text on the tiny model's
#      ONNX export and its GGUF (crate/tests/fixtures/tiny_*.json, tiny_gguf_*.json), llama.cpp's
#      tiny K-quant files and architectures against their references (models/tiny/quants, archs),
#      package.json and exports, bad input per category (bad GGUFs among them);
#      failure.test.mjs: after a forced trap, the run in flight and every later call fail clearly;
#      soak.test.mjs: 4096 tokens of SmolLM2 in one run, memory growing by the KV cache alone
#      (in the background, beside the other consumers);
#      example.test.mjs: the README's complete example, exactly as published (the tiny GGUF);
#   2. types.ts under `tsc --strict --noEmit` (NodeNext, Bundler, and Node-only libs);
#   3. browser.test.mjs: a Vite app (`vite build`, and `vite dev`) and a plain-ESM page in
#      headless Chromium, each replaying the fixtures of both formats.
# Each prints a cargo-style "test result:" line, which scripts/test.sh's summary counts.
# Env: KEEP_NPM_TEST_DIR=1 keeps the temporary folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

echo "== npm package: build and pack (scripts/package.sh)"
bash scripts/package.sh
version=$(sed -n 's/^version = "\(.*\)"/\1/p' crate/Cargo.toml | head -n1)
tarball=$repo/target/npm-package/decoding-playground-$version.tgz

# The consumer pins follow the page's (root package.json), so both test one toolchain: say so if
# they drift apart.
node -e 'const fs = require("fs"), [a, b] = process.argv.slice(1).map((f) => JSON.parse(fs.readFileSync(f, "utf8")).devDependencies ?? {});
  for (const [name, v] of Object.entries(b)) if (a[name] && a[name] !== v) console.log(`note: tests/npm/consumer pins ${name} ${v}, package.json ${a[name]}`);' \
  package.json tests/npm/consumer/package.json 2>/dev/null || true

work=$(mktemp -d)
if [ "${KEEP_NPM_TEST_DIR:-}" = 1 ]; then echo "consumer folder: $work"; else trap 'rm -rf "$work"' EXIT; fi
cp -r tests/npm/consumer/. "$work/"
cd "$work"

failed=0
result() { # name passed failed
  printf 'test result: %s. %d passed; %d failed (npm: %s)\n' "$([ "$3" = 0 ] && echo ok || echo FAILED)" "$2" "$3" "$1"
  [ "$3" = 0 ] || failed=1
}

echo "== npm package: npm install the tarball in a fresh folder ($work)"
npm install --no-audit --no-fund --prefer-offline "$tarball"
echo "files in the tarball:"
tar tzf "$tarball" | sort | sed 's/^/  /'

node_tests() { # name files...
  local name=$1 tap
  shift
  tap=$(mktemp)
  REPO=$repo node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" "$@" || true
  local p f
  p=$(awk '/^# pass / { print $3 }' "$tap")
  # A test cancelled (e.g. by a failing before hook) counts as failed.
  f=$(awk '/^# (fail|cancelled) / { n += $3; seen = 1 } END { if (seen) print n }' "$tap")
  # No totals means the runner itself broke: count that as a failure.
  [ -n "$p" ] && [ -n "$f" ] || { p=${p:-0}; f=1; }
  result "$name" "$p" "$f"
  rm -f "$tap"
}

# The 4096-token soak keeps one core busy for minutes: it runs beside the other consumers, its
# output held until they are done. It asserts memory, not speed, so sharing the cores changes
# only the tok/s it prints.
echo "== npm package: the SmolLM2 soak starts in the background"
soak_log=$(mktemp)
node_tests soak soak.test.mjs >"$soak_log" 2>&1 &
soak=$!

echo "== npm package: Node consumer and the README example"
node_tests node node.test.mjs onnx.test.mjs failure.test.mjs example.test.mjs snippets.test.mjs

echo "== npm package: TypeScript consumer (tsc --strict --noEmit)"
passed=0 fails=0
for config in tsconfig.json tsconfig.bundler.json tsconfig.node.json; do
  if node node_modules/typescript/bin/tsc --strict --noEmit -p "$config"; then
    echo "  $config: ok"
    passed=$((passed + 1))
  else
    echo "  $config: FAILED"
    fails=$((fails + 1))
  fi
done
result typescript "$passed" "$fails"

echo "== npm package: Vite app and plain ES modules in headless Chromium"
node_tests browser browser.test.mjs

echo "== npm package: the SmolLM2 soak (ran in the background)"
wait "$soak" || true
cat "$soak_log"
# node_tests ran in a subshell there: its verdict is in the log, not in $failed.
grep -q "^test result: ok\." "$soak_log" || failed=1

exit "$failed"
