// Times the default chain (top-k 40 → top-p 0.95 → temperature 0.8) in wasm under Node over
// V = 49152 logits shaped like the native bench's, and prints wasm ÷ native using the native
// figure that `cargo bench --bench sampling` saved in the same run.
//
//     bash scripts/bench.sh
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const { Sampler } = createRequire(import.meta.url)(join(here, "../pkg-node/decoding_playground.js"));

const VOCAB = 49152;
// Zipf-like logits (exponent 1.1) with Gumbel noise, as in benches/sampling.rs.
let state = 7n;
const uniform = () => {
  state = (state * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
  return (Number(state >> 11n) + 0.5) / 2 ** 53;
};
const logits = new Float32Array(VOCAB);
for (let i = 0; i < VOCAB; i++) {
  const rank = (i * 7919) % VOCAB;
  logits[i] = -1.1 * Math.log(1 + rank) - 0.4 * Math.log(-Math.log(uniform()));
}

const sampler = new Sampler({ seed: 1 });
const time = (steps) => {
  const start = performance.now();
  for (let i = 0; i < steps; i++) sampler.sample(logits);
  return ((performance.now() - start) * 1000) / steps;
};
time(300); // let V8 tier up
const wasmMicros = Math.min(time(1000), time(1000));

const estimates = join(here, "../../target/criterion/sampling_zipf/default_chain/new/estimates.json");
const nativeMicros = JSON.parse(readFileSync(estimates, "utf8")).mean.point_estimate / 1000;
console.log(`default chain, V = ${VOCAB}, zipf logits`);
console.log(`  native (criterion): ${nativeMicros.toFixed(1)} µs/step`);
console.log(`  wasm in Node ${process.version}: ${wasmMicros.toFixed(1)} µs/step (includes copying the logits into wasm memory)`);
console.log(`  wasm ÷ native: ${(wasmMicros / nativeMicros).toFixed(2)}×`);
