#!/usr/bin/env bash
# Builds llama-cpp-python 0.3.36 from the pinned sdist (the one llama_quantize.sh downloads and
# sha256-checks) into a venv of its own, once, and prints its python's path on stdout. ~7 min on
# 2 cores; cached in models/.cache/llama-cpp/venv-<sdist sha256>/. llava/mtmd is left out.
set -euo pipefail
cd "$(dirname "$0")"
sha=$(sed -n 's/^SDIST_SHA256=//p' llama_quantize.sh)
venv=.cache/llama-cpp/venv-$sha
if [ ! -x "$venv/.built" ]; then
  bash llama_quantize.sh >/dev/null  # downloads and checks the sdist
  rm -rf "$venv" && python3 -m venv "$venv"
  t0=$SECONDS
  CMAKE_ARGS="-DLLAVA_BUILD=OFF" "$venv/bin/pip" install --quiet --disable-pip-version-check \
    numpy==2.4.6 ".cache/llama-cpp/llama_cpp_python-0.3.36.tar.gz" >&2
  echo "llama-cpp-python built in $((SECONDS - t0)) s" >&2
  printf '#!/bin/sh\n' > "$venv/.built" && chmod +x "$venv/.built"
fi
echo "$PWD/$venv/bin/python"
