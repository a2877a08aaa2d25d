import { describe, expect, it } from "vitest";
import type { BeamConfig, BeamStep, FetchBytes, LoadProgress, Step as RawStep } from "decoding-playground";
import { EngineClient, kindOf, weightTypesOf, WorkerError, type EngineModel, type Notice } from "./client";
import type { GenerateConfig, ModelSource, TokenStep } from "./protocol";
import { defaultStrategy, toConfig } from "./settings";

const BUSY = "a generation is running on this model: await it or cancel it first";
const coded = (message: string, code: string) => Object.assign(new Error(message), { code });
// As the package makes it: a DOMException's own `code` is a getter, so it is defined over it.
const abortError = () => Object.defineProperty(new DOMException("generation was cancelled", "AbortError"), "code", { value: "Cancelled" });

/** The server's files, as the fake worker fetches them. */
const SERVER: Record<string, string> = {
  "/m.gguf": "GGUFgguf-model",
  "/m.onnx": "\x08onnx",
  "/bad.gguf": "nope",
};

// Like the package's WorkerModel: asynchronous calls, a model only after load(), steps one per
// macrotask, errors with a `code`.
class FakeEngine implements EngineModel {
  vocabSize = 0;
  contextLength = 0;
  ngramStoreTokens = 0;
  backend = undefined as unknown as EngineModel["backend"];
  weightTypes = undefined as unknown as string[];
  kvCacheBytesPerToken = 0;
  chatTemplate: string | undefined = undefined;
  architecture: string | undefined = undefined;
  parameterCount: number | undefined = undefined;
  tokenizerKind: string | undefined = undefined;
  threads: EngineModel["threads"] = { threaded: true, threads: 2, note: null };
  reusePrefix = false;
  modelName: string | null = null;
  prompts: string[] = [];
  loads: { source: unknown; options: Record<string, unknown> }[] = [];
  decoded: number[] = [];
  terminated = false;
  constructor(readonly onFailure: (error: Error) => void) {}

  async load(source: unknown, options: { onProgress?: (p: LoadProgress) => void; [key: string]: unknown } = {}) {
    const { onProgress, ...rest } = options;
    this.loads.push({ source, options: rest });
    let name: string;
    if (Array.isArray(source)) {
      const file = source[0] as File;
      onProgress?.({ phase: "read", file: file.name, loaded: file.size, total: file.size });
      name = await file.text();
    } else {
      const text = SERVER[new URL(String(source), "http://x").pathname];
      if (text === undefined) throw coded(`cannot fetch ${source}: HTTP 404 Not Found`, "Network");
      onProgress?.({ phase: String(source).includes("cached") ? "cache" : "download", file: "f", loaded: text.length, total: text.length });
      name = text;
    }
    onProgress?.({ phase: "build", file: null, loaded: 0, total: null });
    if (!name.startsWith("GGUF") && !name.startsWith("\x08")) throw coded("model error: not a GGUF file", "Model");
    this.modelName = name;
    Object.assign(this, { vocabSize: 512, contextLength: 64, kvCacheBytesPerToken: 256, ngramStoreTokens: 0 });
    this.weightTypes = (name.startsWith("GGUF") ? ["Q4_1", "Q8_0"] : undefined) as unknown as string[];
    this.backend = { backend: "cpu", adapter: null, fallbackReason: null } as unknown as EngineModel["backend"];
    if (name.startsWith("GGUF")) Object.assign(this, { architecture: "llama", parameterCount: 106_816, tokenizerKind: "byte-level BPE (smollm)" });
  }
  async applyChatTemplate(messages: { role: string; content: string }[], options?: { addGenerationPrompt?: boolean }) {
    if (this.chatTemplate === undefined) throw coded("chat template: this model has no chat template", "ChatTemplate");
    return messages.map((m) => `<${m.role}>${m.content}</${m.role}>`).join("") + (options?.addGenerationPrompt ? "<assistant>" : "");
  }
  generating = false;
  async generate(prompt: string, config?: GenerateConfig, onStep?: ((step: RawStep) => void) | null, signal?: AbortSignal | null) {
    if (this.generating) throw coded(BUSY, "Busy");
    this.generating = true;
    try {
      return await this.generateAlone(prompt, config, onStep, signal);
    } finally {
      this.generating = false;
    }
  }
  async beamSearch(prompt: string, config?: BeamConfig, onStep?: ((step: BeamStep) => void) | null, signal?: AbortSignal | null) {
    this.prompts.push(prompt);
    for (let step = 0; step < config!.maxTokens!; step++) {
      onStep?.({ step, kept: [], finished: [], pruned: [], results: [] });
      await new Promise((r) => setTimeout(r, 0));
      if (signal?.aborted) throw abortError();
    }
    return [{ tokens: [1, 2], node: 3, text: "ab", sumLogProb: -1, score: -0.5 }];
  }
  forks: number[][] = [];
  async fork(prompt: string, tokens: ArrayLike<number>, config?: GenerateConfig, onStep?: ((step: RawStep) => void) | null, signal?: AbortSignal | null) {
    this.forks.push(Array.from(tokens));
    return this.generate(prompt, config, onStep, signal);
  }
  private async generateAlone(prompt: string, config?: GenerateConfig, onStep?: ((step: RawStep) => void) | null, signal?: AbortSignal | null) {
    this.prompts.push(prompt);
    if (prompt === "") throw coded("the prompt is empty", "InvalidInput");
    if (config!.sampler.topP !== null && config!.sampler.topP > 1) throw coded("invalid config: topP must be in (0, 1], got 1.5", "InvalidConfig");
    const steps: RawStep[] = [];
    for (let i = 0; i < config!.maxTokens; i++) {
      const step = {
        kind: "token", token: 10 + i, prob: 0.5, surpriseBits: 1, entropyBits: 2, kept: 3,
        top: i % 2 ? [{ token: 10 + i, prob: 0.5, text: `top${i}` }, { token: 99, prob: 0.25, text: "x" }] : [{ token: 99, prob: 0.25, text: "x" }],
        perplexity: 2, text: `w${i}`, ...(i === config!.maxTokens - 1 ? { finish: "length" } : {}),
      } as RawStep;
      onStep?.(step);
      steps.push(step);
      await new Promise((r) => setTimeout(r, 0));
      if (signal?.aborted) throw Object.assign(abortError(), { steps });
      if (this.failAfter === i) {
        const error = coded("the engine failed (panicked at forced) and cannot be used any more", "EngineFailed");
        this.onFailure(error);
        throw error;
      }
    }
    return steps;
  }
  failAfter = -1;
  async encode(text: string) {
    return Uint32Array.from(text, (c) => c.charCodeAt(0));
  }
  async decode(ids: ArrayLike<number>) {
    this.decoded.push(...Array.from(ids));
    return Array.from(ids, (id) => `<${id}>`).join("");
  }
  // Like the package: words are tokens; without a context the first has no figures.
  async score(text: string, config?: { context?: string; topAlternatives?: number }) {
    if (this.generating) throw coded(BUSY, "Busy");
    const words = text.split(" ").filter(Boolean);
    if (words.length + (config?.context ? 1 : 0) < 2) throw coded("text must be at least two tokens, or one after a context", "InvalidInput");
    const tokens = words.map((word, i) =>
      i === 0 && !config?.context
        ? { token: i, text: word, prob: null, surpriseBits: null, entropyBits: null, rank: null, top: [] }
        : { token: i, text: ` ${word}`, prob: 0.25, surpriseBits: 2, entropyBits: 3, rank: i, top: [{ token: 99, prob: 0.5, text: "x" }] },
    );
    return { contextTokens: config?.context ? 1 : 0, tokens, scored: tokens.length - (config?.context ? 0 : 1), meanSurpriseBits: 2, perplexity: 4 } as never;
  }
  async setNgramStore(bytes: Uint8Array | null) {
    this.ngramStoreTokens = bytes ? bytes.length : 0;
  }
  async buildNgramStore(text: string, extend: boolean) {
    this.ngramStoreTokens = (extend ? this.ngramStoreTokens : 0) + text.split(/\s+/).length;
    return new Uint8Array(4);
  }
  async describeSampler(config?: unknown) {
    const c = config as GenerateConfig["sampler"];
    if (c.topP !== null && c.topP > 1) throw coded("invalid config: topP must be in (0, 1]", "InvalidConfig");
    return { stages: ["topK", "temperature"], ignoredSettings: c.mirostat && c.topK !== null ? ["topK"] : [] };
  }
  // As the crate answers: under superposed decoding, the sampler settings given and the stops.
  async ignoredSettings(config?: GenerateConfig) {
    if (!config?.superposed) return [];
    return ["sampler.topK", ...(config.stopStrings.length ? ["stopStrings"] : [])];
  }
  terminate() {
    this.terminated = true;
  }
}

function setup(stores: Record<string, number> = { "/store.bin": 7 }) {
  const engines: FakeEngine[] = [];
  const fetchBytes: FetchBytes = async (url, onProgress) => {
    const size = stores[url];
    if (size === undefined) throw coded(`cannot fetch ${url}: HTTP 404 Not Found`, "Network");
    onProgress(size, size, false);
    return { bytes: new Uint8Array(size), fromCache: false };
  };
  const client = new EngineClient(async (onFailure) => {
    const engine = new FakeEngine(onFailure);
    engines.push(engine);
    return engine;
  }, fetchBytes);
  const notices: Notice[] = [];
  const restarts: string[] = [];
  client.onNotice = (n) => notices.push(n);
  client.onRestart = (reason) => restarts.push(reason);
  const progress: string[] = [];
  const load = (source: ModelSource) => client.load(source, (phase, loaded, total, file) => progress.push(`${phase} ${file} ${loaded}/${total}`));
  return { client, engines, notices, restarts, progress, load, engine: () => engines[engines.length - 1]! };
}

const onnx: ModelSource = { kind: "url", format: "onnx", name: "fake", onnx: "/m.onnx", tokenizer: "/tok.json", config: "/config.json", ngrams: "/store.bin", param: null };
const gguf: ModelSource = { kind: "url", format: "gguf", name: "fake gguf", gguf: "/m.gguf", ngrams: "/store.bin", param: null };
const config = (maxTokens: number, changes: Partial<GenerateConfig["sampler"]> = {}): GenerateConfig => {
  const c = toConfig(defaultStrategy(), 0, maxTokens);
  return { ...c, sampler: { ...c.sampler, ...changes } };
};
const caught = (promise: Promise<unknown>) => promise.then(() => { throw new Error("resolved"); }, (e: unknown) => e as WorkerError);

describe("the page's engine client", () => {
  it("loads an ONNX export from its model.onnx URL, with progress, sizes and its n-gram store", async () => {
    const { load, progress, engine } = setup();
    const info = await load(onnx);
    expect(engine().loads).toEqual([{ source: "/m.onnx", options: {} }]);
    expect(progress).toEqual(["download f 5/5", "compile  0/null", "ngrams n-gram store 0/null", "download n-gram store 7/7"]);
    expect(info).toMatchObject({ name: "fake", format: "onnx", vocabSize: 512, contextLength: 64, bytes: 5, fromCache: false, ngramTokens: 7, weightTypes: null, chatTemplate: false, architecture: null, parameterCount: null, tokenizerKind: null, threads: { threaded: true, threads: 2, note: null } });
    expect(info.backend).toEqual({ backend: "cpu", adapter: null, fallbackReason: null });
  });

  it("asks for the backend and context cap on a GGUF only, and shows its weight types", async () => {
    const { client, load, engine } = setup();
    client.backend = "cpu";
    client.contextLength = 24;
    const info = await load(gguf);
    expect(engine().loads[0]).toEqual({ source: "/m.gguf", options: { backend: "cpu", contextLength: 24 } });
    expect(info.weightTypes).toEqual(["Q4_1", "Q8_0"]);
    expect(info).toMatchObject({ architecture: "llama", parameterCount: 106_816, tokenizerKind: "byte-level BPE (smollm)" });
    await load(onnx);
    expect(engine().loads[1]!.options).toEqual({});
  });

  it("hands dropped files to the package as they are, and keeps the model when a bad file follows", async () => {
    const { client, load, engine } = setup();
    const files = [new File(["GGUFmine"], "mine.gguf"), new File(["{}"], "extra.json")];
    const info = await load({ kind: "files", format: "gguf", name: "mine.gguf", files });
    expect(engine().loads[0]!.source).toBe(files);
    expect(info).toMatchObject({ name: "mine.gguf", bytes: 8, fromCache: false, ngramTokens: 0 });
    const bad = await caught(load({ kind: "files", format: "gguf", name: "bad.gguf", files: [new File(["nope"], "bad.gguf")] }));
    expect([bad.kind, bad.message]).toEqual(["load", "model error: not a GGUF file"]);
    expect((await client.run("hi", config(2), () => {})).steps).toHaveLength(2);
  });

  it("reports a missing file as a load error", async () => {
    const { load } = setup();
    const error = await caught(load({ ...gguf, gguf: "/missing.gguf" }));
    expect(error).toBeInstanceOf(WorkerError);
    expect([error.kind, error.message]).toEqual(["load", "cannot fetch /missing.gguf: HTTP 404 Not Found"]);
  });

  it("lets only the latest of two overlapping loads report its model", async () => {
    const { load, engine } = setup();
    const first = caught(load(gguf));
    const second = load(onnx);
    expect((await first).kind).toBe("superseded");
    expect((await second).format).toBe("onnx");
    expect(engine().loads).toHaveLength(2);
  });

  it("streams each step with its token's text, in order, then the stats", async () => {
    const { client, load, engine } = setup();
    await load(gguf);
    const seen: string[] = [];
    const result = await client.run("hi", config(4), (step) => seen.push(`${(step as TokenStep).tokenText}`));
    // An alternative names the odd steps' tokens; the even ones are decoded by the worker.
    expect(seen).toEqual(["<10>", "top1", "<12>", "top3"]);
    expect(engine().decoded).toEqual([10, 12]);
    expect(result.cancelled).toBe(false);
    expect(result.stats).toMatchObject({ steps: 4, tokens: 4 });
    expect(result.stats!.tokensPerSecond).toBeGreaterThan(0);
    expect(engine().prompts).toEqual(["hi"]);
  });

  it("a beam search streams its steps and resolves with the hypotheses; a stop keeps the steps made", async () => {
    const { client, load } = setup();
    await load(gguf);
    const seen: number[] = [];
    const config = { beams: 2, maxTokens: 3, lengthPenalty: 1, earlyStopping: false, stopTokens: null };
    const done = await client.beamSearch("hi", config, (step) => seen.push(step.step));
    expect([seen, done.hypotheses.map((h) => h.text), done.cancelled]).toEqual([[0, 1, 2], ["ab"], false]);
    const stopped = client.beamSearch("hi", { ...config, maxTokens: 50 }, (step) => step.step === 1 && client.stop());
    expect(await stopped).toMatchObject({ cancelled: true, hypotheses: [] });
    expect((await stopped).steps.length).toBeGreaterThanOrEqual(2);
  });

  it("a branch forks after the prompt with the tokens it takes as generated, and streams as a run", async () => {
    const { client, load, engine } = setup();
    await load(gguf);
    const result = await client.run("hi", config(3), () => {}, { after: [10, 99] });
    expect(engine().forks).toEqual([[10, 99]]);
    expect(engine().prompts).toEqual(["hi"]);
    expect(result.steps).toHaveLength(3);
  });

  it("chat: the prompt as a user message in the model's template; without one, a config error", async () => {
    const { client, load, engine } = setup();
    await load(gguf);
    const refused = await caught(client.run("hi", config(1), () => {}, { chat: true }));
    expect([refused.kind, refused.message]).toEqual(["config", "chat template: this model has no chat template"]);
    engine().chatTemplate = "{{ messages }}";
    await client.run("hi", config(1), () => {}, { chat: true, reusePrefix: true });
    expect(engine().prompts).toEqual(["<user>hi</user><assistant>"]);
    expect(engine().reusePrefix).toBe(true);
    // What a view scoring after the run's prompt (the probe) is told the run fed.
    expect([await client.fedPrompt("hi", true), await client.fedPrompt("hi", false)]).toEqual(["<user>hi</user><assistant>", "hi"]);
    expect(await client.encode("hi")).toEqual([104, 105]);
  });

  it("stops a run within a step: it resolves as cancelled, with the steps made", async () => {
    const { client, load } = setup();
    await load(gguf);
    let count = 0;
    const run = client.run("hi", config(50), () => {
      if (++count === 3) client.stop();
    });
    const result = await run;
    expect(result.cancelled).toBe(true);
    expect(result.steps).toHaveLength(3);
    expect(result.stats).toBeNull();
  });

  it("passes on the package's refusal of a second run or a score while one is going, which goes on untouched, and stop() still stops it", async () => {
    const { client, load } = setup();
    await load(gguf);
    const first = client.run("hi", config(5), () => {});
    const second = await caught(client.run("hi", config(5), () => {}));
    expect([second.kind, second.message]).toEqual(["run", BUSY]);
    const score = await caught(client.score("a b c", ""));
    expect([score.kind, score.message]).toEqual(["run", BUSY]);
    expect((await first).steps).toHaveLength(5);
    // The refused run must not take the first one's place as the run that stop() stops.
    const long = client.run("hi", config(50), () => {});
    await caught(client.run("hi", config(5), () => {}));
    client.stop();
    const stopped = await long;
    expect(stopped.cancelled).toBe(true);
    expect(stopped.steps.length).toBeLessThan(50);
  });

  it("reports a refused parameter as a config error, and a run before any model as a run error", async () => {
    const { client, load } = setup();
    expect((await caught(client.run("hi", config(1), () => {}))).message).toBe("no model is loaded yet");
    await load(gguf);
    const error = await caught(client.run("hi", config(3, { topP: 1.5 }), () => {}));
    expect(error.kind).toBe("config");
    expect((await caught(client.run("", config(3), () => {}))).kind).toBe("config");
    expect((await client.run("hi", config(2), () => {})).steps).toHaveLength(2);
  });

  it("scores a text: the unpredicted first token as the lead, each scored one with its rank and running perplexity", async () => {
    const { client, load } = setup();
    await load(gguf);
    const scored = await client.score("The cat sat", "");
    expect(scored.lead).toBe("The");
    expect(scored.steps.map((s) => [s.text, s.rank, s.perplexity, s.kept, s.tokenText])).toEqual([[" cat", 1, 4, 512, "<1>"], [" sat", 2, 4, 512, "<2>"]]);
    expect([scored.perplexity, scored.contextTokens]).toEqual([4, 0]);
    const refused = await caught(client.score("one", ""));
    expect([refused.kind, refused.message]).toEqual(["config", "text must be at least two tokens, or one after a context"]);
  });

  it("inspects a sampler config with or without a model: its stages, ignored settings or error", async () => {
    const { client } = setup();
    expect(await client.inspect(config(1))).toEqual({ stages: ["topK", "temperature"], ignored: [], error: null });
    expect((await client.inspect(config(1, { topP: 2 }))).error).toBe("invalid config: topP must be in (0, 1]");
    // What the generation drops comes from the whole config; the sampler's own names from the chain.
    const superposed = { ...config(1), stopStrings: ["\n"], superposed: toConfig({ ...defaultStrategy(), strategy: "superposed" }, 0, 1).superposed };
    expect((await client.inspect(superposed)).ignored).toEqual(["stopStrings"]);
    expect((await client.inspect({ ...superposed, stopStrings: [] })).ignored).toEqual([]);
  });

  it("restarts a failed engine: the run in flight fails as a crash, and the page is told why", async () => {
    const { client, load, engines, restarts } = setup();
    await load(gguf);
    engines[0]!.failAfter = 1;
    const error = await caught(client.run("hi", config(10), () => {}));
    expect(error.kind).toBe("crash");
    expect(restarts).toEqual(["the engine failed (panicked at forced) and cannot be used any more"]);
    expect(engines).toHaveLength(2);
    expect((await caught(client.run("hi", config(1), () => {}))).message).toBe("no model is loaded yet");
    await load(gguf);
    expect((await client.run("hi", config(1), () => {})).steps).toHaveLength(1);
  });

  it("loads the model even when its n-gram store is missing, and says so", async () => {
    const { load, notices } = setup({});
    const info = await load(gguf);
    await Promise.resolve();
    expect(info.ngramTokens).toBe(0);
    expect(notices).toEqual([{ type: "error", kind: "ngrams", message: expect.stringMatching(/^the model loaded, but not its n-gram store \(superposed decoding needs α = 0\): cannot fetch \/store.bin/) }]);
  });

  it("builds a personal n-gram store and goes back to the default one", async () => {
    const { client, load, notices } = setup();
    await client.buildNgrams("a b c", false);
    expect(notices.pop()).toEqual({ type: "error", kind: "ngrams", message: "load a model first: the store uses its tokenizer" });
    await load(gguf);
    await client.buildNgrams("a b c", false);
    await client.resetNgrams();
    expect(notices).toEqual([{ type: "ngrams", tokens: 3, personal: true }, { type: "ngrams", tokens: 7, personal: false }]);
  });

  it("names error kinds by code, and shows weight types only as a list of names", () => {
    expect(["EngineFailed", "Cancelled", "Superseded", "InvalidConfig", "ContextFull", "Model"].map((code) => kindOf(coded("", code), "run"))).toEqual(["crash", "cancelled", "superseded", "config", "config", "run"]);
    expect(weightTypesOf(["Q4_1"])).toEqual(["Q4_1"]);
    expect([weightTypesOf([]), weightTypesOf("Q4_1"), weightTypesOf([1])]).toEqual([null, null, null]);
  });
});
