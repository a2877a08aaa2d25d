// The probe on the tiny model: pin a run's token, type a continuation, and see its probability
// at that position. Probing the token greedy decoding chose there must give the run's own
// probability and rank 1; any other text a result of its own; a context whose text reads as
// other tokens than the run's is flagged; and while a generation runs the probe waits, saying why.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate, openTinyPage, previewAndChromium, screenshot } from "./harness.mjs";

const session = previewAndChromium();

const panel = (page) => page.locator("#tokens + .token-panel");

/** Types `text` in the pinned panel's probe and waits for its answer. */
async function probe(page, text) {
  await page.fill("#tokens + .token-panel .probe-text", text);
  await page.press("#tokens + .token-panel .probe-text", "Enter");
  await page.waitForSelector('#tokens + .token-panel .probe-status:is([data-state="done"], [data-state="error"])', { timeout: 60_000 });
  return page.evaluate(() => {
    const status = document.querySelector("#tokens + .token-panel .probe-status");
    return {
      state: status.dataset.state,
      line: status.textContent,
      prob: Number(status.dataset.prob),
      firstRank: Number(status.dataset.firstRank),
      sameTokens: status.dataset.sameTokens,
      rows: [...document.querySelectorAll("#tokens + .token-panel .probe-tokens tr")].slice(1).map((r) => r.textContent),
    };
  });
}

test("the probe scores a continuation at a pinned token's position", { timeout: 180_000 }, async () => {
  // The tiny model's greedy text after this prompt is whole tokens ("ld" again and again), whose
  // text reads back as the same tokens: the probe's context is then exactly what the run fed.
  const { context, page, errors } = await openTinyPage(session, "n=8&s=greedy&p=Hello%20world");
  const run = await generate(page);
  assert.equal(run.state, "done", run.status);
  // A token past the first (so that the context holds generated text), whose whole text shows.
  const at = await page.evaluate(() =>
    [...document.querySelectorAll("#tokens .tok")].findIndex((t, i) => i >= 2 && !t.classList.contains("marker") && !t.querySelector(".newline")),
  );
  assert.ok(at >= 2, "a token with text past the first two");
  const token = page.locator(`#tokens .tok >> nth=${at}`);
  const chosen = await token.textContent();

  // A click pins the panel and puts the focus in the probe's field.
  await token.click();
  assert.equal(await panel(page).getAttribute("data-pinned"), String(at));
  assert.equal(await page.evaluate(() => document.activeElement?.className), "probe-text");
  const own = Number(await panel(page).locator(".facts dd[data-value]").getAttribute("data-value"));

  const same = await probe(page, chosen);
  assert.equal(same.state, "done", same.line);
  assert.ok(Math.abs(same.prob - own) < 1e-4, `the probe's ${same.prob} vs the run's ${own}`);
  assert.equal(same.firstRank, 1, "greedy chose the top token");
  assert.equal(same.rows.length, 1);
  assert.equal(same.sameTokens, "true");
  assert.match(same.line, /^[\d.e+-]+ % as the next text \([\d.]+ bits, 1 token\); its first token ranks #1 here\.$/);

  const other = await probe(page, " zebra crossing");
  assert.equal(other.state, "done", other.line);
  assert.ok(other.prob > 0 && other.prob < same.prob, `${other.prob}`);
  assert.ok(other.rows.length >= 2 && other.firstRank >= 1, JSON.stringify(other));
  await screenshot(page, "probe", ".output");

  // An empty text does nothing: the last answer stays.
  await page.fill("#tokens + .token-panel .probe-text", "");
  await page.press("#tokens + .token-panel .probe-text", "Enter");
  assert.equal(await panel(page).locator(".probe-status").textContent(), other.line);

  // Escape unpins and gives the focus back to the token; hover then works as before.
  await page.press("#tokens + .token-panel .probe-text", "Escape");
  assert.equal(await panel(page).getAttribute("data-pinned"), null);
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.i), String(at));
  await page.hover("#tokens .tok >> nth=0");
  assert.match(await panel(page).innerText(), /#1\b/);
  assert.equal(await panel(page).locator(".probe").count(), 0, "a hover panel has no probe");
  // Enter pins too; a click elsewhere unpins.
  await page.focus("#tokens .tok >> nth=1");
  await page.keyboard.press("Enter");
  assert.equal(await panel(page).getAttribute("data-pinned"), "1");
  await page.mouse.click(5, 5);
  await panel(page).waitFor({ state: "hidden" });
  assert.deepEqual(errors, []);
  await context.close();
});

test("a context that reads as other tokens than the run's is flagged", { timeout: 120_000 }, async () => {
  // Greedy gives "P se selourishlourish…" here: "lourishlourish" as text splits otherwise.
  const { context, page, errors } = await openTinyPage(session, "n=8&s=greedy&p=The%20cat%20sat%20on%20the");
  await generate(page);
  assert.equal(await page.locator("#tokens .tok >> nth=4").textContent(), "lourish");
  await page.locator("#tokens .tok >> nth=4").click();
  const probed = await probe(page, "lourish");
  assert.equal(probed.state, "done", probed.line);
  assert.equal(probed.sameTokens, "false");
  assert.match(probed.line, /reads as other tokens than the run's/);
  assert.deepEqual(errors, []);
  await context.close();
});

test("while a generation runs, the probe is disabled and says why", { timeout: 120_000 }, async () => {
  const { context, page, errors } = await openTinyPage(session, "n=400&s=greedy");
  await page.click("#run");
  // Pin a token as soon as there is one, and read the probe in the same task: the run cannot end between.
  const during = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const poll = () => {
          const tok = document.querySelector("#tokens .tok");
          if (!tok) return requestAnimationFrame(poll);
          tok.click();
          const form = document.querySelector("#tokens + .token-panel .probe");
          resolve({ run: document.querySelector("#run-status").dataset.state, disabled: form.querySelector("button").disabled, note: form.querySelector(".probe-note").textContent });
        };
        poll();
      }),
  );
  assert.deepEqual(during, { run: "running", disabled: true, note: "A generation is running: probe once it has ended." });
  // Once the run has ended, the probe still pinned runs (the Stop button would unpin it: a click elsewhere).
  await page.waitForSelector('#run-status[data-state="done"]', { timeout: 60_000 });
  await page.waitForSelector("#tokens + .token-panel .probe-note", { state: "hidden" });
  const after = await probe(page, " and");
  assert.equal(after.state, "done", after.line);
  assert.deepEqual(errors, []);
  await context.close();
});
