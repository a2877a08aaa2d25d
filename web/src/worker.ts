// The worker's message handling, written against small interfaces (the wasm package's Model
// and Sampler, a fetch function, a post function) so that unit tests can drive it with fakes.
// worker-entry.ts wires it to the real package and to the worker's global scope.
//
// It owns the one Model. Every failure becomes an "error" message; nothing escapes, so the
// worker keeps serving after a bad file or a bad parameter.
import type { Step as RawStep, ScoreResult } from "decoding-playground";
import type { FetchBytes } from "decoding-playground";
import type {
  Alternative,
  BackendChoice,
  BackendInfo,
  ScoredStep,
  ErrorKind,
  FromWorker,
  GenerateConfig,
  ModelInfo,
  ModelSource,
  SamplerConfig,
  Step,
  TokenStep,
  ToWorker,
} from "./protocol";

/** What the worker needs of the wasm package's Model. */
export interface ModelLike {
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly ngramStoreTokens: number;
  generate(prompt: string, config: GenerateConfig, onStep: (step: RawStep) => void, signal: { readonly aborted: boolean }): Promise<unknown>;
  decode(ids: number[]): string;
  score(text: string, config: { context: string; topAlternatives: number }): Promise<ScoreResult>;
  setNgramStore(bytes: Uint8Array | null): void;
  buildNgramStore(text: string, extend: boolean): Uint8Array;
  /** The weights' storage types, should the package report them (see `weightTypesOf`). */
  readonly weightTypes?: unknown;
  /** Feed only what follows the prefix shared with the previous call (see the package). */
  reusePrefix?: boolean;
  /** Which backend runs the model (see `backendOf`). */
  readonly backend?: unknown;
  readonly chatTemplate?: string;
  applyChatTemplate?(messages: { role: string; content: string }[], options?: { addGenerationPrompt?: boolean }): string;
  readonly kvCacheBytesPerToken?: number;
  free?(): void;
}

/** The bytes of a model in either format, as the wasm package's two constructors take them. */
export type ModelFiles =
  | { format: "gguf"; gguf: Uint8Array }
  | { format: "onnx"; onnx: Uint8Array; tokenizer: Uint8Array; config: string };

export interface Runtime {
  init(): Promise<void>;
  /** `await Model.fromGguf(gguf, { backend, contextLength })`, or `new Model(onnx, tokenizer,
   *  config)`; `contextLength` caps a GGUF model's context (null: the model's own). */
  createModel(files: ModelFiles, backend: BackendChoice, contextLength: number | null): ModelLike | Promise<ModelLike>;
  /** Builds a Sampler: its stage names and ignored settings, or throws the config's error. */
  inspect(config: SamplerConfig): { stages: string[]; ignored: string[] };
}

export type Post = (message: FromWorker) => void;

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return typeof error === "string" ? error : JSON.stringify(error);
}

/** A trap (a Rust panic, out of memory) leaves the wasm instance unusable: the page must
 *  start a new worker. The trapping call throws a RuntimeError; the promises in flight then,
 *  and every later call, reject with an Error named EngineFailedError. An ordinary error from
 *  the crate is a plain Error. */
export function isCrash(error: unknown): boolean {
  return (typeof WebAssembly !== "undefined" && error instanceof WebAssembly.RuntimeError) || (error instanceof Error && error.name === "EngineFailedError");
}

/** What the page makes of a failed call, from the crate's stable `error.code`, never its text:
 *  a refused input shows by the form, a cancel is a stop, a trap restarts the worker. */
export function kindOf(error: unknown, otherwise: ErrorKind): ErrorKind {
  if (isCrash(error)) return "crash";
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "Cancelled") return "cancelled";
  if (code === "InvalidConfig" || code === "InvalidInput" || code === "ContextFull" || code === "ChatTemplate") return "config";
  return otherwise;
}

/** The model's `weightTypes` (e.g. ["Q4_1", "Q8_0"]) if the package has such a getter and it
 *  gives a list of names; null otherwise, and the page then shows the format alone. */
export function weightTypesOf(model: ModelLike): string[] | null {
  let types: unknown;
  try {
    types = model.weightTypes;
  } catch {
    return null;
  }
  return Array.isArray(types) && types.length > 0 && types.every((t) => typeof t === "string") ? [...types] : null;
}

/** The model's backend info, or null when the package does not report one. */
export function backendOf(model: ModelLike): BackendInfo | null {
  try {
    const info = model.backend as BackendInfo | undefined;
    return info && typeof info.backend === "string" ? info : null;
  } catch {
    return null;
  }
}

interface Loaded {
  model: ModelLike;
  info: ModelInfo;
  /** The model's own n-gram store, to go back to after a personal one. */
  defaultNgrams: Uint8Array | null;
  /** Token id → its text, for the alternatives of every step. */
  texts: Map<number, string>;
}

/** The text a run feeds: with `chat`, the prompt as a user message in the model's chat template,
 *  ending where the assistant's reply begins. */
export function promptFor(model: ModelLike, prompt: string, chat: boolean): string {
  if (!chat) return prompt;
  if (!model.applyChatTemplate) throw Object.assign(new Error("this package cannot apply chat templates"), { code: "ChatTemplate" });
  return model.applyChatTemplate([{ role: "user", content: prompt }], { addGenerationPrompt: true });
}

export function createWorker(runtime: Runtime, post: Post, fetchBytes: FetchBytes): (message: ToWorker) => Promise<void> {
  const ready = runtime.init().then(
    () => post({ type: "ready" }),
    (error) => {
      post({ type: "error", kind: "crash", message: `cannot start the wasm module: ${errorMessage(error)}` });
      throw error;
    },
  );
  ready.catch(() => {}); // reported above; each message checks it again
  let loaded: Loaded | null = null;
  // A newer "load" supersedes one still fetching: only the latest may install its model.
  let loadSeq = 0;
  let running: { runId: number; signal: { aborted: boolean } } | null = null;

  /** Reports a failure, for the run or score request `id` names (none: a notice). */
  const fail = (kind: ErrorKind, error: unknown, id: { runId: number } | { requestId: number } | {} = {}) =>
    post({ type: "error", kind: kindOf(error, kind), message: errorMessage(error), ...id });

  function tokenText(state: Loaded, token: number): string {
    let text = state.texts.get(token);
    if (text === undefined) {
      text = state.model.decode([token]);
      state.texts.set(token, text);
    }
    return text;
  }

  // The crate's alternatives carry ids only; the page shows their text.
  function enrichToken(state: Loaded, step: Extract<RawStep, { kind: "token" }>): TokenStep {
    // The package names each alternative; decode only where a model does not.
    const top: Alternative[] = step.top.map((alt) => ({ ...alt, text: alt.text ?? tokenText(state, alt.token) }));
    return { ...step, top, tokenText: tokenText(state, step.token) };
  }

  function enrich(state: Loaded, step: RawStep): Step {
    return step.kind === "token" ? enrichToken(state, step) : step;
  }

  async function load(source: ModelSource, backend: BackendChoice, contextLength: number | null): Promise<void> {
    const seq = ++loadSeq;
    const t0 = performance.now();
    let fromCache = true;
    let bytes = 0;
    // `bytes` and `fromCache` describe the model's own files, not its n-gram store.
    const fetchFile = async (url: string, file: string, modelFile = true) => {
      const got = await fetchBytes(url, (done, total, cached) =>
        post({ type: "progress", phase: cached ? "cache" : "download", loaded: done, total, file }),
      );
      if (modelFile) {
        fromCache &&= got.fromCache;
        bytes += got.bytes.length;
      }
      return got.bytes;
    };
    let files: ModelFiles;
    if (source.kind === "url" && source.format === "gguf") {
      files = { format: "gguf", gguf: await fetchFile(source.gguf, "model.gguf") };
    } else if (source.kind === "url") {
      const [onnx, tokenizer, config] = await Promise.all([
        fetchFile(source.onnx, "model.onnx"),
        fetchFile(source.tokenizer, "tokenizer.json"),
        fetchFile(source.config, "config.json").then((b) => new TextDecoder().decode(b)),
      ]);
      files = { format: "onnx", onnx, tokenizer, config };
    } else if (source.format === "gguf") {
      files = { format: "gguf", gguf: new Uint8Array(source.gguf) };
      fromCache = false;
      bytes = source.gguf.byteLength;
    } else {
      files = { format: "onnx", onnx: new Uint8Array(source.onnx), tokenizer: new Uint8Array(source.tokenizer), config: source.config };
      fromCache = false;
      bytes = source.onnx.byteLength + source.tokenizer.byteLength;
    }
    if (seq !== loadSeq) return;
    post({ type: "progress", phase: "compile", loaded: 0, total: null, file: files.format === "gguf" ? "model.gguf" : "model.onnx" });
    // The old model stays until the new one is built, so a bad file leaves a working page.
    const model = await runtime.createModel(files, backend, contextLength);
    if (seq !== loadSeq) {
      model.free?.();
      return;
    }
    let defaultNgrams: Uint8Array | null = null;
    let ngramError: unknown = null;
    if (source.kind === "url" && source.ngrams) {
      try {
        post({ type: "progress", phase: "ngrams", loaded: 0, total: null, file: "n-gram store" });
        defaultNgrams = await fetchFile(source.ngrams, "n-gram store", false);
        model.setNgramStore(defaultNgrams);
      } catch (error) {
        defaultNgrams = null;
        ngramError = error;
      }
    }
    if (seq !== loadSeq) {
      model.free?.();
      return;
    }
    loaded?.model.free?.();
    const info: ModelInfo = {
      name: source.name,
      format: source.format,
      backend: backendOf(model),
      weightTypes: weightTypesOf(model),
      vocabSize: model.vocabSize,
      contextLength: model.contextLength,
      kvCacheBytesPerToken: typeof model.kvCacheBytesPerToken === "number" ? model.kvCacheBytesPerToken : null,
      loadMs: performance.now() - t0,
      fromCache,
      bytes,
      ngramTokens: model.ngramStoreTokens,
      chatTemplate: typeof model.chatTemplate === "string",
    };
    loaded = { model, info, defaultNgrams, texts: new Map() };
    post({ type: "loaded", info });
    if (ngramError !== null) {
      fail("ngrams", `the model loaded, but not its n-gram store (superposed decoding needs α = 0): ${errorMessage(ngramError)}`);
    }
  }

  async function score(requestId: number, text: string, context: string, chat: boolean): Promise<void> {
    const state = loaded;
    if (!state) return fail("run", "no model is loaded yet", { requestId });
    if (running) return fail("run", "a generation is running: stop it first", { requestId });
    const t0 = performance.now();
    let result: ScoreResult;
    try {
      result = await state.model.score(text, { context: promptFor(state.model, context, chat), topAlternatives: 10 });
    } catch (error) {
      return fail("config", error, { requestId });
    }
    const vocab = state.model.vocabSize;
    let bits = 0;
    const steps: ScoredStep[] = [];
    let lead = "";
    for (const t of result.tokens) {
      if (t.prob == null || t.surpriseBits == null || t.entropyBits == null || t.rank == null) {
        lead += t.text;
        continue;
      }
      bits += t.surpriseBits;
      const step = enrichToken(state, {
        kind: "token", token: t.token, text: t.text, prob: t.prob, surpriseBits: t.surpriseBits,
        entropyBits: t.entropyBits, kept: vocab, top: t.top, perplexity: 2 ** (bits / (steps.length + 1)),
      });
      steps.push({ ...step, rank: t.rank });
    }
    post({ type: "scored", requestId, result: { lead, steps, perplexity: result.perplexity, meanSurpriseBits: result.meanSurpriseBits, contextTokens: result.contextTokens, ms: performance.now() - t0 } });
  }

  async function generate(runId: number, prompt: string, config: GenerateConfig, reusePrefix: boolean, chat: boolean): Promise<void> {
    const state = loaded;
    if (!state) return fail("run", "no model is loaded yet", { runId });
    if (running) return fail("run", "a generation is already running", { runId });
    state.model.reusePrefix = reusePrefix;
    const signal = { aborted: false };
    running = { runId, signal };
    const t0 = performance.now();
    let steps = 0;
    let last = t0;
    let tokens = 0;
    try {
      // Until the first step: the prompt's prefill (and the first sample).
      let prefilled = t0;
      try {
        await state.model.generate(promptFor(state.model, prompt, chat), config, (raw) => {
          const step = enrich(state, raw);
          last = performance.now();
          if (steps === 0) {
            prefilled = last;
            post({ type: "started", runId, prefillMs: prefilled - t0 });
          }
          steps += 1;
          tokens += step.kind === "token" ? 1 : 0;
          post({ type: "step", runId, step, elapsedMs: last - t0 });
        }, signal);
      } catch (error) {
        return fail("run", error, { runId });
      }
      const decodeMs = Math.max(last - prefilled, 1e-3);
      post({
        type: "done",
        runId,
        stats: {
          steps,
          tokens: tokens || steps,
          prefillMs: prefilled - t0,
          decodeMs,
          wallMs: performance.now() - t0,
          // The first step's time counts as the prompt's: the rate is of the steps after it.
          tokensPerSecond: steps > 1 ? ((steps - 1) * 1000) / decodeMs : (steps * 1000) / Math.max(performance.now() - t0, 1e-3),
        },
      });
    } finally {
      running = null;
    }
  }

  function buildNgrams(text: string, extend: boolean): void {
    if (!loaded) return fail("ngrams", "load a model first: the store uses its tokenizer");
    loaded.model.buildNgramStore(text, extend);
    post({ type: "ngrams", tokens: loaded.model.ngramStoreTokens, personal: true });
  }

  function resetNgrams(): void {
    if (!loaded) return;
    loaded.model.setNgramStore(loaded.defaultNgrams);
    post({ type: "ngrams", tokens: loaded.model.ngramStoreTokens, personal: false });
  }

  return async (message: ToWorker) => {
    // A stop must not wait behind anything.
    if (message.type === "stop") {
      if (running) running.signal.aborted = true;
      return;
    }
    try {
      await ready;
    } catch {
      return; // already reported
    }
    try {
      switch (message.type) {
        case "load":
          if (running) running.signal.aborted = true;
          return await load(message.source, message.backend ?? "auto", message.contextLength ?? null);
        case "inspect": {
          try {
            const { stages, ignored } = runtime.inspect(message.config.sampler);
            post({ type: "inspected", requestId: message.requestId, stages, ignored, error: null });
          } catch (error) {
            post({ type: "inspected", requestId: message.requestId, stages: [], ignored: [], error: errorMessage(error) });
          }
          return;
        }
        case "generate":
          return await generate(message.runId, message.prompt, message.config, message.reusePrefix ?? false, message.chat ?? false);
        case "score":
          return await score(message.requestId, message.text, message.context, message.chat ?? false);
        case "ngrams":
          return buildNgrams(message.text, message.extend);
        case "resetNgrams":
          return resetNgrams();
      }
    } catch (error) {
      const kind: ErrorKind = message.type === "load" ? "load" : message.type === "generate" ? "run" : message.type === "ngrams" || message.type === "resetNgrams" ? "ngrams" : "run";
      fail(kind, error, message.type === "generate" ? { runId: message.runId } : {});
    }
  };
}
