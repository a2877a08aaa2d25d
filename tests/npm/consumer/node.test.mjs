// The package in Node, installed from its tarball: every seeded generation of the native fixtures
// (crate/tests/fixtures/tiny_*.json: the tiny model's ONNX export and its GGUF) gives the same ids
// and text, and bad input of every kind gives a JS Error with a message. Run by tests/npm/run.sh
// from a fresh folder, REPO=<repository>.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import init, {
  DEFAULT_DRY_CONFIG, DEFAULT_MIROSTAT_CONFIG, DEFAULT_SAMPLER_CONFIG, DEFAULT_SUPERPOSED_CONFIG, Model, Sampler, STAGE_ORDERS, SUPPORTED_ARCHITECTURES, SUPPORTED_WEIGHT_TYPES,
  createWorkerModel, defaultDryConfig, defaultMirostatConfig, defaultSamplerConfig, defaultSuperposedConfig, loadModel, modelFiles, stageOrders, supportedArchitectures, supportedWeightTypes,
} from "decoding-playground";

const repo = process.env.REPO;
assert.ok(repo, "REPO must name the repository");
const tiny = (name) => readFileSync(join(repo, "models/tiny", name));
const fixture = (name) => JSON.parse(readFileSync(join(repo, "crate/tests/fixtures", name), "utf8"));

const GGUF = tiny("model.gguf");
const ONNX = tiny("model.onnx");
const TOKENIZER = tiny("tokenizer.json");
const CONFIG = tiny("config.json").toString("utf8");
const NGRAMS = tiny("ngrams.bin");
// The prompt of the fixtures (crate/tests/common/tiny.rs).
const PROMPT = "Once upon a time, there was a little";

await init(); // a no-op in Node, as documented
const model = new Model(ONNX, TOKENIZER, CONFIG);
const gguf = await Model.fromGguf(GGUF);

/** Asserts that `fn` throws (or rejects with) a JS Error whose message matches `pattern`. */
async function throwsError(fn, pattern) {
  let error;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof Error, `expected an Error, got ${error === undefined ? "no error" : String(error)}`);
  assert.match(error.message, pattern);
  return error.message;
}

describe("the installed package", () => {
  it("has the package.json fields of the crate, and exports for Node, browsers and types", () => {
    const pkg = JSON.parse(readFileSync("node_modules/decoding-playground/package.json", "utf8"));
    const cargo = readFileSync(join(repo, "crate/Cargo.toml"), "utf8");
    assert.equal(pkg.name, "decoding-playground");
    assert.equal(pkg.version, cargo.match(/^version = "(.*)"/m)[1]);
    assert.equal(pkg.license, cargo.match(/^license = "(.*)"/m)[1]);
    assert.equal(pkg.type, "module");
    assert.equal(pkg.types, "./index.d.ts");
    assert.deepEqual(pkg.exports["."], { types: "./index.d.ts", node: "./node.js", default: "./index.js" });
    const shipped = ["README.md", "package.json", ...pkg.files].sort();
    assert.deepEqual(readdirSync("node_modules/decoding-playground").sort(), shipped, "the tarball holds the package files, nothing else");
    for (const file of pkg.files) assert.ok(statSync(join("node_modules/decoding-playground", file)).size > 0, file);
    assert.ok(import.meta.resolve("decoding-playground").endsWith("/node_modules/decoding-playground/node.js"), "Node takes node.js");
  });

  it("exports the documented API", async () => {
    assert.equal(typeof init, "function");
    assert.equal(Model.load, loadModel, "Model.load is loadModel");
    assert.ok((await init()).memory instanceof WebAssembly.Memory, "init() resolves to the wasm exports");
    assert.equal(model.vocabSize, 512);
    assert.equal(model.contextLength, 512);
    assert.equal(defaultSamplerConfig().topK, 40);
    assert.equal(model.decode(model.encode(PROMPT)), PROMPT);
  });

  it("exports the engine's defaults and supported formats as frozen constants, equal to its functions'", () => {
    // The constants hold the shortest decimal of each f32 (0.8); the functions its f64 widening.
    const f32 = (value) => JSON.parse(JSON.stringify(value, (_, x) => (typeof x === "number" ? Math.fround(x) : x)));
    assert.deepEqual(f32(DEFAULT_SAMPLER_CONFIG), f32(defaultSamplerConfig()));
    assert.deepEqual(f32(DEFAULT_DRY_CONFIG), f32(defaultDryConfig()));
    assert.deepEqual(f32(DEFAULT_MIROSTAT_CONFIG), f32(defaultMirostatConfig()));
    assert.deepEqual(f32(DEFAULT_SUPERPOSED_CONFIG), f32(defaultSuperposedConfig()));
    assert.deepEqual(STAGE_ORDERS, stageOrders());
    assert.deepEqual(SUPPORTED_ARCHITECTURES, supportedArchitectures());
    assert.deepEqual(SUPPORTED_WEIGHT_TYPES, supportedWeightTypes());
    assert.equal(DEFAULT_SAMPLER_CONFIG.temperature, 0.8);
    assert.equal(DEFAULT_SUPERPOSED_CONFIG.alpha, 0.54);
    assert.ok(SUPPORTED_ARCHITECTURES.includes("llama") && SUPPORTED_WEIGHT_TYPES.includes("Q4_K"));
    // Each order names every stage once, and the engine takes each.
    assert.deepEqual([...STAGE_ORDERS.huggingFace].sort(), [...STAGE_ORDERS.llamaCpp].sort());
    for (const order of Object.values(STAGE_ORDERS)) new Sampler({ order: [...order] }).free();
    assert.throws(() => (DEFAULT_SAMPLER_CONFIG.penalties.lastN = 1), TypeError, "frozen, nested objects too");
  });

  it("loads the tiny GGUF: dimensions and tokenizer from the file alone", () => {
    assert.ok(gguf instanceof Model);
    assert.equal(gguf.vocabSize, 512);
    assert.equal(gguf.contextLength, model.contextLength);
    assert.deepEqual([...gguf.encode(PROMPT)], [...model.encode(PROMPT)], "the same ids as tokenizer.json");
    assert.equal(gguf.decode(gguf.encode(PROMPT)), PROMPT);
  });
});

for (const [format, prefix] of [["ONNX", "tiny"], ["GGUF", "tiny_gguf"]]) {
  const m = format === "GGUF" ? gguf : model;
  describe(`seeded generations match the native fixture (${format}: ${prefix}_*.json)`, () => {
    it("the fixtures have cases", () => {
      assert.ok(fixture(`${prefix}_generation.json`).length >= 8, `${prefix}_generation.json`);
      assert.ok(fixture(`${prefix}_superposed.json`).length >= 1, `${prefix}_superposed.json`);
    });

    for (const c of fixture(`${prefix}_generation.json`)) {
      it(`${c.name} (generate)`, async () => {
        const seen = [];
        const steps = await m.generate(PROMPT, c.config, (step) => seen.push(step));
        assert.equal(seen.length, steps.length, "onStep saw every step");
        assert.ok(steps.every((s) => s.kind === "token"));
        assert.deepEqual(steps.map((s) => s.token), c.tokens);
        assert.equal(steps.map((s) => s.text).join(""), c.text);
        assert.equal(steps.at(-1).finish, "length");
        if (c.config.sampler.mirostat) assert.ok(steps.every((s) => typeof s.mu === "number"), "Mirostat steps carry mu");
      });
    }

    it("default chain (start/next, a step at a time)", async () => {
      const c = fixture(`${prefix}_generation.json`).find((c) => c.name === "default chain");
      await m.start(PROMPT, c.config);
      const tokens = [];
      for (let step; (step = await m.next()); ) tokens.push(step.token);
      assert.deepEqual(tokens, c.tokens);
      assert.equal(await m.next(), undefined, "nothing after the end");
    });

    for (const c of fixture(`${prefix}_superposed.json`)) {
      it(`superposed: ${c.name}`, async () => {
        m.setNgramStore(NGRAMS);
        const steps = await m.generate(PROMPT, c.config);
        assert.ok(steps.every((s) => s.kind === "drafts"));
        assert.deepEqual(steps.map((s) => s.live.map((n) => n.token)), c.live);
        const last = steps.at(-1);
        assert.deepEqual(last.drafts.map((d) => d.tokens), c.drafts);
        assert.deepEqual(last.drafts.map((d) => d.text), c.texts);
      });
    }
  });
}

describe("streams, stop strings, alternatives, chat templates", () => {
  const config = { maxTokens: 8, stopTokens: [] };

  it("for await over stream() gives generate()'s steps; break and abort end it", async () => {
    const all = await model.generate(PROMPT, config);
    const streamed = [];
    for await (const step of model.stream(PROMPT, config)) streamed.push(step);
    assert.deepEqual(streamed, all);
    for await (const step of model.stream(PROMPT, config)) if (step.kind === "token") break;
    assert.equal((await model.generate(PROMPT, { maxTokens: 2 })).length, 2, "break cancelled the generation");
    const controller = new AbortController();
    let seen = 0;
    const loop = async () => {
      for await (const _ of model.stream(PROMPT, config, { signal: controller.signal })) if (++seen === 2) controller.abort();
    };
    await assert.rejects(loop, (e) => e instanceof DOMException && e.name === "AbortError" && e.code === "Cancelled");
    assert.equal(seen, 2);
    const stream = model.stream("", config); // bad input: no throw here, a rejection at the first step
    await assert.rejects(async () => { for await (const _ of stream); }, (e) => e.code === "InvalidInput" && /prompt is empty/.test(e.message));
  });

  it("a stop string ends the text before it, across token boundaries", async () => {
    const greedy = { maxTokens: 24, stopTokens: [], sampler: { temperature: 0 } };
    const text = (await model.generate(PROMPT, greedy)).map((s) => s.text).join("");
    const stop = text.slice(Math.floor(text.length / 3), Math.floor(text.length / 3) + 3);
    const steps = await model.generate(PROMPT, { ...greedy, stopStrings: [stop] });
    assert.equal(steps.map((s) => s.text).join(""), text.slice(0, text.indexOf(stop)));
    assert.equal(steps.at(-1).finish, "stop");
  });

  it("alternatives carry their text, and topN still works with a deprecation warning", async () => {
    const [step] = await model.generate(PROMPT, { maxTokens: 1 });
    for (const alternative of step.top) assert.equal(alternative.text, model.decode(Uint32Array.of(alternative.token)));
    const warnings = [];
    const warn = console.warn;
    console.warn = (message) => warnings.push(String(message));
    try {
      const [old] = await model.generate(PROMPT, { maxTokens: 1, sampler: { topN: 3 } });
      assert.equal(old.top.length, 3);
    } finally {
      console.warn = warn;
    }
    assert.deepEqual(warnings, ["decoding-playground: `topN` is deprecated and goes in 0.2.0: use `topAlternatives` (the same setting)"]);
  });

  it("chat templates render as Python's Jinja2 renders them for transformers' apply_chat_template", () => {
    const python = join(repo, "models/.venv/bin/python");
    assert.ok(existsSync(python), "models/.venv (models/build.sh) holds the Jinja2 reference");
    const smollm2 = join(repo, "models/smollm2-135m/model.gguf");
    const run = spawnSync(python, [join(repo, "models/chat_reference.py"), smollm2, "--without-special-tokens"], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    const { cases } = JSON.parse(run.stdout);
    assert.ok(cases.length >= 18);
    assert.equal(model.chatTemplate, undefined, "a tokenizer.json carries no template");
    // Without a config.json, nothing names the special tokens: the reference renders without them.
    const bare = new Model(ONNX, TOKENIZER, null);
    for (const c of cases) {
      bare.setChatTemplate(c.template);
      const render = () => bare.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt });
      if (c.error === undefined) assert.equal(render(), c.expected, c.name);
      else assert.throws(render, (e) => e.code === "ChatTemplate" && (c.error_kind !== "raised" || e.message === `chat template: ${c.error}`), c.name);
    }
    bare.free();
    assert.throws(() => model.setChatTemplate("{% if %}"), (e) => e.code === "ChatTemplate");
    model.setChatTemplate(null);
    assert.throws(() => model.applyChatTemplate([{ role: "user", content: "hi" }]), /no chat template/);
    assert.throws(() => model.applyChatTemplate([{ role: "user" }]), (e) => e.code === "InvalidConfig");
  });
});

describe("Model.load", () => {
  // Serves models/tiny, and for /onnx/ its ONNX export with a tokenizer_config.json naming a
  // chat template, as an HF folder has.
  const TEMPLATE = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}";
  let server, base;
  before(async () => {
    server = createServer((req, res) => {
      const name = new URL(req.url, "http://x").pathname.split("/").pop();
      if (name === "tokenizer_config.json") return res.end(JSON.stringify({ chat_template: TEMPLATE }));
      // Says it is 5 GB, sends one byte and waits: the client must give up on the header alone.
      if (name === "huge.gguf") return res.writeHead(200, { "Content-Length": String(5e9) }).write(Buffer.alloc(1));
      const split = /^model-0000[123]-of-00003\.gguf$/.test(name);
      if (!split && !["model.gguf", "model.onnx", "tokenizer.json", "config.json"].includes(name)) return res.writeHead(404).end();
      const body = tiny(split ? `split/${name}` : name);
      res.writeHead(200, { "Content-Length": body.length }).end(body);
    });
    await new Promise((done) => server.listen(0, "127.0.0.1", done));
    base = `http://127.0.0.1:${server.address().port}`;
  });
  after(() => {
    server?.closeAllConnections();
    server?.close();
  });

  const watch = () => {
    const events = [];
    return [events, (p) => events.push(p)];
  };

  it("a .gguf URL, with progress in bytes and phases (Node has no Cache API: a plain download)", async () => {
    const [events, onProgress] = watch();
    const loaded = await Model.load(`${base}/tiny/model.gguf`, { onProgress });
    assert.equal(loaded.vocabSize, 512);
    const downloads = events.filter((e) => e.phase === "download");
    assert.ok(downloads.length >= 1 && downloads.every((e) => e.file === "model.gguf" && e.total === GGUF.length));
    assert.ok(downloads.every((e, i) => i === 0 || e.loaded > downloads[i - 1].loaded), "loaded only grows");
    assert.equal(downloads.at(-1).loaded, GGUF.length);
    assert.deepEqual(events.slice(-2).map((e) => e.phase), ["build", "ready"]);
    assert.deepEqual((await loaded.generate(PROMPT, { maxTokens: 3 })).map((s) => s.token), (await gguf.generate(PROMPT, { maxTokens: 3 })).map((s) => s.token));
    loaded.free();
  });

  it("a split GGUF's first URL brings every part; a file past MAX_MODEL_BYTES is refused from its Content-Length", async () => {
    const [events, onProgress] = watch();
    const loaded = await Model.load(`${base}/tiny/split/model-00001-of-00003.gguf`, { onProgress });
    const files = [...new Set(events.filter((e) => e.phase === "download").map((e) => e.file))];
    assert.deepEqual(files, [1, 2, 3].map((n) => `model-0000${n}-of-00003.gguf`));
    assert.deepEqual((await loaded.generate(PROMPT, { maxTokens: 3 })).map((s) => s.token), (await gguf.generate(PROMPT, { maxTokens: 3 })).map((s) => s.token));
    assert.deepEqual([loaded.architecture, loaded.parameterCount, loaded.tokenizerKind], ["llama", 106_816, "byte-level BPE (smollm)"]);
    loaded.free();
    await assert.rejects(Model.load(`${base}/huge.gguf`), (e) => e.code === "TooLarge" && /^huge\.gguf is 5\.0 GB, more than the 3\.2 GB this engine can hold/.test(e.message));
  });

  it("an ONNX export's folder URL, with its tokenizer_config.json's chat template", async () => {
    const [events, onProgress] = watch();
    const loaded = await loadModel(`${base}/onnx/`, { onProgress });
    assert.deepEqual([...new Set(events.filter((e) => e.phase === "download").map((e) => e.file))], ["model.onnx", "tokenizer.json", "config.json"]);
    assert.equal(loaded.chatTemplate, TEMPLATE);
    assert.equal(loaded.applyChatTemplate([{ role: "user", content: "hi" }]), "<user>hi");
    loaded.free();
    await assert.rejects(Model.load(`${base}/onnx/`, { contextLength: 64 }), (e) => e.code === "InvalidConfig" && /GGUF files only/.test(e.message));
  });

  it("bytes, an ArrayBuffer, a Blob and a Response", async () => {
    const sources = [GGUF, GGUF.buffer.slice(GGUF.byteOffset, GGUF.byteOffset + GGUF.length), new Blob([GGUF]), new Response(GGUF)];
    for (const source of sources) {
      const [events, onProgress] = watch();
      const loaded = await Model.load(source, { onProgress });
      assert.equal(loaded.vocabSize, 512, source.constructor.name);
      assert.equal(events.at(-1).phase, "ready");
      loaded.free();
    }
  });

  it("a list of Files, as a drop gives them: a .gguf alone, or an ONNX export's files", async () => {
    const fileOf = (name, body = tiny(name)) => new File([body], name);
    const fromDrop = await Model.load([fileOf("notes.json", "{}"), fileOf("model.gguf")]);
    assert.equal(fromDrop.vocabSize, 512);
    fromDrop.free();
    const onnxFiles = ["model.onnx", "tokenizer.json", "config.json"].map((name) => fileOf(name));
    const [events, onProgress] = watch();
    const onnx = await Model.load([...onnxFiles, fileOf("tokenizer_config.json", JSON.stringify({ chat_template: TEMPLATE }))], { onProgress });
    assert.deepEqual([...new Set(events.filter((e) => e.phase === "read").map((e) => e.file))], ["model.onnx", "tokenizer.json"]);
    assert.equal(onnx.applyChatTemplate([{ role: "user", content: "hi" }]), "<user>hi");
    onnx.free();
    assert.equal(modelFiles(onnxFiles).format, "onnx");
    await assert.rejects(Model.load(onnxFiles.slice(0, 1)), (e) => e.code === "InvalidInput" && /^missing tokenizer\.json: /.test(e.message));
    await assert.rejects(Model.load([fileOf("a.gguf", "x"), fileOf("b.gguf", "y")]), (e) => e.code === "InvalidInput" && /^2 \.gguf files/.test(e.message));
    // A split GGUF's parts, in any order; one missing is named.
    const part = (n) => new File([tiny(`split/model-0000${n}-of-00003.gguf`)], `model-0000${n}-of-00003.gguf`);
    const split = await Model.load([part(3), part(1), part(2)]);
    assert.equal(split.parameterCount, 106_816);
    split.free();
    await assert.rejects(Model.load([part(1), part(3)]), (e) => e.code === "InvalidInput" && e.message === "the model is split into 3 parts: model-00002-of-00003.gguf is missing; give them all together");
    await assert.rejects(Model.load([...onnxFiles, fileOf("tokenizer_config.json", "{")]), (e) => e.code === "InvalidInput" && /^tokenizer_config\.json is not JSON/.test(e.message));
  });

  it("aborts with an AbortError; bad sources and HTTP errors have codes", async () => {
    const controller = new AbortController();
    const aborted = await Model.load(`${base}/tiny/model.gguf`, { signal: controller.signal, onProgress: () => controller.abort() }).catch((e) => e);
    assert.ok(aborted instanceof DOMException && aborted.name === "AbortError" && aborted.code === "Cancelled", String(aborted));
    await assert.rejects(Model.load(`${base}/tiny/missing.gguf`), (e) => e.code === "Network" && /HTTP 404/.test(e.message));
    await assert.rejects(Model.load(42), (e) => e.code === "InvalidInput");
    await assert.rejects(Model.load(new Uint8Array([1, 2, 3, 4])), (e) => e.code === "Model" && /not a GGUF file/.test(e.message));
  });
});

describe("the worker helper in a Node worker thread", () => {
  const thread = () => new Worker(new URL("./node-worker.mjs", import.meta.url));

  it("gives the same tokens as the model on this thread, and aborts keep their steps", async () => {
    const inThread = await createWorkerModel(thread(), GGUF);
    try {
      const config = { maxTokens: 8, sampler: { seed: 7 } };
      const want = (await gguf.generate(PROMPT, config)).map((s) => s.token);
      assert.deepEqual((await inThread.generate(PROMPT, config)).map((s) => s.token), want);
      assert.equal(inThread.vocabSize, gguf.vocabSize);
      // Node runs the single-threaded build (wasm-bindgen-rayon starts Web Workers only).
      assert.deepEqual(inThread.threads, { threaded: false, threads: 1, note: null });
      const controller = new AbortController();
      const aborted = await inThread.generate(PROMPT, { maxTokens: 200 }, () => controller.abort(), controller.signal).catch((e) => e);
      assert.equal(aborted.name, "AbortError");
      assert.ok(aborted.steps.length >= 1);
      const bad = await inThread.generate(PROMPT, { sampler: { topK: 0 } }).catch((e) => e);
      assert.equal(bad.code, "InvalidConfig");
      // What a generation would not use, from the whole config, as the package's own export says.
      const superposed = { stopStrings: ["\n"], sampler: { topK: 5 }, superposed: { drafts: 2 } };
      assert.deepEqual(await inThread.ignoredSettings(superposed), ["sampler.topK", "stopStrings"]);
      assert.deepEqual(await inThread.ignoredSettings({ stopStrings: ["\n"], sampler: { topK: 5 } }), []);
      assert.deepEqual((await inThread.describeSampler({ topK: 5, topP: null, mirostat: { version: 2, tau: 3, eta: 0.1 } })).ignoredSettings, ["topK"]);
      assert.equal((await inThread.ignoredSettings({ sampler: { topk: 5 } }).catch((e) => e)).code, "InvalidConfig");
    } finally {
      inThread.terminate();
    }
  });

  it("forks a run at any position, on the model and in the worker alike, from the kept prefix", async () => {
    const inThread = await createWorkerModel(thread(), GGUF);
    try {
      const config = { maxTokens: 12, stopTokens: [], sampler: { seed: 3, temperature: 0.9 } };
      const run = (await gguf.generate(PROMPT, config)).map((s) => s.token);
      const other = (run[4] + 1) % 60;
      const branch = (await gguf.fork(PROMPT, [...run.slice(0, 4), other], config)).map((s) => s.token);
      assert.equal(branch.length, 12);
      assert.deepEqual((await inThread.generate(PROMPT, config)).map((s) => s.token), run);
      assert.deepEqual((await inThread.fork(PROMPT, [...run.slice(0, 4), other], config)).map((s) => s.token), branch);
      assert.ok(inThread.prefixCachePositions > 0 && inThread.prefixCacheHeldBytes > 0, "the run's rows are kept");
      const bad = await inThread.fork(PROMPT, [1 << 20], config).catch((e) => e);
      assert.match(bad.message, /1048576/);
    } finally {
      inThread.terminate();
    }
  });

  it("asked for threads, says that Node runs on one; refuses a count that is not one", async () => {
    const two = await createWorkerModel(thread(), GGUF, { threads: 2 });
    try {
      assert.equal(two.threads.threads, 1);
      assert.match(two.threads.note, /^in Node the engine runs single-threaded/);
      assert.equal((await two.generate(PROMPT, { maxTokens: 3 })).length, 3);
    } finally {
      two.terminate();
    }
    const worker = thread();
    await assert.rejects(createWorkerModel(worker, GGUF, { threads: 0 }), (e) => e.code === "InvalidConfig" && /threads must be a whole number/.test(e.message));
  });

  it("a trap while idle ends the model at once, through onFailure", async () => {
    const worker = thread();
    let heard;
    const failed = new Promise((resolve) => (heard = resolve));
    const inThread = await createWorkerModel(worker, GGUF, { onFailure: heard });
    worker.postMessage({ type: "panic-for-testing" });
    const error = await failed;
    assert.equal(error.code, "EngineFailed");
    assert.match(error.message, /panicked at .*forced in the worker thread/s);
    assert.equal((await inThread.decode([1]).catch((e) => e)).code, "EngineFailed");
  });
});

describe("score", () => {
  it("scores a text teacher-forced: each token's figures agree with logProbs, and the perplexity", async () => {
    const text = "The little whale swam across the sea, and the boat followed it home.";
    const result = await gguf.score(text, { topAlternatives: 3 });
    const ids = [...gguf.encode(text)];
    assert.deepEqual(result.tokens.map((t) => t.token), ids);
    assert.equal(result.tokens.map((t) => t.text).join(""), text);
    assert.equal(result.tokens[0].prob, null, "nothing predicts the first token");
    const logProbs = await gguf.logProbs(Uint32Array.from(ids));
    result.tokens.slice(1).forEach((t, i) => {
      assert.ok(Math.abs(t.surpriseBits + logProbs[i] / Math.LN2) < 2e-3, `token ${i + 1}`);
      assert.ok(t.rank >= 1 && t.top.length === 3 && t.entropyBits >= 0);
    });
    const mean = -logProbs.reduce((a, b) => a + b, 0) / logProbs.length / Math.LN2;
    assert.ok(Math.abs(result.perplexity / 2 ** mean - 1) < 1e-3);
    const withContext = await gguf.score(" and the boat followed it home.", { context: "The little whale swam across the sea," });
    assert.equal(withContext.scored, withContext.tokens.length, "after a context every token is scored");
    await throwsError(() => gguf.score("", {}), /^text must be at least two tokens/);
    await throwsError(() => gguf.score(text, { topn: 2 }), /unknown field `topn`/);
  });
});

describe("GGUF files as llama.cpp writes them", () => {
  // models/tiny/quants: llama.cpp's quantiser's Q4_K_M, Q5_K_M and Q6_K mixes of the tiny llama, with
  // the float64 exact forward's logits over gguf-py's dequantisation of each file; models/tiny/archs:
  // every architecture beyond SmolLM2's, with llama.cpp's logits (F32 weights, exact to ~1e-5).
  const files = ["quants", "archs"].flatMap((dir) =>
    readdirSync(join(repo, "models/tiny", dir)).filter((f) => f.endsWith(".gguf")).map((f) => `${dir}/${f}`));

  /** ln p(ids[i + 1]) under each position's reference logits (rows, or flattened rows). */
  function referenceLogProbs({ ids, logits }) {
    const vocab = Array.isArray(logits[0]) ? logits[0].length : logits.length / ids.length;
    const row = (i) => (Array.isArray(logits[0]) ? logits[i] : logits.slice(i * vocab, (i + 1) * vocab));
    return ids.slice(1).map((next, i) => {
      const r = row(i), max = Math.max(...r);
      return r[next] - max - Math.log(r.reduce((sum, x) => sum + Math.exp(x - max), 0));
    });
  }

  it("loads every one and gives the reference's log-probabilities", async (t) => {
    assert.ok(files.length >= 9, `the tiny llama.cpp files: ${files}`);
    const worstByFile = [];
    for (const file of files) {
      const reference = JSON.parse(readFileSync(join(repo, "models/tiny", file.replace(/\.gguf$/, ".json")), "utf8"));
      // llama.cpp ran them at n_ctx 64, which it rounds up to 256; LongRoPE picks its factors by it.
      const loaded = await Model.fromGguf(tiny(file), { contextLength: 256 });
      const got = await loaded.logProbs(Uint32Array.from(reference.ids));
      const want = referenceLogProbs(reference);
      const worst = Math.max(...want.map((w, i) => Math.abs(got[i] - w)));
      // The CPU kernels' int16 activations move the logits by up to 3e-3 (model_quants.rs).
      assert.ok(worst < 6e-3, `${file}: max |Δ ln p| ${worst}`);
      worstByFile.push(`${file} ${worst.toExponential(1)}`);
      const steps = await loaded.generate(loaded.decode(Uint32Array.from(reference.ids.slice(0, 4))), { maxTokens: 4, stopTokens: [], sampler: { temperature: 0 } });
      assert.equal(steps.length, 4, `${file} generates`);
      loaded.free();
    }
    t.diagnostic(`max |Δ ln p| against the reference: ${worstByFile.join(", ")}`);
  });
});

describe("the backend", () => {
  it("is the CPU in Node, which has no WebGPU, and the model says why; forcing WebGPU is a clear error", async () => {
    assert.equal(gguf.backend.backend, "cpu");
    assert.match(gguf.backend.fallbackReason, /navigator\.gpu/);
    assert.deepEqual(model.backend, { backend: "cpu", adapter: null, fallbackReason: null, fallbackWeightBytes: null }, "an ONNX model runs on the CPU");
    await throwsError(() => Model.fromGguf(GGUF, { backend: "webgpu" }), /^WebGPU: this JavaScript environment has no WebGPU/);
    await throwsError(() => Model.fromGguf(GGUF, { backend: "gpu" }), /^invalid config: .*unknown variant `gpu`/);
  });
});

describe("bad input gives JS Errors with messages", () => {
  it("corrupt model bytes", async () => {
    await throwsError(() => new Model(ONNX.subarray(0, ONNX.length / 2), TOKENIZER, CONFIG), /^model error/);
    await throwsError(() => new Model(new TextEncoder().encode("not onnx at all"), TOKENIZER, CONFIG), /^model error/);
  });

  it("bad GGUF files: wrong magic, unsupported version, truncated, empty", async () => {
    const copy = () => Uint8Array.from(GGUF);
    const wrongMagic = copy();
    wrongMagic.set(new TextEncoder().encode("GGML"), 0);
    await throwsError(() => Model.fromGguf(wrongMagic), /^model error: not a GGUF file \(magic .*expected "GGUF"\)/);
    await throwsError(() => Model.fromGguf(new TextEncoder().encode("not a model at all")), /^model error: not a GGUF file/);
    // The version is the u32 after the magic: 2 and 3 are read.
    const version1 = copy();
    new DataView(version1.buffer).setUint32(4, 1, true);
    await throwsError(() => Model.fromGguf(version1), /^model error: GGUF version 1 is not supported/);
    // Cut inside the tensor data, and inside the header.
    await throwsError(() => Model.fromGguf(GGUF.subarray(0, GGUF.length - 100)), /^model error: the file ends inside tensor `[^`]+`/);
    await throwsError(() => Model.fromGguf(GGUF.subarray(0, 200)), /^model error: the header claims \d+ metadata entries, more than the \d+ bytes left can hold/);
    await throwsError(() => Model.fromGguf(new Uint8Array(0)), /^model error: /);
    assert.equal((await gguf.generate(PROMPT, { maxTokens: 2 })).length, 2, "the loaded GGUF model is untouched");
  });

  it("bad tokenizer.json", async () => {
    await throwsError(() => new Model(ONNX, new TextEncoder().encode("{oops"), CONFIG), /^tokenizer error: invalid tokenizer\.json/);
  });

  it("unknown config key", async () => {
    await throwsError(() => model.start(PROMPT, { maxtokens: 3 }), /unknown field `maxtokens`/);
    await throwsError(() => model.generate(PROMPT, { sampler: { topp: 0.9 } }), /unknown field `sampler\.topp`/);
    await throwsError(() => new Sampler({ temprature: 1 }), /unknown field `temprature`/);
  });

  it("out-of-range parameter", async () => {
    await throwsError(() => model.start(PROMPT, { sampler: { topK: 0 } }), /topK must be at least 1/);
    await throwsError(() => model.start(PROMPT, { maxTokens: 0 }), /^maxTokens must be at least 1/);
    await throwsError(() => new Sampler({ mirostat: { version: 3, tau: 5, eta: 0.1 } }), /^mirostat\.version must be 1 or 2, got 3/);
  });

  it("NaN logits", async () => {
    const sampler = new Sampler({ seed: 1 });
    await throwsError(() => sampler.sample(new Float32Array([0.5, Number.NaN, 1])), /^logit 1 is NaN; logits must be finite numbers/);
    assert.equal(typeof sampler.sample(new Float32Array([0.5, 2, 1])).token, "number", "usable after");
    sampler.free();
  });

  it("empty prompt", async () => {
    await throwsError(() => model.start("", {}), /^the prompt is empty$/);
  });

  it("over-long prompt", async () => {
    await throwsError(() => model.generate("a b ".repeat(model.contextLength), {}), /the context holds 512/);
  });

  it("cancellation via AbortSignal, then via cancel()", async () => {
    const controller = new AbortController();
    let seen = 0;
    const message = await throwsError(
      () => model.generate(PROMPT, { maxTokens: 50 }, () => ++seen === 3 && controller.abort(), controller.signal),
      /^generation was cancelled$/,
    );
    assert.equal(seen, 3, `stopped within a step (${message})`);
    const aborted = await model.generate(PROMPT, { maxTokens: 50 }, () => ++seen && controller.abort(), controller.signal).catch((e) => e);
    assert.ok(aborted instanceof DOMException && aborted.name === "AbortError" && aborted.code === "Cancelled", String(aborted));
    assert.deepEqual(aborted.steps, [], "an already aborted signal stops before the first step");
    const partial = new AbortController();
    const stopped = await model.generate(PROMPT, { maxTokens: 50 }, (step) => step.text !== undefined && partial.abort(), partial.signal).catch((e) => e);
    assert.equal(stopped.steps.length, 1, "the steps made before the abort stay reachable");
    assert.equal(typeof stopped.steps[0].text, "string");
    assert.equal(await model.next(), undefined, "the cancelled generation is gone");
    seen = 0;
    await throwsError(() => model.generate(PROMPT, { maxTokens: 50 }, () => ++seen === 2 && model.cancel()), /^generation was cancelled$/);
    assert.equal(seen, 2);
    assert.equal((await model.generate(PROMPT, { maxTokens: 2 })).length, 2, "the model is usable after");
  });

  it("corrupt, empty and foreign n-gram stores", async () => {
    await throwsError(() => model.setNgramStore(NGRAMS.subarray(0, NGRAMS.length - 4)), /^n-gram store: not a valid n-gram store/);
    await throwsError(() => model.setNgramStore(new Uint8Array(0)), /^n-gram store: not a valid n-gram store/);
    // The same store with another tokenizer's fingerprint (header bytes 24..32).
    const foreign = Uint8Array.from(NGRAMS);
    foreign[24] ^= 0xff;
    await throwsError(() => model.setNgramStore(foreign), /built with another tokenizer/);
    model.setNgramStore(null);
    await throwsError(() => model.start(PROMPT, { superposed: {} }), /needs an n-gram store/);
  });
});
