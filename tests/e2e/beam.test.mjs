// Beam search on the tiny model: as the run's strategy, its tree (kept beams, finished
// hypotheses, pruned candidates faded) and its hypotheses with their scores; in compare mode, a
// column of hypotheses beside a sampled strategy.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate, openTinyPage, previewAndChromium, screenshot } from "./harness.mjs";

const session = previewAndChromium();

test("beam search draws its tree and lists its hypotheses, best first", { timeout: 120_000 }, async () => {
  const { context, page, errors } = await openTinyPage(session, "s=beam&kb=3&n=8&p=Hello%20world");
  assert.equal(await page.inputValue("#f-beams"), "3");
  const run = await generate(page);
  assert.equal(run.state, "done", run.status);
  assert.match(run.status, /^3 hypotheses after \d steps in [\d.]+ s · best score -[\d.]+$/);
  assert.equal(await page.locator("#tree-heading").textContent(), "Beam tree");
  assert.ok(await page.locator("#tokens-section").isHidden());
  // Each step ranks 2k = 6 candidates: k kept, the rest finished or pruned.
  const counts = await page.evaluate(() => Object.fromEntries(["live", "finished", "pruned"].map((s) => [s, document.querySelectorAll(`#tree .tree-node.${s}`).length])));
  assert.ok(counts.live >= 3 && counts.pruned >= 3, JSON.stringify(counts));
  assert.equal(counts.live + counts.finished + counts.pruned, 6 * Number(/after (\d) steps/.exec(run.status)[1]));
  const finals = await page.locator("#finals li .draft-meta").allTextContents();
  assert.equal(finals.length, 3);
  const scores = finals.map((meta) => Number(/score (-[\d.]+)/.exec(meta)[1]));
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a), "best first");
  assert.equal(await page.locator('#tree .tree-node[data-final-rank="0"]').count(), 1);
  await screenshot(page, "beam-tree", "#tree-section");
  assert.deepEqual(errors, []);
  await context.close();
});

test("beam search runs in compare mode beside a sampled strategy", { timeout: 120_000 }, async () => {
  const { context, page, errors } = await openTinyPage(session, "n=6&cmp=s%3Dbeam%26kb%3D2&cmp=s%3Dgreedy");
  assert.equal(await page.locator("#compare-list .chip").count(), 2);
  await page.click("#compare-run");
  await page.waitForSelector('#run-status[data-state="done"]', { timeout: 60_000 });
  assert.equal(await page.locator('.compare-column[data-state="done"]').count(), 2);
  const beam = page.locator(".compare-column").nth(0);
  assert.match(await beam.locator("h3").textContent(), /^beam search k 2/);
  assert.equal(await beam.locator(".finals li").count(), 2);
  assert.match(await beam.locator(".compare-stats").textContent(), /^2 hypotheses · wall [\d.]+ s · best score -[\d.]+$/);
  assert.equal(await page.locator(".compare-column").nth(1).locator(".tok").count(), 6);
  assert.ok(await page.locator("#compare-note").isVisible());
  assert.deepEqual(errors, []);
  await context.close();
});
