// Keystroke → suggestions through the page itself, on SmolLM2 in headless Chromium: the
// Autocomplete view, its 250 ms debounce, the engine worker, and the cancelling of the work in
// flight when typing goes on. A scripted typist types a sentence word by word (60 ms between
// keys) and waits for each word's suggestions before the next, with the cache of the typed
// prefix kept (`ar=1`, the page's default) and dropped (`ar=0`). Prints figures; asserts no
// timings.
//
//     npm run build && node tests/bench/browser/autocomplete-page.mjs
//
// Needs dist/ (npm run build) and models/smollm2-135m (scripts/setup.sh).
import { launch, openPage, startPreview, waitReady } from "../../e2e/harness.mjs";

const typed = "The old sailor walked down to the harbour at dawn, looking for a boat that would take him across the sea to the island where he was born.";
const server = await startPreview();
const browser = await launch();
const quantile = (v, q) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor(q * v.length))];

/** One typing session; per word, the ms from its last keystroke to the suggestions on screen,
 *  and the view's own figure for the superposed run (what the status line says). */
async function session(page) {
  await page.fill("#autocomplete-text", "");
  await page.evaluate(() => {
    const box = document.querySelector("#autocomplete-text");
    const list = document.querySelector("#autocomplete-suggestions");
    window.__typing = { last: 0, shown: [] };
    box.addEventListener("input", () => (window.__typing.last = performance.now()));
    new MutationObserver(() => {
      if (list.childElementCount > 0) window.__typing.shown.push(performance.now() - window.__typing.last);
    }).observe(list, { childList: true });
  });
  await page.click("#autocomplete-text");
  const screen = [];
  const engine = [];
  for (const [i, word] of typed.split(" ").entries()) {
    const before = await page.evaluate(() => window.__typing.shown.length);
    await page.keyboard.type(i ? ` ${word}` : word, { delay: 60 });
    await page.waitForFunction((n) => window.__typing.shown.length > n, before, { timeout: 60_000 });
    screen.push(await page.evaluate(() => window.__typing.shown.at(-1)));
    const status = await page.locator("#autocomplete-status").innerText();
    engine.push(Number(status.match(/suggestions in (\d+) ms/)?.[1] ?? NaN));
  }
  return { screen, engine };
}

const results = {};
for (const reuse of [true, false]) {
  const { context, page } = await openPage(browser, `${server.url}?ar=${reuse ? 1 : 0}`);
  await waitReady(page, 300_000);
  await session(page); // warm-up: the first runs compile and fill caches
  results[reuse ? "on" : "off"] = await session(page);
  await context.close();
}
await browser.close();
server.close();

const words = typed.split(" ").length;
console.log(`Autocomplete through the page (SmolLM2, CPU wasm in its worker, k = 3, 4 tokens per suggestion, ${words} words typed at 60 ms a key)`);
console.log("| prefix cache | keystroke → suggestions on screen, median | p90 | of which the superposed run, median | p90 |");
console.log("|---|---|---|---|---|");
for (const [name, { screen, engine }] of Object.entries(results)) {
  console.log(`| ${name} | ${quantile(screen, 0.5).toFixed(0)} ms | ${quantile(screen, 0.9).toFixed(0)} ms | ${quantile(engine, 0.5).toFixed(0)} ms | ${quantile(engine, 0.9).toFixed(0)} ms |`);
}
console.log("(on screen = the 250 ms debounce + cancelling the previous set's nucleus timing runs + the superposed run + drawing)");
