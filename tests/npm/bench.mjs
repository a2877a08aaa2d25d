// Decode speed of wasm-opt variants of the package's .wasm, on one model, in Node: each variant
// runs in its own process (a fresh instance), variants interleaved, best of the rounds. Used to
// choose scripts/package.sh's wasm-opt flags.
//
//   node tests/npm/bench.mjs [--rounds N] [--model DIR] A.wasm B.wasm ...
//
// Each .wasm runs with the decoding_playground.js next to it, or else crate/pkg-npm's: the JS glue of
// the wasm-bindgen build it was optimised from (wasm-opt keeps imports and exports).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

if (process.env.BENCH_CHILD) {
  const [wasm, dir] = process.argv.slice(2);
  const own = join(dirname(wasm), "decoding_playground.js");
  const glue = await import(pathToFileURL(existsSync(own) ? own : join(root, "crate/pkg-npm/decoding_playground.js")).href);
  const t0 = performance.now();
  glue.initSync({ module: readFileSync(wasm) });
  const compiled = performance.now();
  const model = new glue.Model(readFileSync(join(dir, "model.onnx")), readFileSync(join(dir, "tokenizer.json")), readFileSync(join(dir, "config.json"), "utf8"));
  const loaded = performance.now();
  const prompt = readFileSync(join(root, "models/fixtures/paragraph.txt"), "utf8").slice(0, 600);
  const config = { maxTokens: 32, stopTokens: [], sampler: { temperature: 0, topK: null, topP: null } };
  // CPU seconds (user + system) as well as wall time: wasm runs on one thread, so CPU time is
  // the steadier figure on a machine shared with other builds.
  const cpu = () => { const { user, system } = process.cpuUsage(); return (user + system) / 1e6; };
  const run = async () => {
    const [start, startCpu] = [performance.now(), cpu()];
    await model.start(prompt, config);
    const [prefilled, prefilledCpu] = [performance.now(), cpu()];
    let n = 0;
    for (let step = await model.next(); step !== undefined; step = await model.next()) n++;
    const [done, doneCpu] = [performance.now(), cpu()];
    const tokens = model.encode(prompt).length;
    return {
      prefill: tokens / ((prefilled - start) / 1000),
      decode: (n - 1) / ((done - prefilled) / 1000),
      prefillCpu: tokens / (prefilledCpu - startCpu),
      decodeCpu: (n - 1) / (doneCpu - prefilledCpu),
    };
  };
  await run();
  const warm = await run();
  console.log(JSON.stringify({ compile: (compiled - t0) / 1000, load: (loaded - compiled) / 1000, ...warm }));
  process.exit(0);
}

const args = process.argv.slice(2);
let rounds = 3;
let model = join(root, "models/smollm2-135m");
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--rounds") rounds = Number(args[++i]);
  else if (args[i] === "--model") model = args[++i];
  else files.push(args[i]);
}
const best = new Map(files.map((f) => [f, { compile: Infinity, load: Infinity, prefill: 0, decode: 0, prefillCpu: 0, decodeCpu: 0 }]));
for (let r = 0; r < rounds; r++) {
  for (const file of files) {
    const out = JSON.parse(execFileSync(process.execPath, [fileURLToPath(import.meta.url), file, model], { env: { ...process.env, BENCH_CHILD: "1" } }).toString());
    const b = best.get(file);
    best.set(file, {
      compile: Math.min(b.compile, out.compile),
      load: Math.min(b.load, out.load),
      prefill: Math.max(b.prefill, out.prefill),
      decode: Math.max(b.decode, out.decode),
      prefillCpu: Math.max(b.prefillCpu, out.prefillCpu),
      decodeCpu: Math.max(b.decodeCpu, out.decodeCpu),
    });
    console.error(`round ${r + 1} ${file}: ${JSON.stringify(out)}`);
  }
}
console.log(`best of ${rounds} rounds, ${model}, Node ${process.version}:`);
for (const [file, b] of best) {
  console.log(
    `  ${file}: ${readFileSync(file).length} bytes, compile ${b.compile.toFixed(2)} s, load ${b.load.toFixed(2)} s, ` +
      `prefill ${b.prefill.toFixed(1)} tok/s (${b.prefillCpu.toFixed(1)} per CPU s), decode ${b.decode.toFixed(1)} tok/s (${b.decodeCpu.toFixed(1)} per CPU s)`,
  );
}
