// The page on the real default model, SmolLM2-135M's GGUF (98 MB of Q4_1/Q8_0 blocks, fetched
// from the preview server): its size before the download, download with progress, a greedy run,
// Mirostat, superposed drafts with the default n-gram store, compare mode, and a reload served
// from the browser cache. Prints the tok/s it saw.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { countWorkerSteps, generate, openPage, previewAndChromium, root, screenshot, waitReady, watchStream } from "./harness.mjs";

const session = previewAndChromium();

test("SmolLM2 in the page: load, generate, chart, tree, compare, cached reload", { timeout: 600_000 }, async (t) => {
  const prompt = encodeURIComponent("The capital of France is");
  const { context, page, errors } = await openPage(session.browser, `${session.server.url}?s=greedy&n=8&p=${prompt}`);
  // The page says what it would download and waits for a click; the download then shows its
  // progress in bytes, and what it fetches: the GGUF file and the n-gram store, their size.
  await page.waitForSelector("#load-model:not([hidden])", { timeout: 60_000 });
  assert.match(await page.locator("#model-status").innerText(), /^SmolLM2-135M-Instruct: 122 MB to download \(model\.gguf 98 MB \+ n-gram store 24 MB\)/);
  await page.click("#load-model");
  await page.waitForFunction(() => /Downloading: \d+/.test(document.querySelector("#load-text").textContent), null, { timeout: 60_000 });
  assert.match(await page.locator("#model-status").innerText(), /^Loading SmolLM2-135M-Instruct \(model\.gguf \+ n-gram store, 122 MB\)…$/);
  assert.match(await page.locator("#load-text").innerText(), /^Downloading: [\d.]+ [kM]?B of 98 MB$/);
  await screenshot(page, "smollm2-loading", "#model-panel");
  await waitReady(page, 300_000);
  const status = await page.locator("#model-status").innerText();
  assert.match(status, /^SmolLM2-135M-Instruct: ready in [\d.]+ s \(98 MB\) · llama · 135M parameters · byte-level BPE \(smollm\) tokenizer · GGUF · Q4_1 \/ Q8_0 blocks · CPU · wasm SIMD128 .* · vocabulary 49152 .* n-gram store [\d,]+ tokens$/);
  t.diagnostic(status);

  await watchStream(page);
  const greedy = await generate(page, 120_000);
  assert.equal(greedy.state, "done", greedy.status);
  assert.equal(greedy.tokens, 8);
  assert.equal(greedy.chartPoints, 8);
  assert.ok((await page.evaluate(() => new Set(window.__seen).size)) >= 4, "tokens streamed");
  assert.match(greedy.lastRun.text, /Paris/);
  t.diagnostic(`greedy, 8 tokens: ${JSON.stringify(greedy.lastRun.text)} · ${greedy.status} · header ${greedy.tps}`);
  await screenshot(page, "smollm2-greedy");

  // Stop takes effect within a step: the engine takes at most the step in flight after the
  // abort reaches the worker. (Steps posted before it may reach a busy page after the click.)
  await page.fill("#maxTokens", "200");
  const workerSteps = await countWorkerSteps(page);
  await page.click("#run");
  await page.waitForFunction(() => document.querySelectorAll("#tokens .tok").length >= 4, null, { timeout: 60_000 });
  const atClick = await page.evaluate(() => {
    document.querySelector("#stop").click();
    return document.querySelectorAll("#tokens .tok").length;
  });
  await page.waitForSelector('#run-status[data-state="stopped"]');
  const stoppedAt = await page.locator("#tokens .tok").count();
  const { steps, atAbort } = await workerSteps();
  t.diagnostic(`Stop: ${atClick} tokens at the click, ${stoppedAt} after; the worker had made ${atAbort} steps when the abort reached it, ${steps} in all`);
  assert.ok(atAbort !== null && steps - atAbort <= 1, `Stop within a step: ${steps - atAbort} steps after the abort reached the engine`);
  assert.equal(stoppedAt, steps, "the stopped run shows every step the worker made, and no other");

  // Chat: the Instruct model answers a question laid out by its GGUF's own chat template.
  assert.ok(await page.locator("#chat").isEnabled(), "SmolLM2's GGUF has a chat template");
  await page.fill("#prompt", "What is the capital of France?");
  await page.fill("#maxTokens", "12");
  await page.check("#chat");
  const chat = await generate(page, 120_000);
  assert.equal(chat.state, "done", chat.status);
  assert.match(chat.lastRun.text, /Paris/);
  assert.match(new URL(page.url()).search, /[?&]ch=1(&|$)/, "the link keeps chat on");
  t.diagnostic(`chat, greedy, 12 tokens: ${JSON.stringify(chat.lastRun.text)}`);
  await page.uncheck("#chat");

  // Mirostat v2 on a story: surprise hovers around τ (2 bits, below SmolLM2's own ~2.7, so
  // that Mirostat has something to cut).
  await page.goto(`${session.server.url}?s=mirostat2&t=1&tau=2&n=48&seed=4&p=${encodeURIComponent("Once upon a time, there was a little")}`);
  assert.equal(await waitReady(page, 120_000), false, "a cached model loads without a click");
  assert.match(await page.locator("#model-status").innerText(), /from the browser cache/, "a reload does not download the model again");
  const mirostat = await generate(page, 120_000);
  assert.equal(mirostat.chartPoints, mirostat.tokens);
  assert.ok(mirostat.chart.series.some((s) => s.label.startsWith("τ")));
  const surprise = mirostat.chart.series[0].values;
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  t.diagnostic(`Mirostat v2 τ 2, ${mirostat.tokens} tokens · mean surprise ${mean(surprise).toFixed(2)} bits (last half ${mean(surprise.slice(24)).toFixed(2)}) · ${mirostat.status}`);
  assert.ok(Math.abs(mean(surprise) - 2) < 0.75, `Mirostat holds the mean surprise near τ = 2: ${mean(surprise)}`);
  await screenshot(page, "smollm2-mirostat");
  await page.focus('#tokens .tok[tabindex="0"]');
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowRight");
  await screenshot(page, "smollm2-token-panel", ".output");

  // Superposed decoding with the default n-gram store: k final drafts, readable.
  await page.selectOption("#strategy", "superposed");
  await page.fill("#maxTokens", "10");
  const superposed = await generate(page, 120_000);
  assert.equal(superposed.state, "done", superposed.status);
  assert.equal(await page.locator("#tree").getAttribute("data-final-branches"), "3");
  const drafts = await page.locator("#finals .draft-text").allInnerTexts();
  assert.equal(drafts.length, 3);
  // Each draft's own perplexity under the model, next to the internal score: a fluent draft
  // of a story reads as a few dozen at most, not the internal 1e4.
  const metas = await page.locator("#finals .draft-meta").allInnerTexts();
  const modelPpl = metas.map((m) => Number(m.match(/model perplexity ([\d.]+) · superposed score/)?.[1]));
  assert.ok(modelPpl.every((p) => p >= 1 && p < 200), `the drafts' model perplexity: ${metas.join(" | ")}`);
  t.diagnostic(`superposed k=3: ${JSON.stringify(drafts)} · ${metas.join(" | ")} · ${superposed.status}`);
  await screenshot(page, "smollm2-superposed", "#tree-section");

  // Compare: greedy, top-k 5, Mirostat v2 on one prompt and seed.
  await page.fill("#maxTokens", "24");
  await page.click("#compare-preset");
  await page.click("#compare-run");
  await page.waitForSelector('#run-status[data-state="done"]', { timeout: 180_000 });
  const runs = await page.evaluate(() => window.__playground.compareRuns);
  const curves = await page.evaluate(() => window.__playground.compareChart.series.map((s) => `${s.label}: ppl ${s.values.at(-1).toFixed(2)}`));
  t.diagnostic(`compare, final running perplexity: ${curves.join(" · ")}`);
  assert.equal(runs.length, 3);
  for (const run of runs) {
    assert.equal(run.error, null);
    t.diagnostic(`compare: ${run.label}: ${run.steps} tokens, ${(run.wallMs / 1000).toFixed(2)} s wall, ${run.tokensPerSecond.toFixed(1)} tok/s`);
  }
  await screenshot(page, "smollm2-compare", "#compare-panel");
  assert.deepEqual(errors, []);
  await context.close();
});

test("SmolLM2 in the Score and Autocomplete views: the reference perplexity, and suggestions as one types", { timeout: 600_000 }, async (t) => {
  const paragraph = readFileSync(join(root, "models/fixtures/paragraph.txt"), "utf8").trim();
  const reference = JSON.parse(readFileSync(join(root, "models/fixtures/smollm2_reference.json"), "utf8")).paragraph.perplexity;
  const { context, page, errors } = await openPage(session.browser, `${session.server.url}?st=${encodeURIComponent(paragraph)}`);
  await waitReady(page, 300_000);
  assert.equal(await page.inputValue("#score-text"), paragraph, "the text from the URL");
  await page.click("#score-run");
  await page.waitForFunction(() => !document.querySelector("#score-run").disabled, null, { timeout: 300_000 });
  const status = await page.locator("#score-status").innerText();
  const perplexity = Number(status.match(/perplexity ([\d.]+)/)?.[1]);
  t.diagnostic(`Score view, the reference paragraph: ${status} (ONNX Runtime reference ${reference})`);
  assert.ok(Math.abs(perplexity / reference - 1) < 0.001, `perplexity ${perplexity} within 0.1 % of the reference ${reference}`);
  const counts = (await page.locator("#score-a .score-histogram").getAttribute("data-counts")).split(",").map(Number);
  assert.ok(counts[0] > counts[3], `a real text is mostly top-10 tokens: ${counts}`);
  await screenshot(page, "smollm2-score", "#score-panel");

  // Autocomplete: type a sentence's start, get three suggestions that continue it.
  await page.click("#autocomplete-text");
  await page.keyboard.type("The old sailor walked down to the", { delay: 40 });
  await page.waitForFunction(() => ["done", "error"].includes(document.querySelector("#autocomplete-status").dataset.state), null, { timeout: 120_000 });
  const suggestions = await page.locator("#autocomplete-suggestions .suggestion").allInnerTexts();
  const line = await page.locator("#autocomplete-status").innerText();
  t.diagnostic(`Autocomplete: ${JSON.stringify(suggestions)} · ${line}`);
  assert.match(line, /^3 suggestions in \d+ ms/);
  assert.equal(suggestions.length, 3);
  assert.ok(suggestions.every((s) => /[a-z]/i.test(s)), "suggestions are words");
  await page.keyboard.press("Tab");
  assert.equal(await page.inputValue("#autocomplete-text"), `The old sailor walked down to the${suggestions[0]}`);
  await screenshot(page, "smollm2-autocomplete", "#autocomplete-panel");

  // Mirostat with the page's defaults (τ 2, T 0.8) holds; with llama.cpp's τ 5 the page says
  // that SmolLM2 never gets there.
  for (const [tau, note] of [[null, false], [5, true]]) {
    await page.goto(`${session.server.url}?s=mirostat2${tau ? `&tau=${tau}` : ""}`);
    await waitReady(page, 120_000);
    const run = await generate(page, 120_000);
    assert.equal(run.state, "done", run.status);
    const text = (await page.locator("#mirostat-note").isHidden()) ? null : await page.locator("#mirostat-note").innerText();
    t.diagnostic(`Mirostat v2 ${tau ? `τ ${tau}` : "with the page's defaults"}: ${run.status} · note: ${text}`);
    assert.equal(text !== null, note, `the note for τ ${tau ?? "default"}: ${text}`);
  }
  assert.deepEqual(errors, []);
  await context.close();
});
