// Superposed decoding's cost in headless Chromium on SmolLM2: one superposed run of k drafts
// against k independent nucleus (top-p 0.9) runs of the same length, for k = 3 and 5, all in
// one page (our wasm Model, one thread). The native figures come from
// `cargo run --release --example superposed_eval`. Prints figures; asserts no timings.
//
//     node tests/bench/browser/superposed.mjs [--tokens 32] [--prompts 2]
//
// Needs crate/pkg-web, models/smollm2-135m and models/ngrams/default.ngram (scripts/setup.sh).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { evaluateInBenchPage } from "./server.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const { values: args } = parseArgs({
  options: { tokens: { type: "string", default: "32" }, prompts: { type: "string", default: "2" } },
});
for (const path of ["crate/pkg-web/decoding_playground_bg.wasm", "models/smollm2-135m/model.gguf", "models/ngrams/default.ngram"]) {
  if (!existsSync(join(root, path))) throw new Error(`${path} is missing: run scripts/setup.sh and build crate/pkg-web`);
}
const prompts = ["Once upon a time, there was a little", "The history of the city begins in", "The best way to learn a new language is"];

const result = await evaluateInBenchPage(
  root,
  async ({ maxTokens, prompts }) => {
    const model = await (await import("/tests/bench/browser/smollm2.js")).loadSmolLM2();
    const timed = async (config, prompt) => {
      const start = performance.now();
      await model.generate(prompt, { maxTokens, ...config });
      return (performance.now() - start) / 1000;
    };
    // Warm up V8's tiers on both paths before timing.
    await timed({ sampler: { temperature: 0, topK: null, topP: null } }, prompts[0]);
    await timed({ superposed: {} }, prompts[0]);
    const rows = [];
    for (const k of [3, 5]) {
      let superposedS = 0;
      let nucleusS = 0;
      for (const prompt of prompts) {
        superposedS += await timed({ superposed: { drafts: k } }, prompt);
        for (let seed = 0; seed < k; seed++)
          nucleusS += await timed({ sampler: { seed, temperature: 1, topK: null, topP: 0.9 } }, prompt);
      }
      rows.push({ k, superposedS, nucleusS });
    }
    return rows;
  },
  { maxTokens: Number(args.tokens), prompts: prompts.slice(0, Number(args.prompts)) },
);
console.log(`Superposed decoding in headless Chromium (SmolLM2, our wasm Model, ${args.tokens} tokens, ${args.prompts} prompts)`);
console.log("| k | one superposed run | k nucleus (top-p 0.9) runs | speed-up (paper >= 2.44x, goal >= 2.7x) |");
console.log("|---|---|---|---|");
for (const { k, superposedS, nucleusS } of result)
  console.log(`| ${k} | ${superposedS.toFixed(2)} s | ${nucleusS.toFixed(2)} s | ${(nucleusS / superposedS).toFixed(2)}x |`);
