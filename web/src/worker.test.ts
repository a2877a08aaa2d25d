import { describe, expect, it } from "vitest";
import type { Step as RawStep } from "decoding-playground";
import type { FetchBytes } from "decoding-playground";
import type { FromWorker, GenerateConfig, ModelSource, TokenStep } from "./protocol";
import { defaultStrategy, toConfig } from "./settings";
import { createWorker, isCrash, weightTypesOf, type ModelLike, type Runtime } from "./worker";

// A model that emits `maxTokens` token steps, one per macrotask, like the wasm package's.
class FakeModel implements ModelLike {
  vocabSize = 512;
  contextLength = 64;
  ngramStoreTokens = 0;
  freed = false;
  backend: unknown = undefined;
  chatTemplate: string | undefined = undefined;
  /** Every prompt generate() was given. */
  prompts: string[] = [];
  // Like the package's: a ChatML layout, or the crate's error without a template.
  applyChatTemplate(messages: { role: string; content: string }[], options?: { addGenerationPrompt?: boolean }) {
    if (this.chatTemplate === undefined) throw Object.assign(new Error("chat template: this model has no chat template"), { code: "ChatTemplate" });
    return messages.map((m) => `<${m.role}>${m.content}</${m.role}>`).join("") + (options?.addGenerationPrompt ? "<assistant>" : "");
  }
  constructor(readonly name: string, readonly weightTypes?: unknown) {}
  // Like the wasm package: a refused prompt or config rejects with an Error that has a code.
  generate(prompt: string, config: GenerateConfig, onStep: (step: RawStep) => void, signal: { readonly aborted: boolean }) {
    this.prompts.push(prompt);
    const refuse = (message: string, code: string) => Promise.reject(Object.assign(new Error(message), { code }));
    if (prompt === "") return refuse("the prompt is empty", "InvalidInput");
    if (config.sampler.topP !== null && config.sampler.topP > 1) return refuse("invalid config: topP must be in (0, 1], got 1.5", "InvalidConfig");
    return this.steps(config, onStep, signal);
  }
  private async steps(config: GenerateConfig, onStep: (step: RawStep) => void, signal: { readonly aborted: boolean }) {
    const steps: TokenStep[] = [];
    for (let i = 0; i < config.maxTokens; i++) {
      const step: TokenStep = {
        kind: "token", token: 10 + i, prob: 0.5, surpriseBits: 1, entropyBits: 2, kept: 3,
        top: [{ token: 10 + i, prob: 0.5 }, { token: 99, prob: 0.25 }], perplexity: 2, text: `w${i}`,
        ...(i === config.maxTokens - 1 ? { finish: "length" as const } : {}),
      };
      onStep(step);
      steps.push(step);
      await new Promise((r) => setTimeout(r, 0));
      if (signal.aborted) throw Object.assign(new Error("generation was cancelled"), { code: "Cancelled" });
    }
    return steps;
  }
  decode(ids: number[]) {
    return ids.map((id) => `<${id}>`).join("");
  }
  // Like the package: words are tokens; without a context the first has no figures.
  async score(text: string, config: { context: string; topAlternatives: number }) {
    const words = text.split(" ").filter(Boolean);
    if (words.length + (config.context ? 1 : 0) < 2) throw Object.assign(new Error("text must be at least two tokens, or one after a context"), { code: "InvalidInput" });
    const tokens = words.map((word, i) =>
      i === 0 && !config.context
        ? { token: i, text: word, prob: null, surpriseBits: null, entropyBits: null, rank: null, top: [] }
        : { token: i, text: ` ${word}`, prob: 0.25, surpriseBits: 2, entropyBits: 3, rank: i, top: [{ token: 99, prob: 0.5 }] },
    );
    const scored = tokens.length - (config.context ? 0 : 1);
    return { contextTokens: config.context ? 1 : 0, tokens, scored, meanSurpriseBits: 2, perplexity: 4 };
  }
  setNgramStore(bytes: Uint8Array | null) {
    this.ngramStoreTokens = bytes ? bytes.length : 0;
  }
  buildNgramStore(text: string, extend: boolean) {
    this.ngramStoreTokens = (extend ? this.ngramStoreTokens : 0) + text.split(/\s+/).length;
    return new Uint8Array(4);
  }
  free() {
    this.freed = true;
  }
}

function setup() {
  const messages: FromWorker[] = [];
  const models: FakeModel[] = [];
  const runtime: Runtime = {
    init: async () => {},
    // Like the package's Model.fromGguf: asynchronous, placed on the backend asked for.
    createModel: async (files, backend) => {
      let model: FakeModel;
      if (files.format === "gguf") {
        // Like the crate: the magic first, then the metadata (here: a name after it).
        if (new TextDecoder().decode(files.gguf.subarray(0, 4)) !== "GGUF") throw new Error("not a GGUF file (its first bytes are not the magic `GGUF`)");
        model = new FakeModel(new TextDecoder().decode(files.gguf.subarray(4)), ["Q4_1", "Q8_0"]);
        model.backend = backend === "cpu"
          ? { backend: "cpu", adapter: null, fallbackReason: null }
          : { backend: "webgpu", adapter: { name: "SwiftShader", backend: "browser webgpu", fallback: true }, fallbackReason: null };
      } else {
        if (files.onnx[0] !== 0x08) throw new Error("not a valid ONNX model (protobuf decoding failed)");
        model = new FakeModel(JSON.parse(files.config).name);
      }
      models.push(model);
      return model;
    },
    inspect: (config) => {
      if (config.topP !== null && config.topP > 1) throw new Error("invalid config: topP must be in (0, 1]");
      return { stages: ["topK", "temperature"], ignored: config.mirostat && config.topK !== null ? ["topK"] : [] };
    },
  };
  const files: Record<string, Uint8Array> = {
    "/m.gguf": new TextEncoder().encode("GGUFgguf-model"),
    "/m.onnx": new Uint8Array([0x08, 1, 2, 3]),
    "/tok.json": new TextEncoder().encode("{}"),
    "/config.json": new TextEncoder().encode('{"name":"fake"}'),
    "/store.bin": new Uint8Array(7),
  };
  const fetchBytes: FetchBytes = async (url, onProgress) => {
    const bytes = files[url];
    if (!bytes) throw new Error(`cannot fetch ${url}: HTTP 404 Not Found`);
    onProgress(bytes.length, bytes.length, false);
    return { bytes: new Uint8Array(bytes), fromCache: false };
  };
  const handle = createWorker(runtime, (m) => messages.push(m), fetchBytes);
  const of = <T extends FromWorker["type"]>(type: T) => messages.filter((m): m is Extract<FromWorker, { type: T }> => m.type === type);
  return { handle, messages, models, of };
}

const source: ModelSource = { kind: "url", format: "onnx", name: "fake", onnx: "/m.onnx", tokenizer: "/tok.json", config: "/config.json", ngrams: "/store.bin" };
const ggufSource: ModelSource = { kind: "url", format: "gguf", name: "fake gguf", gguf: "/m.gguf", ngrams: "/store.bin" };
const config = (maxTokens: number, changes: Partial<GenerateConfig["sampler"]> = {}): GenerateConfig => {
  const c = toConfig(defaultStrategy(), 0, maxTokens);
  return { ...c, sampler: { ...c.sampler, ...changes } };
};

describe("worker message handling", () => {
  it("loads a model with progress and reports it", async () => {
    const w = setup();
    await w.handle({ type: "load", source });
    expect(w.messages[0]).toEqual({ type: "ready" });
    expect(w.of("progress").map((p) => p.phase)).toContain("download");
    expect(w.of("progress").map((p) => p.phase)).toContain("compile");
    const [loaded] = w.of("loaded");
    expect(loaded?.info).toMatchObject({ name: "fake", format: "onnx", weightTypes: null, vocabSize: 512, contextLength: 64, ngramTokens: 7, fromCache: false });
    expect(new Set(w.of("progress").filter((p) => p.phase === "download").map((p) => p.file))).toEqual(new Set(["model.onnx", "tokenizer.json", "config.json", "n-gram store"]));
  });

  it("loads a GGUF from one URL, with its weight types when the package reports them", async () => {
    const w = setup();
    await w.handle({ type: "load", source: ggufSource });
    const progress = w.of("progress");
    expect(progress.filter((p) => p.phase === "download").map((p) => p.file)).toEqual(["model.gguf", "n-gram store"]);
    expect(progress.find((p) => p.phase === "compile")?.file).toBe("model.gguf");
    const [loaded] = w.of("loaded");
    expect(w.models[0]?.name).toBe("gguf-model");
    expect(loaded?.info).toMatchObject({ name: "fake gguf", format: "gguf", weightTypes: ["Q4_1", "Q8_0"], ngramTokens: 7, bytes: 14 });
    expect(loaded?.info.backend).toMatchObject({ backend: "webgpu", adapter: { fallback: true } });
    await w.handle({ type: "load", source: ggufSource, backend: "cpu" });
    expect(w.of("loaded")[1]?.info.backend).toEqual({ backend: "cpu", adapter: null, fallbackReason: null });
    // An ONNX model (and a package without the getter) reports none.
    await w.handle({ type: "load", source });
    expect(w.of("loaded")[2]?.info.backend).toBeNull();
    await w.handle({ type: "generate", runId: 1, prompt: "hi", config: config(2) });
    expect(w.of("done")).toHaveLength(1);
  });

  it("loads a dropped GGUF file, and keeps it when a bad one follows", async () => {
    const w = setup();
    const gguf = new TextEncoder().encode("GGUFmine").buffer;
    await w.handle({ type: "load", source: { kind: "files", format: "gguf", name: "mine.gguf", gguf } });
    expect(w.of("loaded")[0]?.info).toMatchObject({ name: "mine.gguf", format: "gguf", fromCache: false, bytes: 8, ngramTokens: 0 });
    const junk = new TextEncoder().encode("junk").buffer;
    await w.handle({ type: "load", source: { kind: "files", format: "gguf", name: "junk.gguf", gguf: junk } });
    expect(w.of("error")).toEqual([{ type: "error", kind: "load", message: "not a GGUF file (its first bytes are not the magic `GGUF`)" }]);
    expect(w.models[0]?.freed).toBe(false);
    await w.handle({ type: "generate", runId: 2, prompt: "hi", config: config(1) });
    expect(w.of("done")).toHaveLength(1);
  });

  it("chat: the prompt as a user message in the model's template; without one, a config error", async () => {
    const w = setup();
    await w.handle({ type: "load", source });
    expect(w.of("loaded")[0]?.info.chatTemplate).toBe(false);
    await w.handle({ type: "generate", runId: 1, prompt: "hi", config: config(1), chat: true });
    expect(w.of("error")).toMatchObject([{ kind: "config", runId: 1, message: "chat template: this model has no chat template" }]);
    const model = w.models[0]!;
    model.chatTemplate = "{{ messages }}";
    await w.handle({ type: "generate", runId: 2, prompt: "hi", config: config(1), chat: true });
    await w.handle({ type: "generate", runId: 3, prompt: "hi", config: config(1) });
    expect(model.prompts).toEqual(["<user>hi</user><assistant>", "hi"]);
    expect(w.of("done").map((d) => d.runId)).toEqual([2, 3]);
  });

  it("streams each step with the alternatives' text, then the stats", async () => {
    const w = setup();
    await w.handle({ type: "load", source });
    await w.handle({ type: "generate", runId: 1, prompt: "hi", config: config(3) });
    const steps = w.of("step");
    expect(steps).toHaveLength(3);
    const first = steps[0]?.step as TokenStep;
    expect(first.tokenText).toBe("<10>");
    expect(first.top.map((a) => a.text)).toEqual(["<10>", "<99>"]);
    expect(w.of("started")).toHaveLength(1);
    const [done] = w.of("done");
    expect(done?.runId).toBe(1);
    expect(done?.stats).toMatchObject({ steps: 3, tokens: 3 });
    expect(done?.stats.tokensPerSecond).toBeGreaterThan(0);
  });

  it("stops a run within a step", async () => {
    const w = setup();
    await w.handle({ type: "load", source });
    const run = w.handle({ type: "generate", runId: 2, prompt: "hi", config: config(50) });
    await new Promise((r) => setTimeout(r, 5));
    await w.handle({ type: "stop" });
    await run;
    const count = w.of("step").length;
    expect(count).toBeLessThan(50);
    expect(w.of("error")).toEqual([{ type: "error", kind: "cancelled", message: "generation was cancelled", runId: 2 }]);
    // The worker serves the next run.
    await w.handle({ type: "generate", runId: 3, prompt: "hi", config: config(2) });
    expect(w.of("done").map((d) => d.runId)).toEqual([3]);
  });

  it("refuses a second run while one is going, which goes on untouched", async () => {
    const w = setup();
    await w.handle({ type: "load", source });
    const first = w.handle({ type: "generate", runId: 1, prompt: "hi", config: config(6) });
    await w.handle({ type: "generate", runId: 2, prompt: "ho", config: config(6) });
    await first;
    expect(w.of("error")).toEqual([{ type: "error", kind: "run", message: "a generation is already running", runId: 2 }]);
    expect(w.of("step").filter((s) => s.runId === 1)).toHaveLength(6);
    expect(w.of("done").map((d) => d.runId)).toEqual([1]);
  });

  it("reports an invalid parameter as a config error and keeps working", async () => {
    const w = setup();
    await w.handle({ type: "load", source });
    await w.handle({ type: "inspect", requestId: 7, config: config(1, { topP: 1.5 }) });
    expect(w.of("inspected")[0]).toMatchObject({ requestId: 7, error: "invalid config: topP must be in (0, 1]" });
    await w.handle({ type: "generate", runId: 4, prompt: "hi", config: config(2, { topP: 1.5 }) });
    expect(w.of("error")[0]).toMatchObject({ kind: "config", runId: 4 });
    await w.handle({ type: "inspect", requestId: 8, config: config(1, { mirostat: { version: 2, tau: 5, eta: 0.1 } }) });
    expect(w.of("inspected")[1]).toMatchObject({ requestId: 8, ignored: ["topK"], error: null });
  });

  it("scores a text: the unpredicted first token as the lead, each scored one with its rank and running perplexity", async () => {
    const w = setup();
    await w.handle({ type: "score", requestId: 5, text: "one two three", context: "" });
    expect(w.of("error")[0]).toMatchObject({ kind: "run", requestId: 5, message: "no model is loaded yet" });
    await w.handle({ type: "load", source: ggufSource });
    await w.handle({ type: "score", requestId: 6, text: "one two three", context: "" });
    const [scored] = w.of("scored");
    expect(scored?.requestId).toBe(6);
    expect(scored?.result.lead).toBe("one");
    expect(scored?.result.steps.map((s) => [s.text, s.rank, s.kept, s.perplexity])).toEqual([[" two", 1, 512, 4], [" three", 2, 512, 4]]);
    expect(scored?.result.steps[0]?.top[0]).toMatchObject({ token: 99, text: "<99>" });
    await w.handle({ type: "score", requestId: 7, text: "one", context: "" });
    expect(w.of("error").at(-1)).toMatchObject({ kind: "config", requestId: 7, message: "text must be at least two tokens, or one after a context" });
  });

  it("refuses to run before a model is loaded", async () => {
    const w = setup();
    await w.handle({ type: "generate", runId: 1, prompt: "hi", config: config(2) });
    expect(w.of("error")[0]).toMatchObject({ kind: "run", runId: 1, message: "no model is loaded yet" });
  });

  it("keeps the previous model when a bad file fails to load", async () => {
    const w = setup();
    await w.handle({ type: "load", source });
    const bad: ModelSource = { kind: "files", format: "onnx", name: "junk.onnx", onnx: new Uint8Array([1, 2]).buffer, tokenizer: new ArrayBuffer(2), config: "{}" };
    await w.handle({ type: "load", source: bad });
    expect(w.of("error")[0]).toMatchObject({ kind: "load", message: "not a valid ONNX model (protobuf decoding failed)" });
    expect(w.models[0]?.freed).toBe(false);
    await w.handle({ type: "generate", runId: 5, prompt: "hi", config: config(1) });
    expect(w.of("done")).toHaveLength(1);
  });

  it("lets only the latest of two overlapping loads install its model", async () => {
    const w = setup();
    const first = w.handle({ type: "load", source });
    const second = w.handle({ type: "load", source: { ...source, name: "second", config: "/config.json" } });
    await Promise.all([first, second]);
    expect(w.of("loaded").map((m) => m.info.name)).toEqual(["second"]);
  });

  it("reports a missing file as a load error", async () => {
    const w = setup();
    await w.handle({ type: "load", source: { ...source, onnx: "/missing.onnx" } });
    expect(w.of("error")[0]).toMatchObject({ kind: "load", message: "cannot fetch /missing.onnx: HTTP 404 Not Found" });
    await w.handle({ type: "load", source: { ...ggufSource, gguf: "/missing.gguf" } });
    expect(w.of("error")[1]).toMatchObject({ kind: "load", message: "cannot fetch /missing.gguf: HTTP 404 Not Found" });
  });

  it("reports a run or a score that fails after a trap as a crash, for the page to restart the worker", async () => {
    const failed = Object.assign(new Error("the engine failed (panicked at x) and cannot be used any more"), { name: "EngineFailedError" });
    expect(isCrash(failed)).toBe(true);
    expect(isCrash(new WebAssembly.RuntimeError("unreachable"))).toBe(true);
    expect(isCrash(new Error("the prompt is empty"))).toBe(false);
    const w = setup();
    await w.handle({ type: "load", source });
    const model = w.models[0]!;
    model.generate = () => Promise.reject(failed);
    model.score = () => Promise.reject(failed);
    await w.handle({ type: "generate", runId: 1, prompt: "hi", config: config(2) });
    await w.handle({ type: "score", requestId: 2, text: "a b", context: "" });
    expect(w.of("error").map((e) => e.kind)).toEqual(["crash", "crash"]);
  });

  it("shows weight types only when the package gives a list of names", () => {
    expect(weightTypesOf(new FakeModel("a"))).toBeNull();
    expect(weightTypesOf(new FakeModel("a", []))).toBeNull();
    expect(weightTypesOf(new FakeModel("a", "Q4_1"))).toBeNull();
    expect(weightTypesOf(new FakeModel("a", ["Q8_0", 4]))).toBeNull();
    expect(weightTypesOf(new FakeModel("a", ["Q4_1", "Q8_0"]))).toEqual(["Q4_1", "Q8_0"]);
  });

  it("loads the model even when its n-gram store is missing, and says so", async () => {
    const w = setup();
    await w.handle({ type: "load", source: { ...source, ngrams: "/nope.bin" } });
    expect(w.of("loaded")[0]?.info.ngramTokens).toBe(0);
    expect(w.of("error")[0]).toMatchObject({ kind: "ngrams" });
  });

  it("builds a personal n-gram store and goes back to the default one", async () => {
    const w = setup();
    await w.handle({ type: "load", source });
    await w.handle({ type: "ngrams", text: "one two three", extend: false });
    expect(w.of("ngrams")[0]).toEqual({ type: "ngrams", tokens: 3, personal: true });
    await w.handle({ type: "resetNgrams" });
    expect(w.of("ngrams")[1]).toEqual({ type: "ngrams", tokens: 7, personal: false });
  });
});
