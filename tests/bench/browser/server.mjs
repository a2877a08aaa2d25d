// A static file server for the browser benchmark: the repository root, no dependencies.
// COOP/COEP make the page cross-origin isolated (SharedArrayBuffer, as onnxruntime-web's
// threaded build wants); no-store keeps Chromium's cache out of the fetch timings.
import { createServer } from "node:http";
import { chromium } from "playwright-core";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".onnx": "application/octet-stream",
  ".txt": "text/plain; charset=utf-8",
};

/** Serves `root` on 127.0.0.1 (a free port); resolves to { url, close }. */
export function serve(root) {
  const server = createServer(async (request, response) => {
    const path = normalize(join(root, decodeURIComponent(new URL(request.url, "http://x").pathname)));
    const info = path.startsWith(root + sep) ? await stat(path).catch(() => null) : null;
    if (!info?.isFile()) {
      response.writeHead(404).end("not found");
      return;
    }
    response.writeHead(200, {
      "Content-Type": TYPES[extname(path)] ?? "application/octet-stream",
      "Content-Length": info.size,
      "Cache-Control": "no-store",
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
    });
    createReadStream(path, { highWaterMark: 1 << 20 }).pipe(response);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() }),
    ),
  );
}

/** Debian's Chromium, headless, through playwright-core (which must not download a browser).
 *  `extraArgs`: e.g. `--enable-unsafe-webgpu`, and on a machine
 *  with a GPU the flags that let headless Chromium use it (CHROMIUM_GPU_FLAGS). */
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", ...extraArgs],
  });
}

/** Serves `root`, opens the bench page in headless Chromium (`chromiumArgs` added), runs
 *  `page.evaluate(fn, arg)` there and closes both; resolves to what `fn` returned. */
export async function evaluateInBenchPage(root, fn, arg, chromiumArgs = []) {
  const server = await serve(root);
  const browser = await launchChromium(chromiumArgs);
  try {
    const page = await browser.newPage();
    page.on("pageerror", (error) => console.error(`[page error] ${error.message}`));
    await page.goto(`${server.url}/tests/bench/browser/bench.html`);
    return await page.evaluate(fn, arg);
  } finally {
    await browser.close();
    server.close();
  }
}
