// SmolLM2 in headless Chromium on both backends of our wasm Model, in the same page and run:
// WebGPU and tract (wasm SIMD128, 1 thread), greedy, the same prompt. Prints tok/s for prefill
// and decode, their ratio, and the adapter; asserts no timings. Without a GPU the adapter is
// SwiftShader (a software fallback), whose figures only show that the harness works.
//
//     node tests/bench/browser/webgpu.mjs [--tokens 32] [--prompt-tokens 64] [--runs 3] [--model PATH]
//
// --model: another GGUF of SmolLM2 (the same prompt ids), e.g. one of llama.cpp's file types
// from `models/build.sh quants`: models/smollm2-135m/quants/Q4_K_M.gguf.
// On a machine with a GPU, CHROMIUM_GPU_FLAGS adds the flags headless Chromium needs to use it
// (e.g. "--enable-features=Vulkan --use-angle=vulkan --ignore-gpu-blocklist").
// Needs crate/pkg-web and models/smollm2-135m (scripts/setup.sh, scripts/web-pkg.sh).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { evaluateInBenchPage } from "./server.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const { values: args } = parseArgs({
  options: {
    tokens: { type: "string", default: "32" },
    "prompt-tokens": { type: "string", default: "64" },
    runs: { type: "string", default: "3" },
    model: { type: "string", default: "models/smollm2-135m/model.gguf" },
  },
});
for (const path of ["crate/pkg-web/decoding_playground_bg.wasm", args.model]) {
  if (!existsSync(join(root, path))) throw new Error(`${path} is missing: run scripts/setup.sh and scripts/web-pkg.sh`);
}
const reference = JSON.parse(readFileSync(join(root, "models/fixtures/smollm2_reference.json"), "utf8"));
const promptIds = reference.paragraph.ids.slice(0, Number(args["prompt-tokens"]));

const results = await evaluateInBenchPage(
  root,
  async ({ maxTokens, promptIds, runs, model: path }) => {
    const { default: init, Model } = await import("/crate/pkg-web/decoding_playground.js");
    await init();
    const file = new Uint8Array(await (await fetch(`/${path}`)).arrayBuffer());
    const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
    const out = {};
    for (const backend of ["webgpu", "cpu"]) {
      const start = performance.now();
      let model;
      try {
        model = await Model.fromGguf(file, { backend });
      } catch (error) {
        out[backend] = { error: error.message };
        continue;
      }
      const loadS = (performance.now() - start) / 1000;
      const prompt = model.decode(Uint32Array.from(promptIds));
      const config = { maxTokens, stopTokens: [], sampler: { temperature: 0, topK: null, topP: null } };
      const timings = [];
      let text = "";
      for (let run = 0; run <= runs; run++) {
        const t0 = performance.now();
        await model.start(prompt, config);
        const t1 = performance.now();
        text = "";
        let steps = 0;
        for (let step; (step = await model.next()) !== undefined; steps++) text += step.text;
        const t2 = performance.now();
        // Run 0 warms up (shader compilation, V8 tiers); each later step runs the model once.
        if (run > 0) timings.push({ prefill: promptIds.length / ((t1 - t0) / 1000), decode: (steps - 1) / ((t2 - t1) / 1000) });
      }
      out[backend] = {
        info: model.backend,
        loadS,
        prefill: median(timings.map((t) => t.prefill)),
        decode: median(timings.map((t) => t.decode)),
        text,
      };
      model.free();
    }
    return out;
  },
  { maxTokens: Number(args.tokens), promptIds, runs: Number(args.runs), model: args.model },
  ["--enable-unsafe-webgpu", ...(process.env.CHROMIUM_GPU_FLAGS ?? "").split(" ").filter(Boolean)],
);
const { webgpu, cpu } = results;
const adapter = webgpu.info?.adapter;
console.log(`${args.model} in headless Chromium: WebGPU vs the CPU (wasm SIMD128), ${promptIds.length}-token prompt, ${args.tokens} tokens, median of ${args.runs}`);
if (webgpu.error) console.log(`WebGPU: not available (${webgpu.error})`);
else console.log(`adapter: ${adapter?.name || "(the browser gives no name)"}${adapter?.fallback ? ", a software fallback adapter: its figures only show that the harness works" : ""}`);
const tps = (v) => (v === undefined ? "-" : `${v.toFixed(1)} tok/s`);
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}x` : "-");
console.log("| | WebGPU | CPU (wasm SIMD) | WebGPU ÷ CPU (goal on a real GPU: decode ≥ 5x) |");
console.log("|---|---|---|---|");
console.log(`| load from bytes | ${webgpu.loadS?.toFixed(2) ?? "-"} s | ${cpu.loadS?.toFixed(2) ?? "-"} s | |`);
console.log(`| prefill | ${tps(webgpu.prefill)} | ${tps(cpu.prefill)} | ${ratio(webgpu.prefill, cpu.prefill)} |`);
console.log(`| decode (greedy) | ${tps(webgpu.decode)} | ${tps(cpu.decode)} | ${ratio(webgpu.decode, cpu.decode)} |`);
console.log(`same greedy text on both: ${webgpu.text === cpu.text}`);
