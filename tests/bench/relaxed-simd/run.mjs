// Times the three variants of src/lib.rs (see there) in this JS engine, alternating, and checks
// that variant 2 gives variant 0's bits.
//
//   bash tests/bench/relaxed-simd/run.sh   (builds it, then Node and Chromium)
//   node tests/bench/relaxed-simd/run.mjs --browser
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const wasm = readFileSync(join(here, "relaxed_simd_bench.wasm"));
const names = ["simd128, int16 activations (the engine's)", "relaxed, int8 activations", "relaxed, int16 activations split in two bytes"];

/** In this JS engine: µs per 1536 × 576 product for each variant, and how each one's outputs
 *  compare with variant 0's. */
async function measure(bytes, rounds) {
  const { instance } = await WebAssembly.instantiate(bytes);
  const e = instance.exports;
  e.setup(7);
  const outputs = (v) => {
    e.run(v, 1);
    return Float32Array.from(new Float32Array(e.memory.buffer, e.out_ptr(), e.rows()));
  };
  const base = outputs(0);
  const compare = [0, 1, 2].map((v) => {
    const out = outputs(v);
    let same = 0, err = 0, norm = 0;
    out.forEach((y, i) => { same += Object.is(y, base[i]); err += (y - base[i]) ** 2; norm += base[i] ** 2; });
    return { identical: same === out.length, relRms: Math.sqrt(err / norm) };
  });
  const reps = 200;
  const best = [Infinity, Infinity, Infinity];
  for (let r = 0; r < rounds; r++) {
    for (const v of [0, 1, 2]) {
      const start = performance.now();
      e.run(v, reps);
      best[v] = Math.min(best[v], ((performance.now() - start) * 1000) / reps);
    }
  }
  return { best, compare };
}

function print(where, { best, compare }) {
  console.log(`${where}: µs per 1536 × 576 Q4_1-style product (best of the rounds), one thread`);
  best.forEach((us, v) => {
    const c = compare[v];
    console.log(`  ${names[v].padEnd(48)} ${us.toFixed(1).padStart(7)} µs  ${(best[0] / us).toFixed(2)}× the engine's  ${c.identical ? "identical bits" : `rel. RMS difference ${c.relRms.toExponential(2)}`}`);
  });
}

if (process.argv.includes("--browser")) {
  const { launchChromium } = await import(join(here, "../browser/server.mjs"));
  const browser = await launchChromium();
  const page = await browser.newPage();
  const result = await page.evaluate(`(${measure.toString()})(new Uint8Array([${[...wasm].join(",")}]), 15)`);
  await browser.close();
  print("headless Chromium", result);
} else {
  print(`Node ${process.version}`, await measure(wasm, 15));
}
