// Autocomplete and scoring in headless Chromium on SmolLM2 (our wasm Model, CPU, one thread):
// a scripted typing session, one suggestion set (superposed, k = 3, 4 tokens) per typed word,
// with the model's prefix reuse on and off; and `score` throughput on the reference paragraph
// against a prefill of the same text. Prints figures; asserts no timings.
//
//     node tests/bench/browser/autocomplete.mjs
//
// Needs crate/pkg-web, models/smollm2-135m and models/ngrams/default.ngram (scripts/setup.sh).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { evaluateInBenchPage } from "./server.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
for (const path of ["crate/pkg-web/decoding_playground_bg.wasm", "models/smollm2-135m/model.gguf", "models/ngrams/default.ngram"]) {
  if (!existsSync(join(root, path))) throw new Error(`${path} is missing: run scripts/setup.sh and build crate/pkg-web`);
}
const typed = "The old sailor walked down to the harbour at dawn, looking for a boat that would take him across the sea to the island where he was born.";
const paragraph = readFileSync(join(root, "models/fixtures/paragraph.txt"), "utf8").trimEnd();

const result = await evaluateInBenchPage(
  root,
  async ({ typed, paragraph }) => {
    const model = await (await import("/tests/bench/browser/smollm2.js")).loadSmolLM2();
    const config = { maxTokens: 4, superposed: { drafts: 3 } };
    const quantile = (v, q) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor(q * v.length))];
    const session = async (reuse) => {
      model.reusePrefix = reuse;
      const latencies = [];
      const words = typed.split(" ");
      for (let i = 1; i <= words.length; i++) {
        const start = performance.now();
        await model.generate(words.slice(0, i).join(" "), config);
        latencies.push(performance.now() - start);
      }
      return { median: quantile(latencies, 0.5), p90: quantile(latencies, 0.9), keystrokes: latencies.length };
    };
    await session(false); // warm-up
    const without = await session(false);
    const withReuse = await session(true);
    model.reusePrefix = false;
    let start = performance.now();
    const scored = await model.score(paragraph);
    const scoreS = (performance.now() - start) / 1000;
    start = performance.now();
    await model.start(paragraph, { maxTokens: 1 });
    const prefillS = (performance.now() - start) / 1000;
    return { without, withReuse, tokens: scored.tokens.length, scoreS, prefillS, perplexity: scored.perplexity };
  },
  { typed, paragraph },
);
const { without, withReuse, tokens, scoreS, prefillS, perplexity } = result;
console.log(`Autocomplete in headless Chromium (SmolLM2, CPU wasm, superposed k = 3, 4 tokens per suggestion set, ${without.keystrokes} words typed)`);
console.log("| | median | p90 |");
console.log("|---|---|---|");
console.log(`| word → suggestions, prefix reuse off | ${without.median.toFixed(0)} ms | ${without.p90.toFixed(0)} ms |`);
console.log(`| word → suggestions, prefix reuse on | ${withReuse.median.toFixed(0)} ms | ${withReuse.p90.toFixed(0)} ms |`);
console.log(`score: ${tokens} tokens in ${scoreS.toFixed(2)} s = ${(tokens / scoreS).toFixed(1)} tok/s (perplexity ${perplexity.toFixed(3)}); prefill of the same text: ${(tokens / prefillS).toFixed(1)} tok/s`);
