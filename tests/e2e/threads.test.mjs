// The engine's threads in the page: `?threads=2` on the cross-origin isolated preview runs the
// threaded build on two threads, and gives the tokens and surprises of one thread to the last
// bit; a page served without the isolation headers runs single-threaded and says why.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate, openPage, previewAndChromium, waitReady } from "./harness.mjs";

const session = previewAndChromium();

/** A seeded sampled run on `model` with `threads`: its text, its chart (every step's surprise
 *  and running perplexity, as the engine reported them), the header's backend and isolation. */
async function run(model, threads, { isolated = true, tokens = 12 } = {}) {
  const prompt = encodeURIComponent("Once upon a time");
  const url = `${session.server.url}?model=${model}&backend=cpu&threads=${threads}&s=sample&seed=7&t=1.3&n=${tokens}&p=${prompt}`;
  const { context, page, errors } = await openPage(session.browser, url, {
    // The same page without COOP and COEP, as a static host that cannot send them serves it.
    route: isolated ? undefined : stripIsolation,
  });
  try {
    await waitReady(page, 300_000);
    const result = await generate(page, 300_000);
    assert.equal(result.state, "done", result.status);
    assert.deepEqual(errors, []);
    return {
      text: result.lastRun.text,
      chart: result.chart,
      backend: await page.locator("#backend").innerText(),
      isolated: await page.evaluate(() => self.crossOriginIsolated),
      cores: await page.evaluate(() => navigator.hardwareConcurrency),
    };
  } finally {
    await context.close();
  }
}

async function stripIsolation(route) {
  const response = await route.fetch();
  const headers = { ...response.headers() };
  delete headers["cross-origin-opener-policy"];
  delete headers["cross-origin-embedder-policy"];
  await route.fulfill({ response, headers });
}

for (const model of ["tiny", "smollm2"]) {
  test(`${model}: 2 threads give one thread's tokens and surprises, bit for bit`, { timeout: 600_000 }, async (t) => {
    const one = await run(model, 1);
    const two = await run(model, 2);
    t.diagnostic(`1 thread: ${one.backend}; 2 threads: ${two.backend}`);
    assert.ok(two.isolated, "the preview server isolates the page");
    assert.match(one.backend, /CPU · wasm SIMD128 · 1 thread$/);
    assert.match(two.backend, /CPU · wasm SIMD128 · 2 threads$/);
    assert.equal(two.text, one.text);
    assert.ok(one.chart.x.length > 0, "the run charted its steps");
    assert.deepEqual(two.chart, one.chart);
  });
}

test("more threads than cores are capped at the cores, and the header says so", { timeout: 300_000 }, async () => {
  const many = await run("tiny", 64, { tokens: 4 });
  const cores = many.cores;
  assert.ok(cores < 64, `this browser reports ${cores} cores`);
  assert.match(many.backend, new RegExp(`CPU · wasm SIMD128 · ${cores} threads? \\(at most the ${cores} cores this browser reports\\)$`));
});

test("a page without cross-origin isolation runs on one thread, and says why", { timeout: 300_000 }, async () => {
  const plain = await run("tiny", 2, { isolated: false });
  assert.equal(plain.isolated, false);
  assert.match(plain.backend, /CPU · wasm SIMD128 · 1 thread \(the page is not cross-origin isolated/);
  assert.equal(plain.text, (await run("tiny", 1)).text);
});
