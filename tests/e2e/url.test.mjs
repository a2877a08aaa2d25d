// Models named by a URL: typed in the model panel, or carried by a link (`?model=<url>`), served by
// another origin as Hugging Face serves them (CORS, and a redirect to the file's host). The tiny
// model whole and split in three by gguf-py (models/tiny/split/), a link that waits for a click,
// and the refusals: a 404, a server without CORS, a file that is no GGUF, one too large to hold.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { dropFiles, generate, openPage, openTinyPage, previewAndChromium, recordPanelTexts, root, waitReady } from "./harness.mjs";

const session = previewAndChromium();

/** Another origin than the page's: `/cors/<path under models/>` with CORS headers, `/hf/<path>`
 *  a redirect to it (as huggingface.co's resolve links are), `/nocors/<path>` without them,
 *  `/cors/huge.gguf` a HEAD of 5 GB, `/cors/page.gguf` an HTML page. Every request is logged. */
function modelHost() {
  const host = { url: null, requests: [], server: null };
  host.server = createServer(async (request, response) => {
    const { pathname } = new URL(request.url, "http://x");
    host.requests.push(`${request.method} ${pathname}`);
    const [, kind, path] = pathname.match(/^\/(cors|nocors|hf)\/(.*)$/) ?? [];
    if (kind === "hf") {
      response.writeHead(302, { Location: `/cors/${path}`, "Access-Control-Allow-Origin": "*" });
      return response.end();
    }
    const headers = kind === "cors" ? { "Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "ETag" } : {};
    if (path === "huge.gguf") {
      // Its size alone must stop the page: a GET fails the test (it is logged, and refused).
      response.writeHead(request.method === "HEAD" ? 200 : 500, request.method === "HEAD" ? { ...headers, "Content-Length": String(5e9) } : headers);
      return response.end();
    }
    let body;
    try {
      body = path === "page.gguf" ? Buffer.from("<!doctype html><title>Not a model</title>") : await readFile(join(root, "models", path));
    } catch {
      response.writeHead(404, "Not Found", headers);
      return response.end();
    }
    response.writeHead(200, { ...headers, "Content-Length": String(body.length), ETag: `"${path}-${body.length}"` });
    response.end(request.method === "HEAD" ? undefined : body);
  });
  before(() => new Promise((resolve) => host.server.listen(0, "127.0.0.1", () => {
    host.url = `http://127.0.0.1:${host.server.address().port}`;
    resolve();
  })));
  after(() => host.server.close());
  return host;
}

const host = modelHost();
const statusText = (page) => page.locator("#model-status").innerText();
const errorText = (page) => page.locator("#model-error").innerText();

/** Types `url` in the Load from URL field and submits it. */
async function loadUrl(page, url) {
  await page.fill("#model-url", url);
  await page.click("#model-url-load");
}

/** Waits until the panel shows `name` ready, or an error (which then fails the test with it). */
async function waitLoaded(page, name) {
  await page.waitForFunction(
    (name) => document.querySelector("#model-status").textContent.startsWith(`${name}: ready`) || !document.querySelector("#model-error").hidden,
    name,
    { timeout: 60_000 },
  );
  assert.ok(await page.locator("#model-error").isHidden(), await errorText(page));
}

/** Waits for the panel's error, once the page has reported a failed load. */
async function waitError(page, pattern) {
  await page.waitForFunction((source) => new RegExp(source).test(document.querySelector("#model-error").textContent), pattern.source, { timeout: 60_000 });
  return errorText(page);
}

describe("models from a URL", { timeout: 180_000 }, () => {
  test("a URL typed in the panel loads from another origin, its size shown first, and the link carries it", async () => {
    const { context, page, errors } = await openTinyPage(session, "n=8&s=greedy", { init: recordPanelTexts });
    const served = await generate(page);
    const url = `${host.url}/hf/tiny/model.gguf`;
    await loadUrl(page, url);
    const name = `model.gguf (${host.url})`;
    await waitLoaded(page, name);
    const texts = await page.evaluate(() => window.__panelTexts);
    const sized = texts.findIndex((t) => t.includes(`loading ${name} (model.gguf, 96 kB)…`));
    const fetching = texts.findIndex((t, i) => i > sized && /\| Downloading: /.test(t));
    assert.ok(sized >= 0 && fetching > sized, `the size before the download: ${texts.join("\n")}`);
    assert.match(await statusText(page), / · llama · 107k parameters · byte-level BPE \(smollm\) tokenizer · GGUF · Q4_1 \/ Q8_0 blocks · /);
    assert.equal(new URL(page.url()).searchParams.get("model"), url);
    const linked = await generate(page);
    assert.equal(linked.lastRun.text, served.lastRun.text, "the same file gives the same greedy tokens");
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("a split GGUF loads from its first part's URL, and from its dropped parts", async () => {
    const { context, page, errors } = await openTinyPage(session, "n=8&s=greedy");
    const served = await generate(page);
    const before = host.requests.length;
    await loadUrl(page, `${host.url}/cors/tiny/split/model-00001-of-00003.gguf`);
    await waitLoaded(page, `model-00001-of-00003.gguf (${host.url})`);
    const parts = [1, 2, 3].map((n) => `/cors/tiny/split/model-0000${n}-of-00003.gguf`);
    assert.deepEqual(host.requests.slice(before).filter((r) => r.startsWith("GET")).sort(), parts.map((p) => `GET ${p}`));
    assert.match(await statusText(page), /ready in [\d.]+ s \(96 kB\) · llama · 107k parameters · /);
    assert.equal((await generate(page)).lastRun.text, served.lastRun.text);
    // Dropped: the parts in any order; one missing is named.
    const dropped = (n) => [`model-0000${n}-of-00003.gguf`, `url:/models/tiny/split/model-0000${n}-of-00003.gguf`];
    await dropFiles(page, [dropped(3), dropped(1)]);
    assert.match(await waitError(page, /missing/), /the model is split into 3 parts: model-00002-of-00003\.gguf is missing; give them all together$/);
    await dropFiles(page, [dropped(2), dropped(3), dropped(1)]);
    await waitLoaded(page, "model-00001-of-00003.gguf");
    assert.equal((await generate(page)).lastRun.text, served.lastRun.text);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("?model=<url> downloads nothing until the visitor clicks, and shows the origin and size", async () => {
    const url = `${host.url}/cors/tiny/model.gguf`;
    const requests = [];
    const { context, page, errors } = await openPage(session.browser, `${session.server.url}?model=${encodeURIComponent(url)}&n=4`, { requests });
    await page.waitForSelector("#load-model:not([hidden])");
    assert.equal(
      await statusText(page),
      `This link asks to load a model from ${host.url}. model.gguf (${host.url}): 96 kB to download (model.gguf 96 kB), then kept in this browser's cache. Load it only if you trust where it comes from.`,
    );
    assert.ok(await page.locator("#run").isDisabled());
    // Small as it is, it was only sized: once the page's requests settle, none fetched it.
    await page.waitForLoadState("networkidle");
    assert.deepEqual(requests.filter((r) => r.endsWith("/cors/tiny/model.gguf")), ["HEAD /cors/tiny/model.gguf"]);
    await page.click("#load-model");
    await waitLoaded(page, `model.gguf (${host.url})`);
    assert.ok(requests.includes("GET /cors/tiny/model.gguf"));
    assert.equal((await generate(page)).state, "done");
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("a URL that fails says why, and the loaded model stays", async () => {
    const { context, page, errors } = await openTinyPage(session, "n=4");
    const still = / \(still using tiny test model \(random weights\)\)$/;
    const failures = [
      [`${host.url}/cors/tiny/missing.gguf`, /^Could not load missing\.gguf \(.*\): missing\.gguf cannot be fetched: HTTP 404 Not Found/],
      [`${host.url}/nocors/tiny/model.gguf`, /^Could not load model\.gguf \(.*\): model\.gguf cannot be fetched: the server did not answer, or does not allow other sites to fetch its files \(CORS\)/],
      [`${host.url}/cors/page.gguf`, /^Could not load page\.gguf \(.*\): model error: not a GGUF file/],
    ];
    for (const [url, message] of failures) {
      await loadUrl(page, url);
      assert.match(await waitError(page, message), still);
      await waitReady(page);
      assert.match(await statusText(page), /^tiny test model \(random weights\): ready/);
    }
    // A Hugging Face file page is refused before any request, with its download link.
    const before = host.requests.length;
    await loadUrl(page, "https://huggingface.co/org/M-GGUF/blob/main/m.gguf");
    assert.match(await waitError(page, /page of the file/), /use its download link, https:\/\/huggingface\.co\/org\/M-GGUF\/resolve\/main\/m\.gguf$/);
    assert.equal(host.requests.length, before);
    assert.equal((await generate(page)).state, "done");
    assert.deepEqual(errors.filter((e) => !/Failed to load resource|CORS policy/.test(e)), []);
    await context.close();
  });

  test("a file too large for the engine is refused from its HEAD size, before any download", async () => {
    const url = `${host.url}/cors/huge.gguf`;
    const tooLarge = /huge\.gguf \(.*\) is 5\.0 GB, more than the 3\.2 GB this engine can hold \(WebAssembly's memory ends at 4 GiB/;
    // Typed, with a model loaded: it stays.
    const { context, page, errors } = await openTinyPage(session, "n=4");
    await loadUrl(page, url);
    assert.match(await waitError(page, tooLarge), /still using tiny test model/);
    await waitReady(page);
    // Linked: no Load button is offered.
    const linked = await openPage(session.browser, `${session.server.url}?model=${encodeURIComponent(url)}`);
    assert.match(await waitError(linked.page, tooLarge), /^Cannot load huge\.gguf/);
    assert.ok(await linked.page.locator("#load-model").isHidden());
    assert.deepEqual(host.requests.filter((r) => r.endsWith("/huge.gguf")), ["HEAD /cors/huge.gguf", "HEAD /cors/huge.gguf"]);
    assert.deepEqual([...errors, ...linked.errors], []);
    await linked.context.close();
    await context.close();
  });
});
