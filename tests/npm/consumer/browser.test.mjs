// The package in headless Chromium (playwright-core, Debian's /usr/bin/chromium), installed from
// its tarball: a Vite app that imports it by name, built with `vite build` and also served by
// `vite dev`, and a page without a bundler that imports its web build by path. Each runs the
// seeded generations of the native fixtures on the tiny model, its ONNX export and its GGUF, and
// must give the same ids.
// Run by tests/npm/run.sh from a fresh folder.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { cpSync, createReadStream, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, resolve, sep } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";

const repo = process.env.REPO;
assert.ok(repo, "REPO must name the repository");
const here = process.cwd();
const fixture = (name) => JSON.parse(readFileSync(join(repo, "crate/tests/fixtures", name), "utf8"));
const PROMPT = "Once upon a time, there was a little";
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".gguf": "application/octet-stream",
  ".onnx": "application/octet-stream",
  ".onnx_data": "application/octet-stream",
  ".bin": "application/octet-stream",
};

const ISOLATION = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };

/** Serves this folder, and /models/tiny/ from the repository. */
function serve() {
  const roots = [["/models/tiny/", join(repo, "models/tiny")], ["/", here]];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const [prefix, dir] = roots.find(([p]) => path.startsWith(p));
    const file = resolve(dir, path.slice(prefix.length));
    let ok = file.startsWith(resolve(dir) + sep) && TYPES[extname(file)] !== undefined;
    let stat;
    try {
      stat = statSync(file);
      ok &&= stat.isFile();
    } catch {
      ok = false;
    }
    if (!ok) {
      res.writeHead(404).end("not found");
      return;
    }
    // An ETag, as a static server sends: Model.load keys its Cache API copy by it. COOP and COEP
    // isolate the page, as the package's README asks for threads.
    res.writeHead(200, { "Content-Type": TYPES[extname(file)], "Content-Length": stat.size, ETag: `"${stat.size}-${stat.mtimeMs}"`, ...ISOLATION });
    createReadStream(file).pipe(res);
  });
  return new Promise((done) => server.listen(0, "127.0.0.1", () => done(server)));
}

let server;
let browser;
let origin;

before(async () => {
  server = await serve();
  origin = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    // WebGPU on (SwiftShader without a GPU): the GGUF model then runs on it, as users' will.
    args: ["--enable-unsafe-webgpu", "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
  });
});

after(async () => {
  await browser?.close();
  server?.close();
});

describe("a Vite app, built", () => {
  it("builds with `vite build`, the .wasm emitted as an asset and no Node code bundled", () => {
    // The app fetches /models/tiny/*: Vite serves public/ in dev and copies it into dist/.
    cpSync(join(repo, "models/tiny"), join(here, "vite-app/public/models/tiny"), { recursive: true });
    execFileSync(process.execPath, [join(here, "node_modules/vite/bin/vite.js"), "build", "vite-app", "--logLevel", "warn"], {
      cwd: here,
      stdio: "inherit",
    });
    const assets = readdirSync(join(here, "vite-app/dist/assets"));
    assert.ok(assets.some((f) => f.endsWith(".wasm")), `a .wasm among ${assets}`);
    const js = assets.filter((f) => f.endsWith(".js")).map((f) => readFileSync(join(here, "vite-app/dist/assets", f), "utf8"));
    assert.ok(js.length > 0 && js.every((code) => !code.includes("node:fs")), "the browser build, not node.js");
  });
  pageTests(() => `${origin}/vite-app/dist/index.html`);
});

describe("the same app in `vite dev` (dependency pre-bundling on)", () => {
  let dev;
  let url;
  before(async () => {
    const port = await new Promise((done) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address();
        probe.close(() => done(port));
      });
    });
    dev = spawn(process.execPath, [join(here, "node_modules/vite/bin/vite.js"), "vite-app", "--host", "127.0.0.1", "--port", String(port), "--strictPort"], {
      cwd: here,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    dev.stdout.on("data", (d) => (output += d));
    dev.stderr.on("data", (d) => (output += d));
    url = `http://127.0.0.1:${port}/`;
    for (const deadline = Date.now() + 60_000; ; ) {
      if (dev.exitCode !== null) throw new Error(`vite dev exited: ${output}`);
      if (await fetch(url).then((r) => r.ok, () => false)) break;
      if (Date.now() > deadline) throw new Error(`vite dev did not answer: ${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  after(() => dev?.kill());
  pageTests(() => url);
});

describe("plain ES modules, no bundler", () => {
  pageTests(() => `${origin}/plain/index.html`);
});

function pageTests(pageUrl) {
  let page;
  const errors = [];

  it("loads the package and the tiny model", async () => {
    page = await browser.newPage();
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.goto(pageUrl());
    await page.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: 60_000 });
    assert.equal(await page.textContent("#status"), "ready");
    // The automatic backend, asked for the fallback adapter: the GGUF on WebGPU (SwiftShader),
    // ONNX on the CPU.
    const backends = await page.evaluate(() => window.backends());
    assert.equal(backends.gguf.backend, "webgpu", JSON.stringify(backends.gguf));
    assert.equal(backends.gguf.adapter.fallback, true);
    assert.equal(backends.onnx.backend, "cpu");
    assert.equal(backends.worker.backend, "webgpu", "the worker has WebGPU too");
  });

  for (const [format, prefix] of [["onnx", "tiny"], ["gguf", "tiny_gguf"], ["worker", "tiny_gguf"]]) {
    it(`seeded generations give the native fixture's ids and text (${format}: ${prefix}_generation.json)`, async () => {
      const cases = fixture(`${prefix}_generation.json`);
      assert.ok(cases.length > 0, `${prefix}_generation.json has cases`);
      for (const c of cases) {
        const result = await page.evaluate(([prompt, config, format]) => window.generate(prompt, config, format), [PROMPT, c.config, format]);
        assert.deepEqual(result.tokens, c.tokens, c.name);
        assert.equal(result.text, c.text, c.name);
        assert.equal(result.shown, c.text, `${c.name}: streamed to the page`);
      }
    });

    it(`superposed drafts match the native fixture (${format}: ${prefix}_superposed.json)`, async () => {
      const cases = fixture(`${prefix}_superposed.json`);
      assert.ok(cases.length > 0, `${prefix}_superposed.json has cases`);
      for (const c of cases) {
        const result = await page.evaluate(([prompt, config, format]) => window.generate(prompt, config, format), [PROMPT, c.config, format]);
        assert.deepEqual(result.tokens, c.live, c.name);
        assert.deepEqual(result.drafts.map((d) => d.tokens), c.drafts, c.name);
        assert.deepEqual(result.drafts.map((d) => d.text), c.texts, c.name);
      }
    });
  }

  it("a bad GGUF throws an Error with the crate's message", async () => {
    const magic = await page.evaluate(() => window.ggufErrorOf(null, "GGML"));
    assert.equal(magic.isError, true);
    assert.match(magic.message, /^model error: not a GGUF file \(magic .*expected "GGUF"\)/);
    const truncated = await page.evaluate(() => window.ggufErrorOf(50_000, null));
    assert.equal(truncated.isError, true);
    assert.match(truncated.message, /^model error: the file ends inside tensor `[^`]+`/);
  });

  it("Model.load: a URL with progress, then from the Cache API; a File; an abort", async () => {
    const result = await page.evaluate(() => window.loads());
    const size = statSync(join(repo, "models/tiny/model.gguf")).size;
    assert.deepEqual(result.first.phases, ["download", "build", "ready"], JSON.stringify(result.first));
    assert.equal(result.first.loaded, size);
    assert.deepEqual(result.second.phases, ["cache", "build", "ready"], "the second load reads the Cache API copy");
    assert.equal(result.second.loaded, size);
    assert.deepEqual(result.file, { phases: ["read", "build", "ready"], loaded: size, vocabSize: 512 });
    assert.deepEqual(result.aborted, { name: "AbortError", code: "Cancelled" });
  });

  it("threads: 2 run the threaded build, with one thread's tokens and surprises", async () => {
    const { isolated, runs } = await page.evaluate(() => window.threadRuns());
    assert.ok(isolated, "the server isolates the page");
    assert.deepEqual(runs.map((r) => r.threads), [{ threaded: false, threads: 1, note: null }, { threaded: true, threads: 2, note: null }]);
    assert.equal(runs[0].tokens.length, 12);
    assert.deepEqual(runs[1].tokens, runs[0].tokens);
    assert.deepEqual(runs[1].surprises, runs[0].surprises);
  });

  it("createWorkerModel: progress, for await, abort, error codes, a reload from Files, terminate", async () => {
    const r = await page.evaluate(() => window.workers());
    const size = statSync(join(repo, "models/tiny/model.gguf")).size;
    assert.deepEqual(r.url, { phases: ["download", "build", "ready"], loaded: size, vocabSize: 512, backend: "cpu", chat: "string" });
    assert.equal(r.streamed, 3);
    assert.equal(r.afterBreak, 2, "break cancelled the stream: the next call is not Busy");
    assert.equal(r.aborted.name, "AbortError");
    assert.equal(r.aborted.code, "Cancelled");
    assert.ok(r.aborted.steps >= 1 && r.aborted.steps < 200, `the steps made before the abort: ${r.aborted.steps}`);
    assert.deepEqual([r.badConfig.code, r.badConfig.field, r.badConfig.message], ["InvalidConfig", "topK", "topK must be at least 1, got 0"]);
    assert.equal(r.badMethodArgs.code, "InvalidConfig", JSON.stringify(r.badMethodArgs));
    assert.match(r.chat, /^<\|im_start\|>system\n.*<\|im_start\|>user\nHi<\|im_end\|>\n<\|im_start\|>assistant\n$/s);
    assert.equal(r.decoded, "Hello world");
    assert.deepEqual(r.reloaded, { backend: "cpu", steps: 3 });
    assert.equal(r.onnxOptions.code, "InvalidConfig");
    assert.equal(r.stillServes, 1, "a refused load leaves the model serving");
    assert.equal(r.afterTerminate.code, "EngineFailed");
    assert.deepEqual([r.loadAborted.name, r.loadAborted.code], ["AbortError", "Cancelled"]);
    assert.deepEqual([r.badSource.code, r.badSource.message], ["InvalidInput", "missing a .onnx model and tokenizer.json: give one .gguf file, or a .onnx model with its tokenizer.json (and config.json, and its data files)"]);
  });

  it("bring your own ONNX: optimum's layouts, external data and quantised variants, here and in a worker", async () => {
    const results = await page.evaluate(() => window.onnxVariants());
    for (const [name, r] of Object.entries(results)) {
      assert.deepEqual(r.here, r.want, `${name}: ONNX Runtime's greedy ids`);
      assert.deepEqual(r.worker, r.want, `${name}: the same in a worker`);
    }
    assert.deepEqual(Object.fromEntries(Object.entries(results).map(([n, r]) => [n, r.weightTypes])), { "external-data": ["F32"], int8: ["INT8"], fp16: ["F16"], merged: ["F32"], q4: ["Q4_0"], "q4-embedding": ["Q4_0"] });
  });

  it("bad input rejects with an Error and its message", async () => {
    const result = await page.evaluate(([prompt]) => window.errorOf(prompt, { sampler: { topK: 0 } }), [PROMPT]);
    assert.deepEqual(result, { isError: true, message: "topK must be at least 1, got 0" });
    assert.deepEqual(errors, [], "no page errors");
    await page.close();
  });
}
