// Shared by the end-to-end tests: serves the built page with `vite preview` on a free port and
// drives Debian's Chromium through playwright-core (never a downloaded browser).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";
import { chromium } from "playwright-core";

export const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
export const artifacts = join(root, "tests/e2e/artifacts");

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts `vite preview` on the built page; resolves once it answers. */
export async function startPreview() {
  if (!existsSync(join(root, "dist/index.html"))) throw new Error("dist/ is missing: run `npm run build` first");
  const port = await freePort();
  const child = spawn(process.execPath, [join(root, "node_modules/vite/bin/vite.js"), "preview", "--host", "127.0.0.1", "--port", String(port), "--strictPort"], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  // 127.0.0.1 is a secure context, so the page may use the Cache API.
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`vite preview exited: ${output}`);
    try {
      if ((await fetch(url)).ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`vite preview did not answer: ${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, close: () => child.kill() };
}

/** Headless Chromium, without WebGPU unless `extraArgs` has `--enable-unsafe-webgpu`. */
export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", ...extraArgs],
  });
}

/**
 * For a test file: before its tests, serves the page and launches Chromium; after them, closes
 * both. The returned object's `server` and `browser` are set once `before` has run.
 */
export function previewAndChromium() {
  const session = { server: null, browser: null };
  before(async () => {
    session.server = await startPreview();
    session.browser = await launch();
  });
  after(async () => {
    await session.browser?.close();
    session.server?.close();
  });
  return session;
}

/**
 * A fresh context (its own cache) and page; page errors fail the test that reads `errors`.
 * `requests`, an array, gets "METHOD /path" for every request of the page and its workers.
 */
export async function openPage(browser, url, { init, requests, route } = {}) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
  if (init) await context.addInitScript(init);
  // `route(route)` answers every request of the page and its workers (Playwright's route handler).
  if (route) await context.route("**/*", route);
  if (requests) context.on("request", (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(url);
  return { context, page, errors };
}

/**
 * Waits for the model; when the page offers a big one (SmolLM2) instead of loading it, clicks
 * "Load model" first, as a user would. Resolves to whether it had to click.
 */
export async function waitReady(page, timeout = 60_000) {
  const offered = await page
    .waitForSelector('#model-status[data-state="ready"], #load-model:not([hidden])', { timeout })
    .then((element) => element.evaluate((e) => e.id === "load-model"));
  if (offered) await page.click("#load-model");
  await page.waitForSelector('#model-status[data-state="ready"]', { timeout });
  return offered;
}

/** The page on the tiny test model (`?model=tiny&<query>`), its model loaded. */
export async function openTinyPage(session, query = "", options = {}) {
  const opened = await openPage(session.browser, `${session.server.url}?model=tiny${query ? `&${query}` : ""}`, options);
  await waitReady(opened.page);
  return opened;
}

/**
 * An init script for `openPage`: records in `window.__workerRequests` each request the page
 * sends its engine worker ("generate", "abort", a call's method name…), with whether a run was
 * going on, so that a test can count what the page asked for rather than what it showed.
 */
export function recordWorkerRequests() {
  window.__workerRequests = [];
  const post = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (message, transfer) {
    const running = document.querySelector("#run-status")?.dataset.state === "running";
    window.__workerRequests.push({ type: message?.type === "call" ? message.method : message?.type, running });
    return post.call(this, message, transfer);
  };
}

/** An init script for `openPage`: records in `window.__panelTexts` every text the model panel
 *  shows ("<status> | <progress line>"), in order, from the first one on. */
export function recordPanelTexts() {
  window.__panelTexts = [];
  new MutationObserver(() => {
    const status = document.querySelector("#model-status");
    const load = document.querySelector("#load-text");
    if (!status || !load) return;
    const text = `${status.textContent} | ${load.textContent}`;
    if (window.__panelTexts.at(-1) !== text) window.__panelTexts.push(text);
  }).observe(document, { subtree: true, childList: true, characterData: true });
}

/** Counts tokens as they arrive, to tell a stream from one final batch. */
export async function watchStream(page) {
  await page.evaluate(() => {
    const stream = document.querySelector("#tokens");
    window.__seen = [];
    new MutationObserver(() => window.__seen.push(stream.querySelectorAll(".tok").length)).observe(stream, { childList: true });
  });
}

/** Clicks Generate and waits for the run to end; returns what the page reports. */
export async function generate(page, timeout = 60_000) {
  const before = await page.evaluate(() => window.__playground.runs);
  await page.click("#run");
  await page.waitForFunction((n) => window.__playground.runs > n || document.querySelector("#run-status")?.dataset.state === "error", before, { timeout });
  return page.evaluate(() => ({
    status: document.querySelector("#run-status").textContent,
    state: document.querySelector("#run-status").dataset.state,
    tokens: document.querySelectorAll("#tokens .tok").length,
    chartPoints: Number(document.querySelector("#chart").dataset.points),
    chart: window.__playground.chart,
    lastRun: window.__playground.lastRun,
    tps: document.querySelector("#tps").textContent,
  }));
}

export async function screenshot(page, name, selector) {
  mkdirSync(artifacts, { recursive: true });
  const path = join(artifacts, `${name}.png`);
  // The sticky header would float over an element's picture.
  const style = ".top { position: static !important; }";
  if (selector) await page.locator(selector).screenshot({ path, style });
  else await page.screenshot({ path, fullPage: true, style });
  // Chromium's compositor can keep the screenshot's scroll offset and jump back to it on the
  // next mouse press, moving the page under the pointer between mousedown and mouseup. A
  // scroll from the page puts both back in step.
  await page.evaluate(() => window.scrollTo(0, 0));
  return path;
}

/**
 * Drops files on the model panel's drop zone, as a user dragging them from disk. Each entry is
 * [name, content]: text, "url:<path>" (the server's file), "half:<path>" (its first half, a
 * truncated copy) or "patch:<path>:<from>:<to>" (the file with the first `from` replaced by
 * `to`, as bytes of the same length).
 */
export function dropFiles(page, files) {
  return page.evaluate(async (files) => {
    const transfer = new DataTransfer();
    for (const [name, content] of files) {
      const [, scheme, path, from, to] = content.match(/^(url|half|patch):([^:]*)(?::([^:]*):(.*))?$/) ?? [];
      let bytes = new TextEncoder().encode(content);
      if (scheme) bytes = new Uint8Array(await (await fetch(path)).arrayBuffer());
      if (scheme === "half") bytes = bytes.subarray(0, bytes.length >> 1);
      if (scheme === "patch") {
        const needle = new TextEncoder().encode(from);
        const at = bytes.findIndex((_, i) => needle.every((b, j) => bytes[i + j] === b));
        bytes.set(new TextEncoder().encode(to), at);
      }
      transfer.items.add(new File([bytes], name));
    }
    document.querySelector("#dropzone").dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }, files);
}

/**
 * Counts, inside the page's engine worker, the steps it posts and how many it had posted when
 * an abort reached it. A stop is judged there, where it holds whatever the machine's load: the
 * engine takes at most one step after the abort arrives (the one in flight), while steps posted
 * before it may still be on their way to the page. Resolves to a reader of both counts.
 */
export async function countWorkerSteps(page) {
  const worker = page.workers().at(-1);
  if (!worker) throw new Error("the page has no engine worker yet");
  await worker.evaluate(() => {
    self.__steps = 0;
    self.__stepsAtAbort = null;
    const post = self.postMessage.bind(self);
    self.postMessage = (message, transfer) => {
      if (message?.type === "step") self.__steps += 1;
      return post(message, transfer);
    };
    self.addEventListener("message", (event) => {
      if (event.data?.type === "abort" && self.__stepsAtAbort === null) self.__stepsAtAbort = self.__steps;
    });
  });
  return () => worker.evaluate(() => ({ steps: self.__steps, atAbort: self.__stepsAtAbort }));
}
