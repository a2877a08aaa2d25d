// bench_native's protocol (crate/examples/bench_native.rs) in wasm under Node, on the page's
// own build (crate/pkg-web, from scripts/web-pkg.sh): one JSON line after the cold run, one per
// line read on stdin, and the medians with the peak RSS when stdin ends.
//
//   node tests/bench/wasm_engine.mjs --prompt-ids 1,2,3 --tokens 32 --model PATH   (a .gguf or an ONNX folder)
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const pkg = join(root, "crate/pkg-web");
const { default: init, Model, externalDataFiles } = await import(join(pkg, "index.js"));
const { values: args } = parseArgs({ options: { "prompt-ids": { type: "string" }, tokens: { type: "string", default: "32" }, model: { type: "string" } } });
await init({ module_or_path: readFileSync(join(pkg, "decoding_playground_bg.wasm")) });

const path = args.model;
// config.json and tokenizer.json beside the model or in the folder above, as bench_native finds them.
const beside = (name) => [join(path, name), join(path, "..", name)].find(existsSync) ?? join(path, name);
const gguf = path.endsWith(".gguf");
const onnx = gguf ? null : readFileSync(join(path, "model.onnx"));
const externalData = gguf ? null : Object.fromEntries(externalDataFiles(onnx).map((name) => [name, readFileSync(join(path, name))]));
const bytes = gguf ? readFileSync(path) : [onnx, readFileSync(beside("tokenizer.json")), readFileSync(beside("config.json"), "utf8"), { externalData }];
const loading = performance.now();
const model = gguf ? await Model.fromGguf(bytes) : new Model(...bytes);
const loadS = (performance.now() - loading) / 1000;
const prompt = model.decode(args["prompt-ids"].split(",").map(Number));
const promptTokens = model.encode(prompt).length;
const maxTokens = Number(args.tokens);
const config = { maxTokens, stopTokens: [], sampler: { temperature: 0 } };

/** Seconds to the end of the prefill, to the first token, and from the prefill to the end. */
async function generate() {
  const start = performance.now();
  await model.start(prompt, config);
  const prefilled = performance.now();
  await model.next();
  const first = performance.now();
  while ((await model.next()) !== undefined);
  return [(prefilled - start) / 1000, (first - start) / 1000, (performance.now() - prefilled) / 1000];
}

const [, firstS] = await generate();
console.log(JSON.stringify({ loadS, firstTokenS: loadS + firstS, promptTokens, weightTypes: model.weightTypes, backend: model.backend }));
const prefill = [];
const decode = [];
for await (const _ of createInterface({ input: process.stdin })) {
  const [prefillS, , decodeS] = await generate();
  prefill.push(promptTokens / prefillS);
  decode.push((maxTokens - 1) / decodeS);
  console.log(JSON.stringify({ prefillTokS: prefill.at(-1), decodeTokS: decode.at(-1) }));
}
const median = (v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? 0;
console.log(JSON.stringify({ prefillTokS: median(prefill), decodeTokS: median(decode), peakRssBytes: process.resourceUsage().maxRSS * 1024 }));
