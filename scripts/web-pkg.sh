#!/usr/bin/env bash
# Gives the page the npm package's build (crate/pkg-web): the same wasm-bindgen output and JS
# entry, and the same wasm-opt pass, so that a visitor downloads the optimised .wasm (-O1:
# 18.2 MB, 5.0 MB gzipped, where wasm-pack alone leaves 22.6 MB and 5.6 MB) and the page and the
# package are one build, both of its builds (the threaded one in threads/). scripts/package.sh
# skips itself when its inputs are unchanged; a clean build takes ~13 minutes on 2 cores (~5 of
# them the threaded build's).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/package.sh
mkdir -p crate/pkg-web
cp crate/pkg-npm/*.js crate/pkg-npm/*.d.ts crate/pkg-npm/decoding_playground_bg.wasm crate/pkg-web/
rm -rf crate/pkg-web/threads
cp -r crate/pkg-npm/threads crate/pkg-web/
