// The Score and Autocomplete views on the tiny model. Score: a text's tokens coloured by surprise, then by rank bucket,
// its perplexity and histogram; a token's numbers on hover; a second text side by side; the
// settings in the URL; a run's output sent to it; and a text too short to score shows the
// crate's error. Autocomplete: k suggestions, Tab, typing again, its settings in the URL.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate, openTinyPage, previewAndChromium, screenshot, waitReady } from "./harness.mjs";

const session = previewAndChromium();

/** What a column of the Score view shows: "#score-a" (the text) or "#score-b" (the second). */
const scored = (page, column = "#score-a") =>
  page.evaluate((column) => {
    const $ = (selector) => document.querySelector(`${column} ${selector}`);
    return {
      state: $(".score-status").dataset.state,
      status: $(".score-status").textContent,
      tokens: [...document.querySelectorAll(`${column} .score-tokens .tok`)].map((t) => ({ text: t.textContent, color: t.style.backgroundColor })),
      lead: $(".score-tokens .prompt")?.textContent ?? "",
      counts: $(".score-histogram").dataset.counts,
    };
  }, column);

async function score(page) {
  await page.click("#score-run");
  await page.waitForFunction(() => !document.querySelector("#score-run").disabled, null, { timeout: 60_000 });
  return scored(page);
}

test("the Score view colours a text by surprise and by rank, with its perplexity", { timeout: 180_000 }, async () => {
  const { context, page, errors } = await openTinyPage(session, "s=greedy&n=6");
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

  await page.hover("#score-a .score-tokens .tok >> nth=2");
  const panel = await page.locator("#score-a .token-panel").innerText();
  assert.match(panel, /rank of this token\s+\d+ of 512/);
  assert.match(panel, /Top alternatives/);
  await screenshot(page, "score-view", "#score-panel");

  // A second text beside the first, after the same context, and a line comparing the two.
  const generated = "the the the the the the the the the the the the";
  await page.fill("#score-text-b", generated);
  const first = await score(page);
  const second = await scored(page, "#score-b");
  assert.equal(first.state, "done", first.status);
  assert.equal(second.state, "done", second.status);
  assert.equal(second.lead + second.tokens.map((t) => t.text).join(""), generated);
  const [ppl1, ppl2] = [first, second].map((r) => Number(r.status.match(/perplexity ([\d.]+)/)[1]));
  const comparison = await page.locator("#score-compare").innerText();
  assert.match(comparison, /^The second text's perplexity is [\d.]+× (lower than )?the first's \(([\d.]+) vs ([\d.]+)\); top-10 tokens: \d+ % vs \d+ %\.$/);
  assert.deepEqual(comparison.match(/\(([\d.]+) vs ([\d.]+)\)/).slice(1).map(Number), [ppl2, ppl1]);
  await screenshot(page, "score-two-texts", "#score-panel");

  // The URL keeps both texts and the colouring: a reload (or a shared link) restores them.
  const url = new URL(page.url());
  assert.equal(url.searchParams.get("st"), null, "the default text is not written");
  assert.equal(url.searchParams.get("st2"), generated);
  assert.equal(url.searchParams.get("sm"), "rank");
  await page.reload();
  await waitReady(page);
  assert.equal(await page.inputValue("#score-text"), text);
  assert.equal(await page.inputValue("#score-text-b"), generated);
  assert.equal(await page.inputValue("#score-mode"), "rank");
  await page.fill("#score-text-b", "");

  // Too short to score without a context: the crate's message.
  await page.fill("#score-text", "a");
  const refused = await score(page);
  assert.equal(refused.state, "error");
  assert.match(refused.status, /^Cannot score this text: text must be at least two tokens/);

  // A run's output, scored after its prompt: every token gets figures (no lead).
  const run = await generate(page);
  assert.equal(run.state, "done", run.status);
  await page.click("#score-output");
  await page.waitForFunction(() => document.querySelector("#score-status").dataset.state === "done" && !document.querySelector("#score-run").disabled, null, { timeout: 60_000 });
  const output = await scored(page);
  assert.equal(output.lead, "");
  assert.match(output.status, /tokens scored after \d+ context tokens/);
  assert.equal(await page.inputValue("#score-text"), run.lastRun.text);
  assert.deepEqual(errors, []);
  await context.close();
});

test("the Autocomplete view suggests drafts as one types; Tab inserts one, typing again refreshes", { timeout: 180_000 }, async () => {
  const { context, page, errors } = await openTinyPage(session);
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
  // More suggestions, of another length: the next set follows, and the URL keeps the choice.
  await page.fill("#autocomplete-drafts", "4");
  await page.fill("#autocomplete-tokens", "2");
  await page.locator("#autocomplete-tokens").dispatchEvent("change");
  await settled();
  assert.equal((await suggestions()).length, 4);
  assert.match(await page.locator("#autocomplete-status").innerText(), /^4 suggestions in \d+ ms \(one superposed run\); 4 nucleus runs took/);
  const params = new URL(page.url()).searchParams;
  assert.deepEqual([params.get("ak"), params.get("an")], ["4", "2"]);
  // A run from the Generate panel still works after autocomplete.
  const run = await generate(page);
  assert.equal(run.state, "done", run.status);
  assert.deepEqual(errors, []);
  await context.close();
});
