// Times SmolLM2 in this page with one engine: "ours" (the crate's wasm Model on the GGUF, its
// Q4_1/Q8_0 blocks kept, tract + our simd128 kernels, in the package's engine worker), or
// onnxruntime-web 1.30 (wasm EP, SIMD) on the same weights as an f32 ONNX file ("ort-f32") or
// that file through quantize_dynamic ("ort-int8"), or llama.cpp's own wasm build (wllama 3.13,
// CPU only) on the same GGUF, each on `threads` threads. Protocol for all: one cold generation right after loading, then
// warm ones; the speeds are the medians of the warm runs; then each engine's teacher-forced
// perplexity of the fixture paragraph. run.mjs drives window.bench and prints the table.

// Every wasm memory either runtime creates or exports, to report linear memory alike for both.
// Installed before either runtime is imported.
const memories = new Set();
for (const name of ["instantiate", "instantiateStreaming"]) {
  const original = WebAssembly[name];
  WebAssembly[name] = async (source, imports) => {
    const result = await original(source, imports);
    const exported = Object.values((result.instance ?? result).exports);
    const imported = Object.values(imports ?? {}).flatMap((module) => Object.values(module));
    for (const value of [...exported, ...imported]) if (value instanceof WebAssembly.Memory) memories.add(value);
    return result;
  };
}
const wasmMemoryBytes = () => [...memories].reduce((sum, m) => sum + m.buffer.byteLength, 0);

const log = (line) => {
  console.log(line);
  document.getElementById("log").textContent += line + "\n";
};
const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const seconds = (since) => (performance.now() - since) / 1000;

// run.mjs loads each engine in its own page and then alternates their warm runs, so that a
// busy machine slows all alike. The prompt is the first promptTokens ids of the paragraph.
let run, options;
const timings = [];
window.bench = {
  async load(runtime, opts) {
    // Only ORT's graph takes embeddings (prepare.py writes them).
    const embeds = runtime === "ours" || runtime === "wllama" ? null : new Float32Array(await (await fetch(opts.paragraphEmbeds)).arrayBuffer());
    options = { ...opts, paragraph: { ids: opts.paragraphIds, embeds } };
    run = runtime === "ours" ? await oursRuntime(opts.gguf, opts.threads)
      : runtime === "wllama" ? await wllamaRuntime(opts.gguf, opts.threads)
      : await ortRuntime(opts.onnx[runtime], opts.threads);
    const init = run.info.initS ? ` (.wasm fetch + compile ${run.info.initS.toFixed(2)} s)` : "";
    log(`${runtime}: fetched in ${run.fetchS.toFixed(2)} s, loaded in ${run.loadS.toFixed(2)} s${init}`);
    return this.generate(); // the cold run, right after loading
  },
  async generate() {
    const t = await run.generate(options.paragraph.ids.slice(0, options.promptTokens), options.maxTokens);
    timings.push(t);
    log(`run ${timings.length - 1}: prefill ${t.promptTokens} tok in ${t.prefillS.toFixed(2)} s, ${t.steps} steps in ${t.decodeS.toFixed(2)} s`);
    return t;
  },
  async result() {
    const [cold, ...warm] = timings;
    const logProbs = await run.logProbs(options.paragraph);
    return {
      perplexity: Math.exp(-logProbs.reduce((a, b) => a + b, 0) / logProbs.length),
      fetchS: run.fetchS,
      loadS: run.loadS,
      // From having the model's bytes to the first sampled token (load + first prefill + sample).
      firstTokenS: run.loadS + cold.firstTokenS,
      promptTokens: cold.promptTokens,
      // The first step samples the prefill's logits; each later step runs the model once.
      prefillTokS: median(warm.map((t) => t.promptTokens / t.prefillS)),
      decodeTokS: median(warm.map((t) => (t.steps - 1) / t.decodeS)),
      wasmMemoryBytes: wasmMemoryBytes(),
      text: cold.text,
      ...run.info,
    };
  },
};

// Ours runs as the page runs it: in the package's engine worker (createWorkerModel), on
// `threads` threads; more than one runs the threaded build (this page is cross-origin isolated).
async function oursRuntime(gguf, threads) {
  const { createWorkerModel } = await import("/crate/pkg-web/index.js");
  let start = performance.now();
  const file = await bytes(gguf);
  const fetchS = seconds(start);
  start = performance.now();
  // Fetching and compiling the .wasm (and starting the threads) is counted in load, as ORT's is
  // in its session creation. The bytes are copied to the worker, as a page's File would be.
  const worker = new Worker("/crate/pkg-web/model-worker.js", { type: "module" });
  const instance = await createWorkerModel(worker, file, { backend: options.backend ?? "cpu", threads });
  const loadS = seconds(start);
  if (instance.threads.threads !== threads) throw new Error(`asked for ${threads} threads, got ${JSON.stringify(instance.threads)}`);
  // Empty stop tokens: every run generates exactly maxTokens, as ORT's loop does. The first step
  // comes after the prefill and one sample.
  const generate = async (ids, maxTokens) => {
    const prompt = await instance.decode(ids);
    const config = { maxTokens, stopTokens: [], sampler: { temperature: 0, topK: null, topP: null } };
    let firstStep = null;
    let text = "";
    const start = performance.now();
    const steps = await instance.generate(prompt, config, (step) => {
      firstStep ??= performance.now();
      text += step.text;
    });
    const prefillS = (firstStep - start) / 1000;
    return { promptTokens: (await instance.encode(prompt)).length, prefillS, firstTokenS: prefillS, decodeS: seconds(start) - prefillS, steps: steps.length, text };
  };
  const logProbs = async ({ ids }) => [...(await instance.logProbs(Uint32Array.from(ids)))];
  const build = instance.threads.threaded ? "threaded build" : "single-threaded build";
  return { fetchS, loadS, generate, logProbs, info: { runtime: `tract wasm + our Q4_1/Q8_0 simd128 kernels, ${build}, ${threads} thread${threads > 1 ? "s" : ""}, in its worker`, downloadBytes: file.length } };
}

// llama.cpp in wasm on the same GGUF. Its speeds are llama.cpp's own timings of the prompt and
// of the generated tokens, measured in its worker (ours are timed from the page, messages
// included). The prompt cache is off, so every run prefills the whole prompt.
async function wllamaRuntime(gguf, threads) {
  const { Wllama } = await import("/node_modules/@wllama/wllama/esm/index.js");
  let start = performance.now();
  const file = await bytes(gguf);
  const fetchS = seconds(start);
  start = performance.now();
  const wllama = new Wllama({ default: "/node_modules/@wllama/wllama/esm/wasm/wllama.wasm" }, { suppressNativeLog: true });
  await wllama.loadModel([new Blob([file])], { n_threads: threads, n_gpu_layers: 0, n_ctx: 1024 });
  const loadS = seconds(start);
  let detokenized = null;
  const generate = async (ids, maxTokens) => {
    // The same ids as text, through our tokenizer (SmolLM2's, as llama.cpp's): llama.cpp
    // tokenizes it again, and its timings say how many prompt tokens it took.
    detokenized ??= await textOf(ids);
    const response = await wllama.createCompletion({ prompt: detokenized, max_tokens: maxTokens, temperature: 0, ignore_eos: true, cache_prompt: false });
    const t = response.timings;
    if (t.cache_n > 0) throw new Error(`wllama reused ${t.cache_n} cached prompt tokens`);
    const prefillS = t.prompt_ms / 1000;
    return { promptTokens: t.prompt_n, prefillS, firstTokenS: prefillS, decodeS: t.predicted_ms / 1000 * (t.predicted_n - 1) / t.predicted_n, steps: t.predicted_n, text: response.choices[0].text };
  };
  return { fetchS, loadS, generate, logProbs: async () => [NaN], info: { runtime: `wllama 3.13.0 (llama.cpp wasm, CPU, ${threads} thread${threads > 1 ? "s" : ""})`, downloadBytes: file.length } };
}

/** The text of `ids`, by the package's tokenizer (SmolLM2's GGUF, in a worker of its own). */
async function textOf(ids) {
  const { createWorkerModel } = await import("/crate/pkg-web/index.js");
  const model = await createWorkerModel(new Worker("/crate/pkg-web/model-worker.js", { type: "module" }), options.gguf, { backend: "cpu", threads: 1, cache: false });
  try {
    return await model.decode(ids);
  } finally {
    model.terminate();
  }
}

async function ortRuntime(model, threads) {
  const ort = await import("/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs");
  // Fixed for the page: run.mjs gives each thread count a page of its own. The page is
  // cross-origin isolated, so ORT's threaded build can start its pool.
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  let start = performance.now();
  const [onnx, configBytes] = await Promise.all(["model.onnx", "config.json"].map((f) => bytes(`${model}/${f}`)));
  const downloadBytes = onnx.length;
  const fetchS = seconds(start);
  const config = JSON.parse(new TextDecoder().decode(configBytes));
  start = performance.now();
  const session = await ort.InferenceSession.create(onnx, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
    logSeverityLevel: 3, // errors only, not the optimizer's notes on unused initializers
  });
  const loadS = seconds(start);
  const { hidden_size: hidden, num_layers: layers, num_key_value_heads: heads, head_dim: dim, vocab_size: vocab } = config;
  // The embedding is not in the graph and timing does not depend on values: seeded noise.
  let seed = 1;
  const noise = (n) => Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.1);
  const argmax = (data, from) => {
    let best = from;
    for (let i = from; i < from + vocab; i++) if (data[i] > data[best]) best = i;
    return best - from;
  };
  // One forward pass over `length` new positions after `past` (their embeddings: seeded noise
  // unless given); returns the logits.
  let past = null;
  let position = 0;
  const forward = async (length, embeds = noise(length * hidden)) => {
    const feeds = {
      inputs_embeds: new ort.Tensor("float32", embeds, [1, length, hidden]),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(position + length).fill(1n), [1, position + length]),
      position_ids: new ort.Tensor("int64", BigInt64Array.from({ length }, (_, i) => BigInt(position + i)), [1, length]),
    };
    for (let layer = 0; layer < layers; layer++)
      for (const kv of ["key", "value"])
        feeds[`past_key_values.${layer}.${kv}`] =
          past?.[`present.${layer}.${kv}`] ?? new ort.Tensor("float32", new Float32Array(0), [1, heads, 0, dim]);
    past = await session.run(feeds);
    position += length;
    return past.logits.data;
  };
  const next = (logits) => argmax(logits, logits.length - vocab);
  const generate = async (ids, maxTokens) => {
    [past, position] = [null, 0];
    const start = performance.now();
    const tokens = [next(await forward(ids.length))];
    const prefillS = seconds(start);
    while (tokens.length < maxTokens) tokens.push(next(await forward(1)));
    return { promptTokens: ids.length, prefillS, firstTokenS: prefillS, decodeS: seconds(start) - prefillS, steps: tokens.length, text: "" };
  };
  // The paragraph's real embedding rows (prepare.py), all but the last position in one prefill.
  const logProbs = async ({ ids, embeds }) => {
    [past, position] = [null, 0];
    const n = ids.length - 1;
    const logits = await forward(n, embeds.subarray(0, n * hidden));
    return ids.slice(1).map((id, i) => {
      const row = logits.subarray(i * vocab, (i + 1) * vocab);
      let max = -Infinity;
      for (const x of row) max = Math.max(max, x);
      let z = 0;
      for (const x of row) z += Math.exp(x - max);
      return row[id] - max - Math.log(z);
    });
  };
  return { fetchS, loadS, generate, logProbs, info: { runtime: `onnxruntime-web ${ort.env.versions?.web ?? ""} (wasm EP, SIMD, ${threads} thread${threads > 1 ? "s" : ""})`, downloadBytes } };
}
