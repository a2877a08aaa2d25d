#!/usr/bin/env bash
# Native decode speed of SmolLM2 in each of llama.cpp's file types (models/build.sh quants) next
# to the wheel's Q4_1 from the same run: the release `bench_native` example, greedy, the same
# prompt ids as the reference, the median of 3 warm runs. Not run by CI.
#
#   bash scripts/bench-formats.sh
#   LLAMA_CPP_PYTHON=1 bash scripts/bench-formats.sh   also llama.cpp's perplexity on each file and
#       its 1-thread decode speed (models/llama_cpp_python.sh builds llama-cpp-python 0.3.36 from the
#       pinned sdist once, ~7 min on 2 cores, cached in models/.cache/llama-cpp/, with its own venv)
# Env: TOKENS (default 64) generated per run; RAYON_NUM_THREADS (default 1: llama.cpp runs one
# thread here, so both engines are compared on one core).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
TOKENS=${TOKENS:-64}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
d=models/smollm2-135m
[ -f "$d/quants/Q4_K_M.gguf" ] || { echo "missing $d/quants: run models/build.sh quants" >&2; exit 1; }
cargo build --release --quiet --example bench_native
prompt=$(models/.venv/bin/python -c 'import json; print(",".join(map(str, json.load(open("models/fixtures/smollm2_reference.json"))["greedy"]["prompt_ids"])))')

llama=""
if [ "${LLAMA_CPP_PYTHON:-0}" = 1 ]; then
  llama=$(bash models/llama_cpp_python.sh)
fi

decode() {  # the median decode tok/s of bench_native's final line
  printf "\n\n\n" | target/release/examples/bench_native --prompt-ids "$prompt" --model "$1" --tokens "$TOKENS" |
    tail -1 | models/.venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["decodeTokS"])'
}
base=$(decode "$d/model.gguf")
base_mb=$(du -m --apparent-size "$d/model.gguf" | cut -f1)
printf '%-8s %7s %10s %8s %13s' type MB "tok/s" "÷ Q4_1" "per byte ÷"
[ -z "$llama" ] || printf ' %12s %10s %12s %9s' "ppl exact" "llama.cpp" "llama 1t t/s" "ours ÷"
printf '\n%-8s %7s %10s %8s %13s\n' Q4_1 "$base_mb" "$base" 1.00 1.00
for t in Q4_K_M Q5_K_M Q6_K Q8_0 Q4_0 Q5_0; do
  f=$d/quants/$t.gguf
  ours=$(decode "$f")
  mb=$(du -m --apparent-size "$f" | cut -f1)
  # Decode reads every weight once a token: tok/s × bytes compares the kernels' throughput.
  ratios=$(models/.venv/bin/python -c "import os; o,b=$ours,$base; print(f'{o/b:.2f} {o*os.path.getsize(\"$f\")/(b*os.path.getsize(\"$d/model.gguf\")):.2f}')")
  printf '%-8s %7s %10s %8s %13s' "$t" "$mb" "$ours" $ratios
  if [ -n "$llama" ]; then
    read -r exact theirs speed < <("$llama" models/llama_cpp_bench.py "$f" --tokens "$TOKENS" |
      models/.venv/bin/python -c "import json,sys; r=json.load(sys.stdin); e=json.load(open('$d/quants/$t.json'))['paragraph']['perplexity']; print(e, r['perplexity'], r['decodeTokS'])")
    printf ' %12s %10s %12s %9s' "$exact" "$theirs" "$speed" "$(models/.venv/bin/python -c "print(f'{$ours/$speed:.2f}')")"
  fi
  printf '\n'
done
