// SmolLM2 in wasm (tract, simd128, one thread) under Node: load time, time to first token,
// prefill and decode tok/s, wasm memory. Compare with `cargo test --release --test
// model_smollm2 -- --nocapture`, which prints the native figures.
//
//     node tests/bench/model_wasm_node.mjs [model dir]   (after crate/pkg-node is built)
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const { Model } = createRequire(import.meta.url)(join(root, "crate/pkg-node/decoding_playground.js"));
const dir = process.argv[2] ?? join(root, "models/smollm2-135m");

const t0 = performance.now();
const onnx = readFileSync(join(dir, "model.onnx"));
const model = new Model(onnx, readFileSync(join(dir, "tokenizer.json")), readFileSync(join(dir, "config.json"), "utf8"));
const loaded = performance.now();

const prompt = readFileSync(join(root, "models/fixtures/paragraph.txt"), "utf8").slice(0, 600);
const promptTokens = model.encode(prompt).length;
const decodeTokens = 32;
const config = { maxTokens: decodeTokens, stopTokens: [], sampler: { temperature: 0, topK: null, topP: null } };

async function run() {
  const start = performance.now();
  await model.start(prompt, config);
  const prefilled = performance.now();
  let text = "";
  for (let step = await model.next(); step !== undefined; step = await model.next()) text += step.text;
  const done = performance.now();
  return { prefill: prefilled - start, decode: done - prefilled, text };
}
const cold = await run();
const warm = await run();
const mb = (bytes) => (bytes / 2 ** 20).toFixed(0);
console.log(`SmolLM2 in wasm, Node ${process.version}, ${dir}`);
console.log(`  load (bytes → runnable):          ${((loaded - t0) / 1000).toFixed(2)} s (${mb(onnx.length)} MB file)`);
console.log(`  cold time to first token:          ${((loaded - t0 + cold.prefill) / 1000).toFixed(2)} s (load + first prefill of ${promptTokens} tokens)`);
console.log(`  prefill (warm):                    ${((promptTokens * 1000) / warm.prefill).toFixed(1)} tok/s`);
console.log(`  decode (warm, greedy + records):   ${(((decodeTokens - 1) * 1000) / warm.decode).toFixed(1)} tok/s`);
console.log(`  rss after: ${mb(process.memoryUsage().rss)} MB, peak ${mb(process.resourceUsage().maxRSS * 1024)} MB (the file's bytes included)`);
console.log(`  continuation: ${JSON.stringify(warm.text.slice(0, 120))}`);
