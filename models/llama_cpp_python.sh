#!/usr/bin/env bash
# Builds llama-cpp-python 0.3.36 (llama.cpp's Python binding) from the sdist that llama_quantize.sh
# downloads and checks (pinned sha256; no wheel exists for this platform, no model hub), into its
# own venv, models/.cache/llama-cpp/venv-<sdist sha256>/. Prints the venv's python on stdout.
#
# Idempotent: once built (the .built marker), a second run only prints the path. The build takes
# ~7 min on 2 cores. Users: scripts/bench-formats.sh (llama.cpp's perplexity and speed) and
# tiny_archs.py (llama.cpp's logits on the tiny per-architecture fixtures) and
# tokenizer_fixtures.py (llama.cpp's token ids); all need only numpy.
set -euo pipefail
cd "$(dirname "$0")"
sdist=$(sed -n 's/^SDIST=//p' llama_quantize.sh)
sha=$(sed -n 's/^SDIST_SHA256=//p' llama_quantize.sh)
venv=.cache/llama-cpp/venv-$sha
if [ ! -x "$venv/.built" ]; then
  bash llama_quantize.sh >/dev/null  # downloads and checks the sdist
  rm -rf "$venv" && python3 -m venv "$venv"
  t0=$SECONDS
  # The checked sdist, not the index's; llava/mtmd is not needed. numpy as in requirements.txt.
  numpy=$(grep '^numpy==' requirements.txt)
  CMAKE_ARGS="-DLLAVA_BUILD=OFF" "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "$numpy" ".cache/llama-cpp/$sdist" >&2
  echo "llama-cpp-python built in $((SECONDS - t0)) s" >&2
  printf '#!/bin/sh\n' > "$venv/.built" && chmod +x "$venv/.built"
fi
echo "$PWD/$venv/bin/python"
