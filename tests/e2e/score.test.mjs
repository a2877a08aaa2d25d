// The Score and Autocomplete views on the tiny model. Score: a text's tokens coloured by surprise, then by rank bucket,
// its perplexity and histogram; a token's numbers on hover; a run's output sent to it; and a
// text too short to score shows the crate's error.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate, openPage, previewAndChromium, screenshot, waitReady } from "./harness.mjs";

const session = previewAndChromium();

const scored = (page) =>
  page.evaluate(() => ({
    state: document.querySelector("#score-status").dataset.state,
    status: document.querySelector("#score-status").textContent,
    tokens: [...document.querySelectorAll("#score-tokens .tok")].map((t) => ({ text: t.textContent, color: t.style.backgroundColor })),
    lead: document.querySelector("#score-tokens .prompt")?.textContent ?? "",
    counts: document.querySelector("#score-histogram").dataset.counts,
  }));

async function score(page) {
  await page.click("#score-run");
  await page.waitForFunction(() => ["done", "error"].includes(document.querySelector("#score-status").dataset.state), null, { timeout: 60_000 });
  return scored(page);
}

test("the Score view colours a text by surprise and by rank, with its perplexity", { timeout: 180_000 }, async () => {
  const { context, page, errors } = await openPage(session.browser, `${session.server.url}?model=tiny&s=greedy&n=6`);
  await waitReady(page);
  const text = "The whale surfaced beside the boat, and the old sailor smiled at the sea.";
  await page.fill("#score-text", text);
  const bySurprise = await score(page);
  assert.equal(bySurprise.state, "done", bySurprise.status);
  assert.match(bySurprise.status, /^\d+ tokens scored in [\d.]+ s · perplexity [\d.]+ · mean surprise [\d.]+ bits$/);
  assert.equal(bySurprise.lead + bySurprise.tokens.map((t) => t.text).join(""), text, "every token shown, the first one as the lead");
  const counts = bySurprise.counts.split(",").map(Number);
  assert.equal(counts.reduce((a, b) => a + b, 0), bySurprise.tokens.length, "the histogram counts every scored token");

  await page.selectOption("#score-mode", "rank");
  const byRank = await scored(page);
  const bucketColors = new Set(byRank.tokens.map((t) => t.color));
  assert.ok(bucketColors.size <= 4 && byRank.tokens.some((t, i) => t.color !== bySurprise.tokens[i].color), "recoloured by rank bucket");

  await page.hover("#score-tokens .tok >> nth=2");
  const panel = await page.locator("#score-panel .token-panel").innerText();
  assert.match(panel, /rank of this token\s+\d+ of 512/);
  assert.match(panel, /Top alternatives/);
  await screenshot(page, "score-view", "#score-panel");

  // Too short to score without a context: the crate's message.
  await page.fill("#score-text", "a");
  const refused = await score(page);
  assert.equal(refused.state, "error");
  assert.match(refused.status, /^Cannot score this text: text must be at least two tokens/);

  // A run's output, scored after its prompt: every token gets figures (no lead).
  const run = await generate(page);
  assert.equal(run.state, "done", run.status);
  await page.click("#score-output");
  await page.waitForFunction(() => document.querySelector("#score-status").dataset.state === "done", null, { timeout: 60_000 });
  const output = await scored(page);
  assert.equal(output.lead, "");
  assert.match(output.status, /tokens scored after \d+ context tokens/);
  assert.equal(await page.inputValue("#score-text"), run.lastRun.text);
  assert.deepEqual(errors, []);
  await context.close();
});

test("the Autocomplete view suggests drafts as one types; Tab inserts one, typing again refreshes", { timeout: 180_000 }, async () => {
  const { context, page, errors } = await openPage(session.browser, `${session.server.url}?model=tiny`);
  await waitReady(page);
  const suggestions = () => page.evaluate(() => [...document.querySelectorAll("#autocomplete-suggestions .suggestion")].map((b) => b.textContent));
  const settled = () =>
    page.waitForFunction(() => ["done", "error"].includes(document.querySelector("#autocomplete-status").dataset.state), null, { timeout: 60_000 });
  await page.click("#autocomplete-text");
  await page.keyboard.type("Once upon a time", { delay: 30 });
  await settled();
  const status = await page.locator("#autocomplete-status").innerText();
  assert.match(status, /^3 suggestions in \d+ ms \(one superposed run\); 3 nucleus runs took \d+ ms \([\d.]+×\)$/);
  const first = await suggestions();
  assert.equal(first.length, 3);
  await screenshot(page, "autocomplete", "#autocomplete-panel");

  await page.keyboard.press("Tab");
  assert.equal(await page.inputValue("#autocomplete-text"), `Once upon a time${first[0]}`, "Tab inserts the first suggestion");
  await settled();
  // Typing on cancels what is in flight and suggests for the new text.
  await page.keyboard.type(" and", { delay: 30 });
  await settled();
  assert.equal((await suggestions()).length, 3);
  assert.equal(await page.locator("#autocomplete-status").getAttribute("data-state"), "done");
  // A run from the Generate panel still works after autocomplete.
  const run = await generate(page);
  assert.equal(run.state, "done", run.status);
  assert.deepEqual(errors, []);
  await context.close();
});
