// Holds a change to the engine against the build before it: two raw builds of the crate
// (`wasm-pack build --release --target web --out-dir DIR`, one on each side of the change), in
// Node, one thread. Checks that both score the same text to the last bit, then prefills the same
// prompt and decodes, alternating between the builds, and prints the medians and new ÷ base.
//
//   node tests/bench/wasm_ab.mjs --base DIR --new DIR --model FILE.gguf [--runs 7] [--prompt-tokens 64] [--tokens 16]
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    new: { type: "string" },
    model: { type: "string" },
    runs: { type: "string", default: "7" },
    "prompt-tokens": { type: "string", default: "64" },
    tokens: { type: "string", default: "16" },
  },
});
const gguf = new Uint8Array(readFileSync(args.model));
const text = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

async function load(dir) {
  const pkg = await import(join(resolve(dir), "decoding_playground.js"));
  await pkg.default({ module_or_path: readFileSync(join(dir, "decoding_playground_bg.wasm")) });
  return pkg.Model.fromGguf(gguf);
}
const builds = { base: await load(args.base), new: await load(args.new) };
const ids = builds.base.encode(text);
const scored = {};
for (const [name, model] of Object.entries(builds)) scored[name] = JSON.stringify(await model.score(builds.base.decode(ids.slice(0, 200))));
console.log(`score of 200 tokens: ${scored.base === scored.new ? "identical" : "DIFFERENT"} between the builds`);

const prompt = builds.base.decode(ids.slice(0, Number(args["prompt-tokens"])));
const promptTokens = builds.base.encode(prompt).length;
const maxTokens = Number(args.tokens);
const speeds = { base: { prefill: [], decode: [] }, new: { prefill: [], decode: [] } };
for (let run = 0; run < Number(args.runs) + 1; run++) {
  for (const [name, model] of Object.entries(builds)) {
    const start = performance.now();
    await model.start(prompt, { maxTokens, stopTokens: [], sampler: { temperature: 0 } });
    const prefilled = performance.now();
    while ((await model.next()) !== undefined);
    if (run === 0) continue; // warm-up
    speeds[name].prefill.push(promptTokens / ((prefilled - start) / 1000));
    speeds[name].decode.push(maxTokens / ((performance.now() - prefilled) / 1000));
  }
}
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
for (const what of ["prefill", "decode"]) {
  const [base, next] = [median(speeds.base[what]), median(speeds.new[what])];
  console.log(`${what} (${what === "prefill" ? `${promptTokens} tokens` : `${maxTokens} tokens`}): base ${base.toFixed(1)} tok/s, new ${next.toFixed(1)} tok/s, new ÷ base ${(next / base).toFixed(2)}`);
}
