// Branching on the tiny model: pin a token of a greedy run, take one of its alternatives, and the
// model goes on from there as a branch of the run; the tree lists it, shows either sequence again,
// puts the two side by side, and deletes the branch.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate, openTinyPage, previewAndChromium, screenshot } from "./harness.mjs";

const session = previewAndChromium();

const tokenTexts = (page) => page.evaluate(() => [...document.querySelectorAll("#tokens .tok[data-i]")].map((t) => t.textContent));
const rows = (page) => page.locator("#branches li.branch");

/** Waits for branch number `n` (counting the run) to be listed, then for its generation to end. */
async function branchEnded(page, n) {
  await page.waitForFunction((n) => document.querySelectorAll("#branches li.branch").length >= n, n, { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelector("#run-status")?.dataset.state !== "running", null, { timeout: 60_000 });
  return page.evaluate(() => ({ status: document.querySelector("#run-status").textContent, state: document.querySelector("#run-status").dataset.state }));
}

test("an alternative of a pinned token starts a branch, which the tree shows, compares and deletes", { timeout: 240_000 }, async () => {
  const { context, page, errors } = await openTinyPage(session, "n=12&s=greedy&p=Hello%20world");
  const run = await generate(page);
  assert.equal(run.state, "done", run.status);
  const runTokens = await tokenTexts(page);
  assert.equal(runTokens.length, 12);
  assert.equal(await rows(page).count(), 1, "the run alone");

  // Pin the fourth token and take its first alternative.
  await page.locator('#tokens .tok[data-i="3"]').click();
  const take = page.locator("#tokens + .token-panel .branch-take button").first();
  const altText = JSON.parse((await take.textContent()).replace(/ [\d.]+%$/, ""));
  await take.click();
  const branched = await branchEnded(page, 2);
  assert.equal(branched.state, "done", branched.status);
  const branchTokens = await tokenTexts(page);
  // The run's first three tokens, the one taken, and the rest of the run's length.
  assert.deepEqual(branchTokens.slice(0, 3), runTokens.slice(0, 3));
  assert.equal(branchTokens[3], altText);
  assert.equal(branchTokens.length, 12);
  assert.equal(await rows(page).count(), 2);
  assert.match(await rows(page).nth(1).locator(".branch-show").textContent(), /^at #4: /);
  assert.equal(await rows(page).nth(1).locator(".branch-show").getAttribute("aria-current"), "true");

  // Back to the run: its own tokens again.
  await rows(page).nth(0).locator(".branch-show").click();
  assert.deepEqual(await tokenTexts(page), runTokens);

  // Side by side: both sequences and one chart.
  await rows(page).nth(0).locator("input[type=checkbox]").check();
  await rows(page).nth(1).locator("input[type=checkbox]").check();
  await page.waitForSelector("#branch-compare:not([hidden])");
  assert.equal(await page.locator("#branch-columns .compare-column").count(), 2);
  const columns = await page.evaluate(() => [...document.querySelectorAll("#branch-columns .compare-column")].map((c) => [...c.querySelectorAll(".tok[data-i]")].map((t) => t.textContent)));
  assert.deepEqual(columns, [runTokens, branchTokens]);
  await screenshot(page, "branches", "#run-panel");

  await rows(page).nth(1).locator(".branch-delete").click();
  assert.equal(await rows(page).count(), 1);
  assert.ok(await page.locator("#branch-compare").isHidden());
  assert.deepEqual(errors, []);
  await context.close();
});

/** The label and tokens of every branch the tree lists, each shown in turn. */
async function treeContents(page) {
  const out = [];
  for (let i = 0; i < (await rows(page).count()); i++) {
    await rows(page).nth(i).locator(".branch-show").click();
    out.push({ label: await rows(page).nth(i).locator(".branch-show").textContent(), tokens: await tokenTexts(page) });
  }
  return out;
}

test("a link keeps eight branches in under 2 kB and reopens the same tree", { timeout: 300_000 }, async () => {
  const { context, page, errors } = await openTinyPage(session, "n=10&s=sample&k=4&seed=5&p=Once%20upon%20a%20time");
  assert.equal((await generate(page)).state, "done");
  for (let k = 0; k < 8; k++) {
    // Every other branch is a branch of the one before; the rest branch the run.
    if (k % 2 === 0) await rows(page).nth(0).locator(".branch-show").click();
    await page.locator(`#tokens .tok[data-i="${1 + k}"]`).click();
    await page.locator("#tokens + .token-panel .branch-take button").first().click();
    assert.equal((await branchEnded(page, k + 2)).state, "done");
  }
  const link = page.url();
  const tree = await treeContents(page);
  assert.equal(tree.length, 9);
  console.log(`a link with 8 branches: ${link.length} characters (${new URL(link).searchParams.get("br")})`);
  assert.ok(link.length < 2048, `${link.length} characters`);
  await context.close();

  const reopened = await openTinyPage(session, new URL(link).search.slice(1));
  await generate(reopened.page);
  await branchEnded(reopened.page, 9);
  assert.deepEqual(await treeContents(reopened.page), tree);
  assert.deepEqual([...errors, ...reopened.errors], []);
  await reopened.context.close();
});
