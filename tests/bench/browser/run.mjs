// SmolLM2-135M in headless Chromium: our tract wasm runtime against onnxruntime-web on the same
// ONNX file in the same browser session, and against native tract measured in the same run.
// Prints figures next to the goals of issue 3; asserts no timings.
//
//     node tests/bench/browser/run.mjs [--runs 5] [--tokens 32] [--skip-native] [--only ours|ort]
//
// Needs crate/pkg-web ((cd crate && wasm-pack build --release --target web --out-dir pkg-web)),
// models/smollm2-135m (models/build.sh) and node_modules (npm ci).
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
    "skip-native": { type: "boolean", default: false },
    only: { type: "string" },
  },
});
const model = "models/smollm2-135m";
// ~30 tokens of the Moby-Dick paragraph the model tests use.
const prompt = "Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse, and nothing particular to interest me on shore,";
const options = { model: `/${model}`, prompt, maxTokens: Number(args.tokens), runs: Number(args.runs) };

for (const [path, how] of [
  [`${model}/model.onnx`, "bash models/build.sh"],
  ["node_modules/onnxruntime-web", "npm ci"],
  ...(args.only === "ort" ? [] : [["crate/pkg-web/decoding_playground_bg.wasm", "(cd crate && wasm-pack build --release --target web --out-dir pkg-web)"]]),
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
  const child = spawn("cargo", ["run", "--release", "-q", "--example", "bench_native", "--", prompt, "--tokens", args.tokens], {
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

const server = await serve(root);
const browser = await launchChromium();
const pages = {};
const results = {};
try {
  for (const runtime of ["ours", "ort"].filter((r) => !args.only || r === args.only)) {
    // ORT has no tokenizer: it prefills as many positions as ours' tokenizer gives the prompt.
    const promptTokens = pages.ours?.cold.promptTokens ?? native?.promptTokens ?? 32;
    try {
      pages[runtime] = await openPage(browser, server.url, runtime, { ...options, promptTokens });
    } catch (error) {
      results[runtime] = { error: error.message.split("\n")[0] };
    }
  }
  // Warm runs alternate between the pages, so a busy machine slows both runtimes alike.
  for (let i = 0; i < options.runs; i++) {
    for (const { page } of Object.values(pages)) await page.evaluate(() => window.bench.generate());
    await native?.generate();
  }
  await native?.finish();
  for (const [runtime, { page, pid }] of Object.entries(pages)) {
    const result = await page.evaluate(() => window.bench.result());
    // Workers would mean threads: both runtimes should run on the page's main thread alone.
    results[runtime] = { ...result, rendererPeakRssBytes: pid && peakRss(pid), workers: page.workers().length };
  }
  console.log(`\nSmolLM2-135M (${model}/model.onnx, f16 weights, f32 compute), headless Chromium ${browser.version()}, same session`);
} finally {
  await browser.close();
  server.close();
}
let { ours, ort } = results;
for (const [name, result] of [["ours", ours], ["onnxruntime-web", ort]]) {
  if (result?.error) console.log(`${name} FAILED: ${result.error}`);
}
const ok = (r) => (r && !r.error ? r : null);
[ours, ort] = [ok(ours), ok(ort)];
const p = ours ?? ort ?? native;
console.log(`prompt ${p.promptTokens} tokens, ${options.maxTokens} greedy tokens (${options.maxTokens - 1} decode steps); speeds: median of ${options.runs} warm runs after one cold run`);
const describe = (r) => (r ? `${r.runtime}, ${r.workers} workers` : "-");
console.log(`ours: ${describe(ours)}; ORT-web: ${describe(ort)}:`);
console.log(`  ort.env.wasm.numThreads = 1 to match our single thread (the page is cross-origin isolated, so ORT's`);
console.log(`  threaded build could use more)`);
console.log(`native: tract, 1 thread, same prompt and protocol (crate/examples/bench_native.rs); warm runs alternate`);
console.log(`  ours, ORT-web, native, so load from other work on this ${cores()}-core machine hits all three alike\n`);

const mb = (bytes) => (bytes ? `${(bytes / 1e6).toFixed(0)} MB` : "-");
const s = (v) => (v == null ? "-" : `${v.toFixed(2)} s`);
const tps = (v) => (v == null ? "-" : `${v.toFixed(1)} tok/s`);
const ratio = (a, b) => (a != null && b != null ? `${(a / b).toFixed(2)}×` : "-");
const rows = [
  ["fetch model files", s(ours?.fetchS), s(ort?.fetchS), "-", "-", "-", ""],
  ["load: runtime + model from bytes", s(ours?.loadS), s(ort?.loadS), s(native?.loadS), ratio(ort?.loadS, ours?.loadS), ratio(native?.loadS, ours?.loadS), ""],
  ["cold first token, from bytes", s(ours?.firstTokenS), s(ort?.firstTokenS), s(native?.firstTokenS), "", "", goal(ours?.firstTokenS, (v) => v <= 3, "≤ 3 s")],
  [`prefill (${p.promptTokens} tokens)`, tps(ours?.prefillTokS), tps(ort?.prefillTokS), tps(native?.prefillTokS), ratio(ours?.prefillTokS, ort?.prefillTokS), ratio(ours?.prefillTokS, native?.prefillTokS), goal(ours?.prefillTokS / ort?.prefillTokS, (v) => v >= 1.2, "ours ÷ ORT ≥ 1.2×")],
  ["decode (greedy)", tps(ours?.decodeTokS), tps(ort?.decodeTokS), tps(native?.decodeTokS), ratio(ours?.decodeTokS, ort?.decodeTokS), ratio(ours?.decodeTokS, native?.decodeTokS), goal(ours?.decodeTokS / ort?.decodeTokS, (v) => v >= 1.2, "ours ÷ ORT ≥ 1.2×")],
  ["wasm memory after the runs (= peak)", mb(ours?.wasmMemoryBytes), mb(ort?.wasmMemoryBytes), "-", "", "", ""],
  ["peak RSS: renderer / native process", mb(ours?.rendererPeakRssBytes), mb(ort?.rendererPeakRssBytes), mb(native?.peakRssBytes), "", "", goal(ours?.rendererPeakRssBytes, (v) => v <= 1.2e9, "≤ 1.2 GB")],
];
printTable(["", "ours (wasm)", "ORT-web", "native", "ours÷ORT", "wasm÷native", "goal (ours)"], rows);
console.log(`
load: from the fetched bytes to a runnable model, fetching and compiling the runtime's .wasm included
  (ORT: InferenceSession.create). cold first token: load + first prefill + first sample.
ORT-web gets seeded noise as inputs_embeds (the embedding is not in the graph; ours looks up real rows).
Ratios are speed ratios (for load: the other's time ÷ ours). Peak RSS is VmHWM from /proc: of the page's
  own renderer process (JS heap, fetched bytes, wasm memory, code) and of the native process.`);
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
