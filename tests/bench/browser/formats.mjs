// SmolLM2 in each of llama.cpp's file types (models/build.sh quants) next to the wheel's Q4_1: our
// wasm engine in headless Chromium, one page per file in one browser session, the warm runs
// alternating between the pages so that load from other work hits every file alike. Prints each
// file's decode and prefill speed, its decode speed per weight byte against Q4_1's (issue 23's goal:
// ≥ 0.8×; decode reads every weight once a token, so tok/s × bytes compares the kernels), and its
// perplexity of the fixture paragraph beside the exact forward's on the same file. Asserts no timings.
//
//     node tests/bench/browser/formats.mjs [--runs 3] [--tokens 32] [--prompt-tokens 64] [--types Q4_K_M,Q5_0]
//
// Needs crate/pkg-web (scripts/web-pkg.sh), models/smollm2-135m/quants (models/build.sh quants)
// and node_modules (npm ci).
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { launchChromium, serve } from "./server.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    tokens: { type: "string", default: "32" },
    "prompt-tokens": { type: "string", default: "64" },
    types: { type: "string", default: "Q4_K_M,Q5_K_M,Q6_K,Q8_0,Q4_0,Q5_0" },
  },
});
const dir = "models/smollm2-135m";
const files = [["Q4_1 (the wheel's)", `${dir}/model.gguf`], ...args.types.split(",").map((t) => [t, `${dir}/quants/${t}.gguf`])];
for (const [path, how] of [[files.at(-1)[1], "bash models/build.sh quants"], ["crate/pkg-web/decoding_playground_bg.wasm", "bash scripts/web-pkg.sh"]]) {
  if (!existsSync(join(root, path))) throw new Error(`${path} is missing: run ${how}`);
}
const reference = JSON.parse(readFileSync(join(root, "models/fixtures/smollm2_reference.json"), "utf8"));
const options = { threads: 1, paragraphIds: reference.paragraph.ids, promptTokens: Number(args["prompt-tokens"]), maxTokens: Number(args.tokens), runs: Number(args.runs) };

const server = await serve(root);
// Every page but the last opened is in the background: keep Chromium from slowing those.
const browser = await launchChromium(["--disable-renderer-backgrounding", "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows"]);
const results = [];
try {
  const pages = [];
  for (const [type, path] of files) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error(`  [${type} error] ${error.message}`));
    await page.goto(`${server.url}/tests/bench/browser/bench.html`);
    await page.evaluate((opts) => window.bench.load("ours", opts), { ...options, gguf: `/${path}` });
    pages.push({ type, path, page, context });
    console.error(`${type}: loaded`);
  }
  for (let i = 0; i < options.runs; i++) for (const { page } of pages) await page.evaluate(() => window.bench.generate());
  for (const { type, path, page, context } of pages) {
    results.push({ type, path, bytes: statSync(join(root, path)).size, ...(await page.evaluate(() => window.bench.result())) });
    await context.close();
  }
  console.log(`\nSmolLM2-135M-Instruct in llama.cpp's file types, our wasm engine (1 thread), headless Chromium ${browser.version()}`);
} finally {
  await browser.close();
  server.close();
}

const [base] = results;
const exact = (path) => (path.includes("/quants/") ? JSON.parse(readFileSync(join(root, path.replace(/\.gguf$/, ".json")), "utf8")).paragraph.perplexity : `${reference.paragraph.perplexity} (ORT, f16 ONNX)`);
console.log(`prompt: ${options.promptTokens} tokens of the fixture paragraph, ${options.maxTokens} greedy tokens; median of ${options.runs} warm runs after a cold one`);
console.log("| type | MB | prefill tok/s | decode tok/s | decode ÷ Q4_1 | per weight byte ÷ Q4_1 (goal ≥ 0.8×) | perplexity | exact forward, same file |");
console.log("|---|---|---|---|---|---|---|---|");
for (const r of results) {
  const perByte = (r.decodeTokS * r.bytes) / (base.decodeTokS * base.bytes);
  const goal = r === base ? "1.00" : `${perByte.toFixed(2)} ${perByte >= 0.8 ? "met" : "not met"}`;
  console.log(`| ${r.type} | ${(r.bytes / 1e6).toFixed(0)} | ${r.prefillTokS.toFixed(1)} | ${r.decodeTokS.toFixed(1)} | ${(r.decodeTokS / base.decodeTokS).toFixed(2)} | ${goal} | ${r.perplexity.toFixed(4)} | ${exact(r.path)} |`);
}
