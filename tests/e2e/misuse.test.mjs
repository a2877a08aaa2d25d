// The page under misuse, on the tiny model: a double-clicked Generate, a model switched during a
// run, a model file of a foreign architecture, a prompt longer than the context, and a trap in
// the engine (forced through the package's test hook). Each gives a clear message and no hang,
// and the page stays usable after it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { dropFiles, generate, openTinyPage, previewAndChromium, recordWorkerRequests, screenshot, waitReady } from "./harness.mjs";

const session = previewAndChromium();
const tinyPage = (query) => openTinyPage(session, query);
const runState = (page) => page.evaluate(() => ({ state: document.querySelector("#run-status").dataset.state, text: document.querySelector("#run-status").textContent, runs: window.__playground.runs }));
const settledRun = (page, timeout = 60_000) =>
  page.waitForFunction(() => ["done", "stopped", "error"].includes(document.querySelector("#run-status").dataset.state), null, { timeout });
/** After the misuse, the page runs as before: a whole run of `tokens`. */
async function assertRunsAgain(page, tokens) {
  await page.fill("#maxTokens", String(tokens));
  const again = await generate(page);
  assert.equal(again.state, "done", again.status);
  assert.equal(again.tokens, tokens);
}

test("a double-clicked Generate runs once, to the end", { timeout: 60_000 }, async () => {
  const { context, page, errors } = await openTinyPage(session, "n=40&seed=1", { init: recordWorkerRequests });
  await page.dblclick("#run");
  await settledRun(page);
  const generations = await page.evaluate(() => window.__workerRequests.filter((r) => r.type === "generate").length);
  assert.equal(generations, 1, "the worker was asked for one generation");
  const after = await runState(page);
  assert.equal(after.state, "done", after.text);
  assert.equal(after.runs, 1);
  assert.equal(await page.locator("#tokens .tok").count(), 40);
  assert.deepEqual(errors, []);
  await context.close();
});

test("switching models during a run stops the run and loads the new model", { timeout: 90_000 }, async () => {
  const { context, page, errors } = await tinyPage("n=400&seed=2");
  await page.click("#run");
  await page.waitForFunction(() => document.querySelectorAll("#tokens .tok").length >= 5, null, { timeout: 30_000 });
  await dropFiles(page, [["other-model.gguf", "url:/models/tiny/model.gguf"]]);
  await settledRun(page);
  const stopped = await runState(page);
  assert.equal(stopped.state, "stopped", stopped.text);
  assert.match(stopped.text, /^Stopped after \d+ tokens\.$/);
  await page.waitForFunction(() => /^other-model\.gguf: ready/.test(document.querySelector("#model-status").textContent), null, { timeout: 60_000 });
  await assertRunsAgain(page, 6);
  assert.deepEqual(errors, []);
  await context.close();
});

test("a model of a foreign architecture is refused by name, and the loaded one stays", { timeout: 60_000 }, async () => {
  const { context, page, errors } = await tinyPage("n=4");
  // general.architecture is the first "llama" in the file.
  await dropFiles(page, [["gpt2.gguf", "patch:/models/tiny/model.gguf:llama:gpt-2"]]);
  await page.waitForSelector("#model-error:not([hidden])");
  assert.match(await page.locator("#model-error").innerText(), /^Could not load gpt2\.gguf: model error: .*gpt-2.*\(still using tiny test model \(random weights\)\)$/);
  await screenshot(page, "misuse-foreign-architecture", "#model-panel");
  await waitReady(page);
  assert.equal((await generate(page)).tokens, 4);
  assert.deepEqual(errors, []);
  await context.close();
});

test("a pasted prompt longer than the context is refused clearly; a long one that fits runs", { timeout: 60_000 }, async () => {
  const { context, page, errors } = await tinyPage("n=4");
  await page.fill("#prompt", "the whale ".repeat(2000));
  const refused = await generate(page);
  assert.equal(refused.state, "error", refused.status);
  assert.match(await page.locator("#param-error").innerText(), /^Invalid parameter: the prompt has \d+ tokens but the context holds 512, and one more is needed to generate$/);
  await screenshot(page, "misuse-long-prompt");
  await page.fill("#prompt", "the whale ".repeat(30));
  const fits = await generate(page);
  assert.equal(fits.state, "done", fits.status);
  assert.equal(fits.tokens, 4);
  assert.deepEqual(errors, []);
  await context.close();
});

test("a trap in the engine restarts the worker, reloads the model, and the page goes on", { timeout: 120_000 }, async () => {
  const { context, page } = await tinyPage("n=400&seed=3");
  // The reason is the panic as the engine reports it, or (should the worker's own error event
  // arrive first) the worker's failure: either way the page restarts and says so.
  const RESTARTED = /^The engine stopped \(the (engine failed \(panicked at .*forced by the e2e test|worker failed: ).*\) and was restarted; the model is loading again\.$/s;
  const status = () => page.evaluate(() => ({ run: document.querySelector("#run-status").textContent, model: document.querySelector("#model-status").textContent }));
  const trap = async () => {
    // Through Playwright's handle on the worker, which a loaded machine may not have ready at
    // once: try again until the trap lands, and say what the page showed if it never does.
    for (let attempt = 1; ; attempt++) {
      const worker = page.workers().at(-1);
      const error = await worker?.evaluate(() => self.__panicForTesting("forced by the e2e test")).then(() => "no trap", (e) => e);
      const restarted = await page
        .waitForFunction((pattern) => new RegExp(pattern, "s").test(document.querySelector("#run-status").textContent), RESTARTED.source, { timeout: 10_000 })
        .then(() => true, () => false);
      if (restarted) return;
      assert.ok(attempt < 3, `no restart after ${attempt} traps (last: ${error}); the page shows ${JSON.stringify(await status())}`);
    }
  };
  // Mid-run (the tiny model may also have finished by the time the trap lands: the page must
  // restart either way), and then while idle, where no call is waiting to hear the trap.
  await page.click("#run");
  await page.waitForFunction(() => document.querySelectorAll("#tokens .tok").length >= 3, null, { timeout: 30_000 });
  await trap();
  await screenshot(page, "misuse-trap");
  await waitReady(page, 60_000);
  await assertRunsAgain(page, 5);
  await trap();
  await waitReady(page, 60_000);
  await assertRunsAgain(page, 3);
  await context.close();
});

test("?ctx caps the context: the panel shows the KV cache it bounds, and a long run ends at it", { timeout: 60_000 }, async () => {
  const { context, page, errors } = await tinyPage("ctx=24&n=100&s=greedy");
  // 2 layers × keys and values × 2 KV heads × 16 dims × 4 bytes = 512 bytes a token.
  assert.match(await page.locator("#model-status").innerText(), / · context 24 \(KV cache 512 B a token, 12 kB full\) · /);
  const run = await generate(page);
  assert.equal(run.state, "done", run.status);
  assert.match(run.status, / · ended at the context limit$/);
  assert.ok(run.tokens > 0 && run.tokens < 24, `${run.tokens} tokens after the prompt, within 24`);
  assert.match(page.url(), /[?&]ctx=24/, "links keep the cap");
  assert.deepEqual(errors, []);
  await context.close();
});
