// The page's backends in headless Chromium. Without `--enable-unsafe-webgpu` Chromium gives no
// adapter: the page falls back to the CPU and says why. With it, SwiftShader (a software
// adapter) runs the model on WebGPU: the header says so, and greedy runs give the same tokens,
// surprise and running perplexity as the CPU, on the tiny model and on SmolLM2.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { generate, launch, openPage, previewAndChromium, waitReady } from "./harness.mjs";

const session = previewAndChromium();
let webgpuBrowser = null;
before(async () => {
  webgpuBrowser = await launch(["--enable-unsafe-webgpu"]);
});
after(async () => webgpuBrowser?.close());

const backendOf = (page) => page.evaluate(() => ({ label: document.querySelector("#backend").textContent, kind: document.querySelector("#backend").dataset.backend }));

/** A greedy run on `query`'s model and backend: its text and per-token surprise and entropy. */
async function greedyRun(browser, query, timeout = 60_000) {
  const { context, page, errors } = await openPage(browser, `${session.server.url}?s=greedy&${query}`);
  await waitReady(page, timeout);
  const backend = await backendOf(page);
  const run = await generate(page, timeout);
  assert.equal(run.state, "done", run.status);
  const series = (name) => run.chart.series.find((s) => s.label.toLowerCase().startsWith(name))?.values ?? [];
  await context.close();
  assert.deepEqual(errors, []);
  return { backend, text: run.lastRun.text, surprise: series("surprise"), perplexity: series("running perplexity") };
}

const maxDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe("backends", { timeout: 600_000 }, () => {
  test("without the WebGPU flag the page runs on the CPU and says why", async () => {
    const run = await greedyRun(session.browser, "model=tiny&n=6");
    assert.equal(run.backend.kind, "cpu");
    assert.match(run.backend.label, /^CPU · wasm SIMD128 \(not WebGPU: the browser offers no WebGPU adapter\)$/);
    // Forcing WebGPU where there is none is an error the page shows, not a crash.
    const { context, page } = await openPage(session.browser, `${session.server.url}?model=tiny&backend=webgpu`);
    await page.waitForSelector("#model-error:not([hidden])", { timeout: 60_000 });
    assert.match(await page.locator("#model-error").innerText(), /^Could not load tiny test model \(random weights\): WebGPU: the browser offers no WebGPU adapter/);
    await context.close();
  });

  test("the tiny model on WebGPU (SwiftShader) gives the CPU's greedy tokens", async () => {
    const gpu = await greedyRun(webgpuBrowser, "model=tiny&n=12");
    assert.equal(gpu.backend.kind, "webgpu");
    assert.match(gpu.backend.label, /^WebGPU · .*\(fallback adapter: software, slow\)$/);
    const cpu = await greedyRun(webgpuBrowser, "model=tiny&n=12&backend=cpu");
    assert.equal(cpu.backend.kind, "cpu");
    assert.equal(cpu.backend.label, "CPU · wasm SIMD128", "forced: no fallback reason");
    assert.equal(gpu.text, cpu.text);
    assert.equal(gpu.surprise.length, 12);
    assert.ok(maxDiff(gpu.surprise, cpu.surprise) < 0.01, `surprise ${gpu.surprise} vs ${cpu.surprise}`);
  });

  test("SmolLM2 on WebGPU (SwiftShader) gives the CPU's greedy tokens, surprise and perplexity", async (t) => {
    const query = `n=6&p=${encodeURIComponent("The capital of France is")}`;
    const gpu = await greedyRun(webgpuBrowser, query, 300_000);
    assert.equal(gpu.backend.kind, "webgpu");
    const cpu = await greedyRun(webgpuBrowser, `${query}&backend=cpu`, 300_000);
    const surprise = maxDiff(gpu.surprise, cpu.surprise);
    const perplexity = maxDiff(gpu.perplexity, cpu.perplexity) / Math.max(...cpu.perplexity);
    t.diagnostic(`SmolLM2 greedy on WebGPU ${JSON.stringify(gpu.text)}, CPU ${JSON.stringify(cpu.text)}; max |Δ surprise| ${surprise.toFixed(4)} bits, running perplexity within ${(100 * perplexity).toFixed(3)}%`);
    assert.equal(gpu.text, cpu.text);
    assert.equal(gpu.surprise.length, 6);
    assert.ok(surprise < 0.05 && perplexity < 0.01, `surprise ${surprise}, perplexity ${perplexity}`);
  });
});
