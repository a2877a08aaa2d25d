#!/usr/bin/env bash
# SmolLM2 on the WebGPU backend against the CPU path (tract + our SIMD kernels), in the same run:
# natively (wgpu on Vulkan), then in headless Chromium if it is installed. Prints tok/s for
# prefill and decode, the ratio, and the adapter; asserts no timings.
#
#     bash scripts/bench-webgpu.sh                 # the first adapter: the GPU if there is one
#     CHROMIUM_GPU_FLAGS="--enable-features=Vulkan --use-angle=vulkan --ignore-gpu-blocklist" \
#       bash scripts/bench-webgpu.sh               # on a GPU machine, so headless Chromium uses it
#
# Without a GPU the adapters are lavapipe (native) and SwiftShader (Chromium), both software:
# their figures only show that the harness works. Needs models/smollm2-135m/model.gguf
# (scripts/setup.sh), Vulkan drivers, and for Chromium crate/pkg-web (scripts/web-pkg.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
runs=${RUNS:-3}
ids=$(node -e 'const r = JSON.parse(require("fs").readFileSync("models/fixtures/smollm2_reference.json", "utf8"));
  console.log(r.paragraph.ids.slice(0, 64).join(","))')
cargo build --release -q --example bench_native
results=$(mktemp)
for backend in webgpu cpu; do
  # The last line holds the medians of the warm runs; the first, the load and the backend.
  out=$(seq "$runs" | target/release/examples/bench_native --prompt-ids "$ids" --tokens 32 --backend "$backend")
  printf '%s\t%s\t%s\n' "$backend" "$(echo "$out" | head -n1)" "$(echo "$out" | tail -n1)" >>"$results"
done
node -e '
  const rows = Object.fromEntries(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((line) => {
    const [backend, first, last] = line.split("\t");
    return [backend, { ...JSON.parse(first), ...JSON.parse(last) }];
  }));
  const { webgpu, cpu } = rows;
  const adapter = webgpu.backend.adapter;
  console.log(`SmolLM2 natively: WebGPU (${adapter.name}, ${adapter.backend}${adapter.fallback ? ", a software adapter: the figures only show that the harness works" : ""}) vs the CPU, 64-token prompt, 32 tokens, median of '"$runs"'`);
  console.log("| | WebGPU | CPU | WebGPU ÷ CPU |");
  console.log("|---|---|---|---|");
  for (const [name, key] of [["load from bytes (s)", "loadS"], ["prefill (tok/s)", "prefillTokS"], ["decode (tok/s)", "decodeTokS"]])
    console.log(`| ${name} | ${webgpu[key].toFixed(2)} | ${cpu[key].toFixed(2)} | ${(webgpu[key] / cpu[key]).toFixed(2)}x |`);
' "$results"
rm -f "$results"

if [ -x /usr/bin/chromium ] && [ -d node_modules/playwright-core ] && [ -f crate/pkg-web/decoding_playground_bg.wasm ]; then
  node tests/bench/browser/webgpu.mjs --runs "$runs"
else
  echo "headless Chromium benchmark skipped: it needs /usr/bin/chromium, node_modules (npm ci) and crate/pkg-web (scripts/web-pkg.sh)"
fi
