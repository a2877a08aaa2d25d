#!/usr/bin/env bash
# Builds the npm package `decoding-playground` into crate/pkg-npm and packs it into
# target/npm-package/decoding-playground-<version>.tgz; prints the tarball's path and the sizes.
#
#   1. wasm-pack build --release --target web (wasm-pack's own wasm-opt stays off: see Cargo.toml),
#      twice: the single-threaded build, and the threaded one (threads/: wasm threads, rayon's
#      pool on Web Workers) which the engine worker runs on cross-origin isolated pages
#   2. wasm-opt from npm `binaryen` (tests/npm/package.json; Debian's binaryen breaks the output)
#   3. facts.js: the engine's defaults and supported formats, read from the wasm
#      (scripts/engine-facts.mjs)
#   4. crate/js/*.ts compiled by tsc --strict (crate/js/tsconfig.json) into JS with generated .d.ts
#      beside the bindings: a type error fails the build
#   5. package.json from crate/js/package.template.json + name/version/license from Cargo.toml
#      (via wasm-pack's generated one), and crate/js/README.md
#   6. npm pack
#
# Skipped when its inputs (hashed into target/npm-package/.inputs) are unchanged.
# Env: WASM_OPT_FLAGS overrides the optimisation flags (e.g. "-Oz"); "none" skips wasm-opt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$HOME/.cargo/bin:$PATH"

# Measured on SmolLM2 in Node (tests/npm/bench.mjs; docs/npm-package.md): -O1 with the names
# stripped gives the smallest gzip and brotli downloads, ~2 minutes of one core; -Oz/-O3 are ~1 MB
# smaller raw but compress worse and take ~7 CPU minutes. Decode speed is the same for all.
DEFAULT_FLAGS="-O1 --strip-debug --strip-producers"
FLAGS=${WASM_OPT_FLAGS:-$DEFAULT_FLAGS}
# The features wasm-bindgen's output uses (also read from its target_features section).
FEATURES="--enable-simd --enable-bulk-memory --enable-bulk-memory-opt --enable-reference-types
  --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals --enable-multivalue
  --enable-call-indirect-overlong"

pkg=crate/pkg-npm
out=target/npm-package
version=$(sed -n 's/^version = "\(.*\)"/\1/p' crate/Cargo.toml | head -n1)
tarball=$out/decoding-playground-$version.tgz
stamp=$out/.inputs

inputs() { printf '%s\n' "$FLAGS"; find crate/src crate/js crate/Cargo.toml Cargo.toml Cargo.lock .cargo \
  scripts/package.sh scripts/engine-facts.mjs package-lock.json tests/npm/package.json -type f -print0 | sort -z | xargs -0 sha256sum; }

gz() { gzip -9 -c "$1" | wc -c; }
report() {
  echo "tarball: $root/$tarball ($(wc -c <"$tarball") bytes)"
  cat "$out/sizes.txt"
}

# Hashed before the build: a source edited while it runs must not be stamped as built.
hash=$(inputs | sha256sum)
if [ -f "$tarball" ] && [ -f "$out/sizes.txt" ] && [ "$hash" = "$(cat "$stamp" 2>/dev/null)" ]; then
  echo "npm package is up to date"
  report
  exit 0
fi

wasm_opt=tests/npm/node_modules/.bin/wasm-opt
if ! [ -x "$wasm_opt" ] || ! [ tests/npm/node_modules/.package-lock.json -nt tests/npm/package-lock.json ]; then
  (cd tests/npm && npm ci --no-audit --no-fund)
fi
# tsc: the page's TypeScript (root package.json), so that the package and the page use one compiler.
tsc=node_modules/.bin/tsc
if ! [ -x "$tsc" ] || ! [ node_modules/.package-lock.json -nt package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

optimise() { # wasm, extra wasm-opt features
  if [ "$FLAGS" = none ]; then
    echo "== wasm-opt skipped (WASM_OPT_FLAGS=none)"
    return
  fi
  echo "== wasm-opt $FLAGS $2 $1 (binaryen $("$wasm_opt" --version | awk '{print $3}'))"
  local start=$SECONDS
  # shellcheck disable=SC2086
  "$wasm_opt" $FLAGS $FEATURES $2 "$1" -o "$1.opt"
  mv "$1.opt" "$1"
  echo "wasm-opt took $((SECONDS - start)) s"
}

echo "== wasm-pack build --release --target web"
(cd crate && wasm-pack build --release --target web --out-dir pkg-npm --no-gitignore)
wasm=$pkg/decoding_playground_bg.wasm
before=$(wc -c <"$wasm") before_gz=$(gz "$wasm")
optimise "$wasm" ""
after=$(wc -c <"$wasm") after_gz=$(gz "$wasm")

# The threaded build needs a std compiled with atomics: -Z build-std from the rust-src component
# (scripts/setup.sh). RUSTC_BOOTSTRAP lets the same pinned stable compiler take that flag, so that
# both builds come from one compiler; wasm-bindgen-rayon's README suggests it. Its own target
# folder: its flags differ, and sharing one would make the two builds rebuild each other. The
# linker flags are the ones wasm-bindgen's threads need: atomics no longer imply a shared memory
# (rust-lang/rust#147225), and newer compilers stop exporting __heap_base and the TLS symbols
# (#156174). A shared memory must declare its maximum: 4 GiB, as far as the single build grows.
echo "== wasm-pack build --release --target web, threaded (-Z build-std)"
threads_flags="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128
  -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296
  -C link-arg=--export=__heap_base -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size
  -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base"
(cd crate && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$root/target/wasm-threads" \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$(echo $threads_flags)" \
  wasm-pack build --release --target web --out-dir pkg-threads --no-gitignore . -- -Z build-std=std,panic_abort)
rm -rf "$pkg/threads"
mkdir -p "$pkg/threads"
cp -r crate/pkg-threads/decoding_playground.js crate/pkg-threads/decoding_playground.d.ts \
  crate/pkg-threads/decoding_playground_bg.wasm crate/pkg-threads/snippets "$pkg/threads/"
# wasm-bindgen-rayon 1.3.0's pool worker imports its package as the folder '../../..', which only
# a bundler resolves; the bindings file it means works with a bundler and without one (the
# library's unreleased main branch imports it statically the same way).
helper=$(echo "$pkg"/threads/snippets/wasm-bindgen-rayon-*/src/workerHelpers.js)
grep -q "import('../../..')" "$helper" || { echo "wasm-bindgen-rayon's worker helper changed: check $helper" >&2; exit 1; }
sed -i "s|import('../../..')|import('../../../decoding_playground.js')|" "$helper"
threads_wasm=$pkg/threads/decoding_playground_bg.wasm
optimise "$threads_wasm" --enable-threads

echo "== facts.js (scripts/engine-facts.mjs)"
node scripts/engine-facts.mjs "$pkg"

echo "== crate/js: tsc --strict into $pkg"
"$tsc" -p crate/js/tsconfig.json

echo "== package.json, README.md"
cp crate/js/README.md crate/LICENSE "$pkg/"
rm -f "$pkg/.gitignore" # from older builds: npm must not read its "*"
# The classes declare [Symbol.dispose](): pull in its lib, so that projects compiling for ES2022
# without skipLibCheck accept the declarations (TypeScript >= 5.2).
sed -i '1i /// <reference lib="esnext.disposable" />' "$pkg/decoding_playground.d.ts"
node - "$pkg/package.json" crate/js/package.template.json <<'EOF'
const fs = require("node:fs");
const path = require("node:path");
const [generatedPath, templatePath] = process.argv.slice(2);
const generated = JSON.parse(fs.readFileSync(generatedPath, "utf8"));
const template = JSON.parse(fs.readFileSync(templatePath, "utf8"));
// Name, version, license, description and repository come from crate/Cargo.toml.
const { name, version, license, description, repository } = generated;
if (name !== "decoding-playground") throw new Error(`unexpected package name ${name}`);
const pkg = { name, version, description, license, repository, ...template };
for (const file of pkg.files) {
  if (!fs.existsSync(path.join(path.dirname(generatedPath), file))) throw new Error(`package file ${file} is missing`);
}
fs.writeFileSync(generatedPath, JSON.stringify(pkg, null, 2) + "\n");
EOF

echo "== npm pack"
mkdir -p "$out"
rm -f "$out"/decoding-playground-*.tgz
(cd "$pkg" && npm pack --silent --pack-destination "$root/$out" >/dev/null)
[ -f "$tarball" ] || { echo "npm pack did not write $tarball" >&2; exit 1; }

{
  echo "wasm before wasm-opt: $before bytes, gzip -9 $before_gz bytes"
  echo "wasm after  wasm-opt: $after bytes, gzip -9 $after_gz bytes ($FLAGS)"
  echo "threaded wasm after wasm-opt: $(wc -c <"$threads_wasm") bytes, gzip -9 $(gz "$threads_wasm") bytes"
} >"$out/sizes.txt"
echo "$hash" >"$stamp"
report
