// A long run in wasm: 4096 tokens of SmolLM2 in one generation through the installed package
// (crate/tests/native/soak.rs does the same natively). Prints tok/s and the wasm memory at positions 1,
// 1k, 2k and 4k (figures, no timing assertions); checks that only the KV cache grows, by what
// its size predicts, and that the run ends as asked. Needs models/smollm2-135m (scripts/setup.sh).
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import init, { Model } from "decoding-playground";

const TOKENS = 4096;
const path = join(process.env.REPO, "models/smollm2-135m/model.gguf");

test(`${TOKENS} tokens of SmolLM2 in one run grow the wasm memory by the KV cache alone`, { timeout: 1_800_000 }, async (t) => {
  if (!existsSync(path)) {
    assert.notEqual(process.env.CI, "true", `CI=true but ${path} is missing`);
    return t.skip(`${path} is missing (scripts/setup.sh builds it)`);
  }
  const { memory } = await init();
  const model = await Model.fromGguf(readFileSync(path), { backend: "cpu" });
  const kvPerToken = model.kvCacheBytesPerToken;
  const prompt = "Once upon a time, there was a little";
  const promptTokens = model.encode(prompt).length;
  const mb = (b) => `${(b / 1e6).toFixed(0)} MB`;
  const rows = [];
  let steps = 0;
  let window = 0;
  let clock = performance.now();
  let first = 0;
  let last = null;
  await model.generate(prompt, { maxTokens: TOKENS, stopTokens: [], sampler: { seed: 7 } }, (step) => {
    steps += 1;
    last = step;
    if ([1, 1024, 2048, TOKENS].includes(steps)) {
      const bytes = memory.buffer.byteLength;
      if (steps === 1) first = bytes;
      const rate = ((steps - window) * 1000) / (performance.now() - clock);
      rows.push(`| ${steps} | ${rate.toFixed(1)} | ${mb(bytes)} | +${mb(bytes - first)} | ${mb((promptTokens + steps - 1) * kvPerToken)} |`);
      window = steps;
      clock = performance.now();
    }
  });
  t.diagnostic(`SmolLM2 in wasm (Node, CPU), one run of ${TOKENS} tokens; KV cache ${kvPerToken} bytes a position`);
  t.diagnostic("| position | tok/s since the last row | wasm memory | growth since position 1 | KV cache held |");
  for (const row of rows) t.diagnostic(row);
  assert.equal(steps, TOKENS);
  assert.equal(last.finish, "length");
  // wasm memory only grows (it never shrinks), in 64 KiB pages; tract builds each step's cache
  // as a new tensor from the old one, so two can be alive at once.
  const growth = memory.buffer.byteLength - first;
  const bound = 2 * TOKENS * kvPerToken + 32 * 2 ** 20;
  t.diagnostic(`growth ${mb(growth)}, bound ${mb(bound)} (2 × the KV cache + 32 MB)`);
  assert.ok(growth <= bound, `wasm memory grew by ${growth} bytes; the KV cache explains at most ${bound}`);
});
