// Branches of a SmolLM2 run in headless Chromium, through the package's Model on both backends:
//   - the time from `fork()` at position i of a greedy run to its first new token, against the
//     run's own decode step and against a fork that computes its prefix again
//     (`prefixCacheBytes = 0`); the cache first holds another branch, so the prefix comes from
//     the kept rows, not the live cache;
//   - the memory of a run and 8 branches of it, each 256 tokens long: the kept rows (each shared
//     prefix once) and the live cache, against 9 separate caches.
// Prints figures; asserts none. Without a GPU, WebGPU runs on SwiftShader: its run is shorter
// (--gpu-tokens) and its figures only show that the harness works.
//
//     node tests/bench/browser/branch.mjs [--tokens 200] [--gpu-tokens 24] [--backends cpu,webgpu]
//
// Needs crate/pkg-web and models/smollm2-135m (scripts/setup.sh, scripts/web-pkg.sh).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { evaluateInBenchPage } from "./server.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const { values: args } = parseArgs({
  options: {
    tokens: { type: "string", default: "200" },
    "gpu-tokens": { type: "string", default: "24" },
    backends: { type: "string", default: "cpu,webgpu" },
    model: { type: "string", default: "models/smollm2-135m/model.gguf" },
  },
});
for (const path of ["crate/pkg-web/decoding_playground_bg.wasm", args.model]) {
  if (!existsSync(join(root, path))) throw new Error(`${path} is missing: run scripts/setup.sh and scripts/web-pkg.sh`);
}
const reference = JSON.parse(readFileSync(join(root, "models/fixtures/smollm2_reference.json"), "utf8"));
const promptIds = reference.paragraph.ids.slice(0, 16);

const results = await evaluateInBenchPage(
  root,
  async ({ tokens, gpuTokens, backends, promptIds, model: path }) => {
    const { default: init, Model } = await import("/crate/pkg-web/decoding_playground.js");
    await init();
    const file = new Uint8Array(await (await fetch(`/${path}`)).arrayBuffer());
    const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
    const greedy = (maxTokens) => ({ maxTokens, stopTokens: [], sampler: { temperature: 0, topK: null, topP: null } });
    /** Milliseconds from the call to the first step, and the steps' tokens. */
    const timed = async (call) => {
      const t0 = performance.now();
      let first = null;
      const steps = await call((step) => (first ??= performance.now()));
      return { ms: first - t0, tokens: steps.map((s) => s.token) };
    };
    const out = {};
    for (const backend of backends) {
      let model;
      try {
        model = await Model.fromGguf(file, { backend, contextLength: 512 });
      } catch (error) {
        out[backend] = { error: error.message };
        continue;
      }
      const prompt = model.decode(Uint32Array.from(promptIds));
      const n = backend === "cpu" ? tokens : gpuTokens;
      // Warm-up (shaders, V8 tiers), then the run, each step timed.
      await model.generate(prompt, greedy(4));
      const stamps = [];
      const run = (await model.generate(prompt, greedy(n), () => stamps.push(performance.now()))).map((s) => s.token);
      const step = median(stamps.slice(2).map((t, i) => t - stamps[i + 1]));
      const forks = [];
      for (const at of [Math.floor(n / 4), Math.floor(n / 2), n - 1]) {
        const other = (run[at] + 1) % 1000;
        // Another branch takes the live cache first: the prefix must come from the kept rows,
        // or be computed again.
        const detour = () => model.fork(prompt, [(run[0] + 1) % 1000], greedy(2));
        await detour();
        const kept = await timed((onStep) => model.fork(prompt, [...run.slice(0, at), other], greedy(2), onStep));
        const bytes = model.prefixCacheBytes;
        model.prefixCacheBytes = 0;
        await detour();
        const computed = await timed((onStep) => model.fork(prompt, [...run.slice(0, at), other], greedy(2), onStep));
        model.prefixCacheBytes = bytes;
        await model.generate(prompt, greedy(n));
        forks.push({ at, kept: kept.ms, computed: computed.ms, same: kept.tokens.join() === computed.tokens.join() });
      }
      const result = { info: model.backend, steps: n, step, forks };
      if (backend === "cpu") {
        // A run and 8 branches, each 256 tokens after the prompt.
        const length = 256;
        const whole = (await model.generate(prompt, greedy(length))).map((s) => s.token);
        for (let k = 0; k < 8; k++) {
          const at = 32 * k;
          await model.fork(prompt, [...whole.slice(0, at), (whole[at] + 1) % 1000], greedy(length - at - 1));
        }
        result.memory = {
          keptBytes: model.prefixCacheHeldBytes,
          keptPositions: model.prefixCachePositions,
          // The last branch is still in the live cache (kept when the next sequence takes it).
          liveBytes: (promptIds.length + length) * model.kvCacheBytesPerToken,
          separateBytes: 9 * (promptIds.length + length) * model.kvCacheBytesPerToken,
          bytesPerToken: model.kvCacheBytesPerToken,
        };
      }
      out[backend] = result;
      model.free();
    }
    return out;
  },
  { tokens: Number(args.tokens), gpuTokens: Number(args["gpu-tokens"]), backends: args.backends.split(","), promptIds, model: args.model },
  ["--enable-unsafe-webgpu", ...(process.env.CHROMIUM_GPU_FLAGS ?? "").split(" ").filter(Boolean)],
);

console.log(`${args.model} in headless Chromium: forks of a greedy run after a ${promptIds.length}-token prompt`);
console.log("| backend | run | decode step | fork at | first new token, kept prefix | in decode steps (goal ≤ 2) | prefix computed again | same tokens |");
console.log("|---|---|---|---|---|---|---|---|");
for (const [backend, r] of Object.entries(results)) {
  if (r.error) {
    console.log(`| ${backend} | not available: ${r.error} | | | | | | |`);
    continue;
  }
  const adapter = r.info.adapter ? ` (${r.info.adapter.name || "adapter"}${r.info.adapter.fallback ? ", software" : ""})` : "";
  for (const f of r.forks) {
    console.log(`| ${r.info.backend}${adapter} | ${r.steps} tokens | ${r.step.toFixed(1)} ms | ${f.at} | ${f.kept.toFixed(1)} ms | ${(f.kept / r.step).toFixed(2)} | ${f.computed.toFixed(1)} ms (${(f.computed / r.step).toFixed(1)} steps) | ${f.same} |`);
  }
}
const memory = results.cpu?.memory;
if (memory) {
  const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  console.log(`\nA run and 8 branches of it (forked at 0, 32, …, 224), each ${promptIds.length} + 256 positions, ${memory.bytesPerToken} bytes of KV a position:`);
  console.log(`| kept rows | positions kept | live cache | kept + live | 9 separate caches | ratio |`);
  console.log(`|---|---|---|---|---|---|`);
  const held = memory.keptBytes + memory.liveBytes;
  console.log(`| ${mib(memory.keptBytes)} | ${memory.keptPositions} | ${mib(memory.liveBytes)} | ${mib(held)} | ${mib(memory.separateBytes)} | ${(held / memory.separateBytes).toFixed(2)} |`);
}
