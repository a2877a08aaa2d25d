#!/usr/bin/env bash
# Builds llama.cpp's `llama-quantize`, and nothing else, from the llama.cpp that the PyPI sdist
# llama-cpp-python 0.3.36 vendors (sdist pinned and sha256-checked: no wheel exists for this
# platform, and no model hub or git clone is involved). Prints the binary's path on stdout.
#
# Cached in models/.cache/llama-quantize-<sdist sha256>/: a second run only checks the file.
# Why not `pip install llama-cpp-python`: that builds the shared libraries, llava/mtmd and the
# Python package (~7 min on 2 cores); the quantiser alone is libllama + ggml-cpu + common.
# CPU only, GGML_NATIVE=OFF (the same bytes on any x86-64), static, no OpenSSL.
set -euo pipefail
cd "$(dirname "$0")"
SDIST_REQ=llama-cpp-python==0.3.36
SDIST=llama_cpp_python-0.3.36.tar.gz
SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
CMAKE_REQ=cmake==4.4.4
PY=.venv/bin/python
out=.cache/llama-quantize-$SDIST_SHA256
if [ -x "$out/llama-quantize" ]; then
  echo "$PWD/$out/llama-quantize"
  exit 0
fi
log() { echo "$*" >&2; }
t0=$SECONDS
mkdir -p .cache/llama-cpp
if [ ! -f ".cache/llama-cpp/$SDIST" ]; then
  "$PY" -m pip download --quiet --disable-pip-version-check --no-deps \
    --no-binary llama-cpp-python "$SDIST_REQ" -d .cache/llama-cpp >&2
fi
echo "$SDIST_SHA256  .cache/llama-cpp/$SDIST" | sha256sum --quiet --check ||
  { log "ERROR: $SDIST does not match its pinned sha256"; exit 1; }
cmake=$(command -v cmake || true)
if [ -z "$cmake" ]; then
  # A manylinux wheel; `--no-binary :all:` would build cmake itself from source.
  "$PY" -m pip install --quiet --disable-pip-version-check "$CMAKE_REQ" >&2
  cmake=$PWD/.venv/bin/cmake
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/llama-quantize.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf ".cache/llama-cpp/$SDIST" -C "$work" --wildcards '*/vendor/llama.cpp/*'
src=$work/llama_cpp_python-0.3.36/vendor/llama.cpp
log "llama-quantize: configuring"
"$cmake" -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF -DGGML_CCACHE=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_COMMON=ON >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log" >&2; exit 1; }
log "llama-quantize: building (a few minutes on 2 cores)"
"$cmake" --build "$work/build" --target llama-quantize -j "$(nproc)" >"$work/build.log" 2>&1 ||
  { tail -50 "$work/build.log" >&2; exit 1; }
mkdir -p "$out.tmp"
cp "$work/build/bin/llama-quantize" "$out.tmp/"
rm -rf "$out" && mv "$out.tmp" "$out"
log "llama-quantize: built in $((SECONDS - t0)) s"
echo "$PWD/$out/llama-quantize"
