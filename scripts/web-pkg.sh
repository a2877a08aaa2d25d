#!/usr/bin/env bash
# Builds the wasm package the page imports (crate/pkg-web, release, simd128) unless it is newer
# than every crate source, and copies the package's JS entry (crate/js) next to it. A clean build takes ~6 minutes on 2 cores; rebuilds are faster.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
pkg=crate/pkg-web/decoding_playground_bg.wasm
if [ -f "$pkg" ] && [ -f crate/pkg-web/decoding_playground.js ] &&
   [ -z "$(find crate/src crate/Cargo.toml Cargo.toml Cargo.lock .cargo -newer "$pkg" -print -quit)" ]; then
  echo "crate/pkg-web is up to date"
else
  (cd crate && wasm-pack build --release --target web --out-dir pkg-web)
fi
# The package's plain-JS part (loading, the Cache API): the page imports the package's entry,
# as the npm package's users do.
cp crate/js/*.js crate/js/*.d.ts crate/pkg-web/
