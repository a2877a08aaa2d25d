// The page's backends in headless Chromium. Without `--enable-unsafe-webgpu` Chromium gives no
// adapter: the page falls back to the CPU and says why. With it, Chromium offers SwiftShader, a
// software adapter many times slower than the CPU path: `auto` leaves it and says why, and
// `?backend=webgpu` forces it. Forced, every view completes with the CPU's tokens for the same
// seed (greedy and sampled runs, compare, Score, Autocomplete), on the tiny model and on SmolLM2,
// with no page error while the page reads the model's properties and token texts mid-step.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { generate, launch, openPage, previewAndChromium, recordWorkerRequests, waitReady } from "./harness.mjs";

const session = previewAndChromium();
let webgpuBrowser = null;
before(async () => {
  webgpuBrowser = await launch(["--enable-unsafe-webgpu"]);
});
after(async () => webgpuBrowser?.close());

const backendOf = (page) => page.evaluate(() => ({ label: document.querySelector("#backend").textContent, kind: document.querySelector("#backend").dataset.backend }));

/** The page on `query`, its model loaded, with its backend. */
async function openReady(browser, query, timeout = 60_000) {
  const opened = await openPage(browser, `${session.server.url}?${query}`, { init: recordWorkerRequests });
  await waitReady(opened.page, timeout);
  return { ...opened, backend: await backendOf(opened.page) };
}

/** Edits the prompt every 150 ms while a run goes on, as a user typing meanwhile: each edit has
 *  the worker describe the sampler for the form. Puts the prompt back once the run has ended. */
function editPromptDuringTheRun() {
  const prompt = document.querySelector("#prompt");
  const original = prompt.value;
  let edits = 0;
  const edit = (value) => {
    prompt.value = value;
    prompt.dispatchEvent(new Event("input", { bubbles: true }));
  };
  const timer = setInterval(() => {
    const running = document.querySelector("#run-status").dataset.state === "running";
    if (running) edit(edits++ % 2 ? original : `${original} `);
    else if (edits > 0) {
      edit(original);
      clearInterval(timer);
    }
  }, 150);
}

/** The step records of the page's last run, from its JSON export. */
async function exportedSteps(page) {
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export")]);
  return JSON.parse(await readFile(await download.path(), "utf8")).runs[0].steps;
}

/** A run on `query`'s model and backend: its text, per-token surprise, step records, and the
 *  requests the page sent its worker meanwhile. With `meddle`, the prompt is edited during it. */
async function pageRun(browser, query, { timeout = 60_000, meddle = false } = {}) {
  const { context, page, errors, backend } = await openReady(browser, query, timeout);
  if (meddle) await page.evaluate(editPromptDuringTheRun);
  const run = await generate(page, timeout);
  assert.equal(run.state, "done", run.status);
  const steps = await exportedSteps(page);
  // Each reply to a request sent mid-run carries the model's properties, read in the worker
  // while a step may hold the engine.
  const requests = await page.evaluate(() => window.__workerRequests.filter((r) => r.running && r.type !== "generate" && r.type !== "abort").map((r) => r.type));
  const series = (name) => run.chart.series.find((s) => s.label.toLowerCase().startsWith(name))?.values ?? [];
  await context.close();
  assert.deepEqual(errors, []);
  return { backend, requests, steps, tokens: run.tokens, tokensPerSecond: run.lastRun.tokensPerSecond, text: run.lastRun.text, surprise: series("surprise"), perplexity: series("running perplexity") };
}

const greedyRun = (browser, query, timeout) => pageRun(browser, `s=greedy&${query}`, { timeout });

const maxDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

/**
 * Where two sampled runs of one seed part, checked to be a draw at a near-tie. On SmolLM2 the
 * backends' logits differ by up to ~1e-2 (the CPU kernels quantise activations to int16), so a
 * draw that close to the boundary between two tokens can pick either. Up to and at the parting
 * both backends must have seen the same distribution: equal entropy, and at the parting each
 * chosen token at the same probability on both.
 */
function parting(gpu, cpu) {
  const length = Math.min(gpu.length, cpu.length);
  let at = 0;
  while (at < length && gpu[at].token === cpu[at].token) at += 1;
  for (let i = 0; i <= Math.min(at, length - 1); i += 1) {
    assert.ok(Math.abs(gpu[i].entropyBits - cpu[i].entropyBits) < 0.05, `step ${i}: entropy ${gpu[i].entropyBits} on WebGPU, ${cpu[i].entropyBits} on the CPU`);
  }
  if (at < length) {
    const prob = (step, token) => step.top.find((a) => a.token === token)?.prob ?? 0;
    for (const token of [gpu[at].token, cpu[at].token]) {
      assert.ok(Math.abs(prob(gpu[at], token) - prob(cpu[at], token)) < 0.01, `step ${at}: token ${token} at ${prob(gpu[at], token)} on WebGPU, ${prob(cpu[at], token)} on the CPU`);
    }
  }
  return at;
}

describe("backends", { timeout: 600_000 }, () => {
  test("without the WebGPU flag the page runs on the CPU and says why", async () => {
    const run = await greedyRun(session.browser, "model=tiny&n=6");
    assert.equal(run.backend.kind, "cpu");
    assert.match(run.backend.label, /^CPU · wasm SIMD128 · \d+ threads? \(not WebGPU: the browser offers no WebGPU adapter\)$/);
    // Forcing WebGPU where there is none is an error the page shows, not a crash.
    const { context, page } = await openPage(session.browser, `${session.server.url}?model=tiny&backend=webgpu`);
    await page.waitForSelector("#model-error:not([hidden])", { timeout: 60_000 });
    assert.match(await page.locator("#model-error").innerText(), /^Could not load tiny test model \(random weights\): WebGPU: the browser offers no WebGPU adapter/);
    await context.close();
  });

  test("auto leaves a software adapter (SwiftShader) to the CPU, says why, and runs", async () => {
    const run = await greedyRun(webgpuBrowser, "model=tiny&n=6");
    assert.equal(run.backend.kind, "cpu");
    assert.match(run.backend.label, /^CPU · wasm SIMD128 · \d+ threads? \(not WebGPU: the WebGPU adapter is a software fallback.*, slower than the CPU; backend "webgpu" runs on it anyway\)$/);
    assert.equal(run.tokens, 6);
  });

  test("the tiny model on WebGPU (SwiftShader) gives the CPU's greedy tokens", async () => {
    const gpu = await greedyRun(webgpuBrowser, "model=tiny&n=12&backend=webgpu");
    assert.equal(gpu.backend.kind, "webgpu");
    assert.match(gpu.backend.label, /^WebGPU · .*\(fallback adapter: software, slow\)$/);
    const cpu = await greedyRun(webgpuBrowser, "model=tiny&n=12&backend=cpu");
    assert.equal(cpu.backend.kind, "cpu");
    assert.match(cpu.backend.label, /^CPU · wasm SIMD128 · \d+ threads?$/, "forced: no fallback reason");
    assert.equal(gpu.text, cpu.text);
    assert.equal(gpu.surprise.length, 12);
    assert.ok(maxDiff(gpu.surprise, cpu.surprise) < 0.01, `surprise ${gpu.surprise} vs ${cpu.surprise}`);
  });

  test("SmolLM2 on WebGPU (SwiftShader) gives the CPU's greedy tokens, surprise and perplexity", async (t) => {
    const query = `n=6&p=${encodeURIComponent("The capital of France is")}`;
    const gpu = await greedyRun(webgpuBrowser, `${query}&backend=webgpu`, 300_000);
    assert.equal(gpu.backend.kind, "webgpu");
    const cpu = await greedyRun(webgpuBrowser, `${query}&backend=cpu`, 300_000);
    const surprise = maxDiff(gpu.surprise, cpu.surprise);
    const perplexity = maxDiff(gpu.perplexity, cpu.perplexity) / Math.max(...cpu.perplexity);
    t.diagnostic(`SmolLM2 greedy on WebGPU ${JSON.stringify(gpu.text)}, CPU ${JSON.stringify(cpu.text)}; max |Δ surprise| ${surprise.toFixed(4)} bits, running perplexity within ${(100 * perplexity).toFixed(3)}%`);
    assert.equal(gpu.text, cpu.text);
    assert.equal(gpu.surprise.length, 6);
    assert.ok(surprise < 0.05 && perplexity < 0.01, `surprise ${surprise}, perplexity ${perplexity}`);
  });

  test("SmolLM2, the demo page's default run: auto runs on the CPU; forced WebGPU completes, on the CPU's distribution", async (t) => {
    const auto = await pageRun(webgpuBrowser, "seed=0", { timeout: 300_000 });
    assert.equal(auto.backend.kind, "cpu");
    assert.match(auto.backend.label, /not WebGPU: the WebGPU adapter is a software fallback/);
    const gpu = await pageRun(webgpuBrowser, "seed=0&backend=webgpu", { timeout: 300_000 });
    assert.equal(gpu.backend.kind, "webgpu");
    const decodes = gpu.requests.filter((r) => r === "decode").length;
    const same = parting(gpu.steps, auto.steps);
    t.diagnostic(`SmolLM2, the page's defaults (sampled, ${gpu.tokens} tokens): auto on the CPU ${auto.tokensPerSecond?.toFixed(1)} tok/s, forced WebGPU (SwiftShader) ${gpu.tokensPerSecond?.toFixed(2)} tok/s with ${decodes} token texts asked mid-run; the same tokens for ${same} of 48 (a draw at a near-tie parts them)`);
    assert.equal(gpu.tokens, 48);
    assert.ok(decodes > 0, "the page asked for token texts while steps ran on the GPU");
  });

  test("forced WebGPU: a sampled 48-token run with the page's defaults, the prompt edited meanwhile, gives the CPU's tokens", async (t) => {
    const query = "model=tiny&n=48&seed=11";
    const gpu = await pageRun(webgpuBrowser, `${query}&backend=webgpu`, { meddle: true });
    assert.equal(gpu.backend.kind, "webgpu");
    const cpu = await pageRun(webgpuBrowser, `${query}&backend=cpu`);
    const count = (name) => gpu.requests.filter((r) => r === name).length;
    t.diagnostic(`48 sampled tokens on WebGPU; requests during the run: ${count("decode")} token texts, ${count("describeSampler")} sampler descriptions; max |Δ surprise| ${maxDiff(gpu.surprise, cpu.surprise).toFixed(4)} bits`);
    assert.ok(count("decode") > 0 && count("describeSampler") > 0, `token texts and form edits reached the worker mid-run: ${gpu.requests}`);
    assert.equal(gpu.tokens, 48);
    assert.equal(parting(gpu.steps, cpu.steps), 48, "the same tokens");
    assert.equal(gpu.text, cpu.text);
    assert.ok(maxDiff(gpu.surprise, cpu.surprise) < 0.01);
  });

  /** Compare mode's three preset strategies: each column's state and tokens. */
  async function compareRun(query) {
    const { context, page, errors, backend } = await openReady(webgpuBrowser, query);
    await page.click("#compare-preset");
    await page.click("#compare-run");
    await page.waitForSelector('#run-status[data-state="done"]', { timeout: 120_000 });
    const columns = await page.evaluate(() =>
      [...document.querySelectorAll(".compare-column")].map((c) => ({ state: c.dataset.state, label: c.querySelector("h3").textContent, text: [...c.querySelectorAll(".tok")].map((t) => t.textContent).join("") })),
    );
    await context.close();
    assert.deepEqual(errors, []);
    return { backend, columns };
  }

  // The backends' logits differ by ~1e-3 (the CPU kernels quantise activations to int16), so a
  // sampled choice whose draw falls that close to a boundary between two tokens may differ. As
  // the native fixtures do, the seeds here are ones with no such near-tie: at seed 3 the top-k
  // column parts at its 12th token, the greedy and Mirostat columns still agree.
  test("forced WebGPU: compare mode runs three strategies to the end with the CPU's tokens", async () => {
    const query = "model=tiny&n=24&seed=1";
    const gpu = await compareRun(`${query}&backend=webgpu`);
    assert.equal(gpu.backend.kind, "webgpu");
    const cpu = await compareRun(`${query}&backend=cpu`);
    assert.equal(gpu.columns.length, 3);
    assert.ok(gpu.columns.every((c) => c.state === "done" && c.text.length > 0), JSON.stringify(gpu.columns));
    assert.deepEqual(gpu.columns, cpu.columns);
  });

  /** Score a text, then three autocomplete suggestions, in one page. */
  async function scoreAndAutocomplete(query) {
    const { context, page, errors, backend } = await openReady(webgpuBrowser, query);
    await page.fill("#score-text", "Once upon a time there was a little fox who lived in the woods.");
    await page.click("#score-run");
    await page.waitForFunction(() => !document.querySelector("#score-run").disabled, null, { timeout: 120_000 });
    const scored = await page.evaluate(() => ({
      state: document.querySelector("#score-a .score-status").dataset.state,
      status: document.querySelector("#score-a .score-status").textContent,
      tokens: [...document.querySelectorAll("#score-a .score-tokens .tok")].map((t) => t.textContent),
    }));
    await page.click("#autocomplete-text");
    await page.keyboard.type("Once upon a time", { delay: 30 });
    await page.waitForFunction(() => ["done", "error"].includes(document.querySelector("#autocomplete-status").dataset.state), null, { timeout: 120_000 });
    const suggest = await page.evaluate(() => ({
      state: document.querySelector("#autocomplete-status").dataset.state,
      suggestions: [...document.querySelectorAll("#autocomplete-suggestions .suggestion")].map((b) => b.textContent),
    }));
    await context.close();
    assert.deepEqual(errors, []);
    return { backend, scored, suggest };
  }

  test("forced WebGPU: Score and Autocomplete complete with the CPU's perplexity and suggestions", async (t) => {
    const gpu = await scoreAndAutocomplete("model=tiny&backend=webgpu");
    assert.equal(gpu.backend.kind, "webgpu");
    const cpu = await scoreAndAutocomplete("model=tiny&backend=cpu");
    const perplexity = (status) => Number(status.match(/perplexity ([\d.]+)/)?.[1]);
    t.diagnostic(`Score: WebGPU "${gpu.scored.status}", CPU "${cpu.scored.status}"; suggestions ${JSON.stringify(gpu.suggest.suggestions)}`);
    assert.equal(gpu.scored.state, "done", gpu.scored.status);
    assert.deepEqual(gpu.scored.tokens, cpu.scored.tokens);
    assert.ok(Math.abs(perplexity(gpu.scored.status) / perplexity(cpu.scored.status) - 1) < 1e-3, `${gpu.scored.status} vs ${cpu.scored.status}`);
    assert.equal(gpu.suggest.state, "done");
    assert.equal(gpu.suggest.suggestions.length, 3);
    assert.deepEqual(gpu.suggest.suggestions, cpu.suggest.suggestions);
  });
});
