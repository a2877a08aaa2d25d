// What each ONNX layout and quantisation of SmolLM2 costs natively (tract, 1 thread), next to the
// default GGUF from the same run: load time from the bytes, first token, prefill and decode speed,
// peak RSS, and the weight types tract keeps. Every engine is crate/examples/bench_native.rs, so
// only the model differs; warm runs alternate between the models, so load from other work on
// this machine hits all alike.
//
//   node tests/bench/onnx_variants.mjs [--runs 3] [--tokens 32] [--prompt-tokens 64] [--wasm] [--only q4]
//
// --only TEXT: the models whose name holds TEXT, beside the GGUF (the baseline is always run).
// --wasm: the same in wasm under Node (tests/bench/wasm_engine.mjs, on the page's build from
// scripts/web-pkg.sh), as the page runs them.
//
// Needs models/build.sh (SmolLM2, its optimum layout), tests/bench/browser/prepare.py (the f32
// export) and `models/.venv/bin/python models/onnx_variants.py --smollm2-quantised` (int8, fp16,
// q4 from that f32 export).
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const { values: args } = parseArgs({ options: { runs: { type: "string", default: "3" }, tokens: { type: "string", default: "32" }, "prompt-tokens": { type: "string", default: "64" }, wasm: { type: "boolean", default: false }, only: { type: "string" } } });
const ids = JSON.parse(readFileSync(join(root, "models/bench/paragraph.json"), "utf8")).ids.slice(0, Number(args["prompt-tokens"])).join(",");
const MODELS = [
  ["GGUF Q4_1 (the default)", "models/smollm2-135m/model.gguf"],
  ["ONNX, our layout (f16 weights)", "models/smollm2-135m"],
  ["ONNX, optimum layout + external data", "models/smollm2-135m/optimum"],
  ["ONNX fp16 (keep_io_types)", "models/bench/smollm2-fp16"],
  ["ONNX int8 (quantize_dynamic)", "models/bench/smollm2-int8"],
  ["ONNX q4 (MatMulNBits, block 32)", "models/bench/smollm2-q4"],
  ["ONNX q4, 4-bit embedding (GatherBlockQuantized)", "models/bench/smollm2-q4-embedding"],
];

function start(path) {
  const engine = args.wasm ? ["node", [join(root, "tests/bench/wasm_engine.mjs")]] : ["cargo", ["run", "--release", "-q", "--example", "bench_native", "--"]];
  const child = spawn(engine[0], [...engine[1], "--prompt-ids", ids, "--tokens", args.tokens, "--model", join(root, path)], {
    cwd: join(root, "crate"),
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`bench_native on ${path} ended early (see its error above)`);
    return JSON.parse(value);
  };
  return { child, next };
}

// Each model in its own process (its peak RSS is its own); cold runs first, then the warm runs
// take turns.
const results = [];
for (const [name, path] of MODELS) {
  if (args.only && path !== MODELS[0][1] && !name.includes(args.only)) continue;
  if (!existsSync(join(root, path))) {
    console.error(`skipped ${name}: ${path} is missing (see the header of this script)`);
    continue;
  }
  const engine = start(path);
  results.push({ name, engine, cold: await engine.next() });
}
for (let i = 0; i < Number(args.runs); i++) {
  for (const { engine } of results) {
    engine.child.stdin.write("run\n");
    await engine.next();
  }
}
for (const r of results) {
  r.engine.child.stdin.end();
  r.summary = await r.engine.next();
  console.error(`${r.name}: ${JSON.stringify({ ...r.cold, backend: undefined })} ${JSON.stringify(r.summary)}`);
}

const base = results[0]?.summary;
const ratio = (v, b) => (b ? ` (${(v / b).toFixed(2)}×)` : "");
console.log(`\nSmolLM2-135M ${args.wasm ? `in wasm (tract, simd128, 1 thread; Node ${process.version})` : "natively (tract, 1 thread)"}: prompt of ${args["prompt-tokens"]} tokens, ${args.tokens} greedy tokens, median of ${args.runs} warm runs; ratios to the GGUF of this run.\n`);
console.log("| model | weights kept as | load | first token | prefill | decode | peak RSS |");
console.log("|---|---|---|---|---|---|---|");
for (const { name, cold, summary } of results) {
  console.log(
    `| ${name} | ${cold.weightTypes.join(", ")} | ${cold.loadS.toFixed(2)} s | ${cold.firstTokenS.toFixed(2)} s | ${summary.prefillTokS.toFixed(1)} tok/s${ratio(summary.prefillTokS, base?.prefillTokS)} | ${summary.decodeTokS.toFixed(1)} tok/s${ratio(summary.decodeTokS, base?.decodeTokS)} | ${(summary.peakRssBytes / 1e6).toFixed(0)} MB${ratio(summary.peakRssBytes, base?.peakRssBytes)} |`,
  );
}
