// The page's side of the engine: the package's WorkerModel (the engine in a Web Worker, see
// decoding-playground's worker.js) plus what the page adds: load timing and sizes, the n-gram
// store a server model comes with, token texts, run statistics and error kinds by `code`.
// Should the engine fail (a wasm trap leaves its instance unusable), a fresh worker is started
// and `onRestart` says why; every pending promise has then rejected with kind "crash".
import type { FetchBytes, LoadProgress, ModelSource as PackageSource, ScoreResult, WorkerModel } from "decoding-playground";
import type { Alternative, BackendChoice, BackendInfo, BeamConfig, BeamStep, ErrorKind, GenerateConfig, Hypothesis, LoadPhase, ModelInfo, ModelSource, RunStats, ScoredStep, ScoredText, Step, TokenStep } from "./protocol";

/** What the client needs of the package's WorkerModel (a fake in the unit tests). */
export type EngineModel = Pick<
  WorkerModel,
  | "vocabSize" | "contextLength" | "backend" | "weightTypes" | "kvCacheBytesPerToken" | "ngramStoreTokens" | "chatTemplate"
  | "architecture" | "parameterCount" | "tokenizerKind"
  | "reusePrefix" | "load" | "generate" | "fork" | "beamSearch" | "score" | "encode" | "decode" | "applyChatTemplate" | "setNgramStore" | "buildNgramStore"
  | "describeSampler" | "ignoredSettings" | "terminate" | "threads"
>;

/** Starts an engine (a worker with no model yet); `onFailure` is called if it fails for good. */
export type StartEngine = (onFailure: (error: Error) => void) => Promise<EngineModel>;

export interface RunOptions {
  reusePrefix?: boolean;
  chat?: boolean;
  /** Tokens taken as already generated after the prompt: a branch (the package's `fork`). */
  after?: number[];
}

export class WorkerError extends Error {
  constructor(readonly kind: ErrorKind | "superseded", message: string) {
    super(message);
  }
}

export interface BeamResult {
  steps: BeamStep[];
  /** Best first; none when stopped. */
  hypotheses: Hypothesis[];
  wallMs: number;
  cancelled: boolean;
}

export interface RunResult {
  steps: Step[];
  stats: RunStats | null;
  prefillMs: number;
  cancelled: boolean;
}

/** Events not tied to a request: the n-gram store changed, or failed. */
export type Notice = { type: "ngrams"; tokens: number; personal: boolean } | { type: "error"; kind: "ngrams"; message: string };

type Progress = (phase: LoadPhase, loaded: number, total: number | null, file: string) => void;

/** What the page makes of a failed call, from the package's stable `error.code`, never its text:
 *  a refused input shows by the form, a cancel is a stop, a failed engine restarts. */
export function kindOf(error: unknown, otherwise: ErrorKind): ErrorKind | "superseded" {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "EngineFailed") return "crash";
  if (code === "Cancelled") return "cancelled";
  if (code === "Superseded") return "superseded";
  if (code === "Busy") return "run";
  if (code === "InvalidConfig" || code === "InvalidInput" || code === "ContextFull" || code === "ChatTemplate") return "config";
  return otherwise;
}

const asWorkerError = (error: unknown, otherwise: ErrorKind) =>
  error instanceof WorkerError ? error : new WorkerError(kindOf(error, otherwise), error instanceof Error ? error.message : String(error));

/** The model's `weightTypes` (e.g. ["Q4_1", "Q8_0"]) when it gives a list of names; null
 *  otherwise, and the page then shows the format alone. */
export function weightTypesOf(types: unknown): string[] | null {
  return Array.isArray(types) && types.length > 0 && types.every((t) => typeof t === "string") ? [...types] : null;
}

const backendOf = (info: unknown): BackendInfo | null =>
  info && typeof (info as BackendInfo).backend === "string" ? (info as BackendInfo) : null;

/** The package's source for a page source, and the load options that apply to it: backend and
 *  context cap are a GGUF's (an ONNX export runs on the CPU at its full context). */
export function packageSource(source: ModelSource): PackageSource {
  if (source.kind === "files") return source.files;
  return source.format === "gguf" ? source.gguf : source.onnx;
}

/** Sums a load's progress into what the model panel reports: the model files' bytes, and
 *  whether every one came from the browser cache. */
class LoadTally {
  private files = new Map<string, number>();
  private downloaded = false;
  see(progress: LoadProgress): void {
    if (progress.phase !== "download" && progress.phase !== "cache" && progress.phase !== "read") return;
    this.files.set(progress.file ?? "", progress.loaded);
    this.downloaded ||= progress.phase !== "cache";
  }
  get bytes(): number {
    return [...this.files.values()].reduce((sum, b) => sum + b, 0);
  }
  get fromCache(): boolean {
    return !this.downloaded && this.files.size > 0;
  }
}

export class EngineClient {
  private engine: Promise<EngineModel>;
  private loaded: { info: ModelInfo; defaultNgrams: Uint8Array | null } | null = null;
  private loadSeq = 0;
  /** The runs in progress, to stop. Which calls may run at once is the package's to decide: it
   *  refuses a second generation, or a score during one, with code "Busy". */
  private runs = new Set<AbortController>();
  /** Token id → its text, for the model loaded now. */
  private texts = new Map<number, string>();
  /** The n-gram store's changes and failures. */
  onNotice: (notice: Notice) => void = () => {};
  onRestart: (reason: string) => void = () => {};
  /** The backend every GGUF load asks for (`?backend=cpu|webgpu` on the page). */
  backend: BackendChoice = "auto";
  /** The context every GGUF load is capped at (`?ctx=N` on the page), to bound KV memory. */
  contextLength: number | null = null;

  constructor(private readonly start: StartEngine, private readonly fetchBytes: FetchBytes) {
    this.engine = this.startEngine();
  }

  private startEngine(): Promise<EngineModel> {
    const engine = this.start((error) => this.crash(engine, error.message));
    return engine;
  }

  private crash(failed: Promise<EngineModel>, reason: string): void {
    if (failed !== this.engine) return;
    this.loaded = null;
    this.runs.clear();
    this.engine = this.startEngine();
    this.onRestart(reason);
  }

  private async model(): Promise<EngineModel> {
    if (!this.loaded) throw new WorkerError("run", "no model is loaded yet");
    return this.engine;
  }

  async load(source: ModelSource, progress: Progress): Promise<ModelInfo> {
    const seq = ++this.loadSeq;
    this.stop();
    const engine = await this.engine;
    const t0 = performance.now();
    const tally = new LoadTally();
    const onProgress = (p: LoadProgress) => {
      tally.see(p);
      if (p.phase === "build") progress("compile", 0, null, p.file ?? "");
      else if (p.phase === "download" || p.phase === "cache") progress(p.phase, p.loaded, p.total, p.file ?? "");
      else if (p.phase === "read") progress("cache", p.loaded, p.total, p.file ?? "");
    };
    const options = source.format === "gguf" ? { backend: this.backend, ...(this.contextLength ? { contextLength: this.contextLength } : {}) } : {};
    try {
      await engine.load(packageSource(source), { ...options, onProgress });
    } catch (error) {
      throw asWorkerError(error, "load");
    }
    if (seq !== this.loadSeq) throw new WorkerError("superseded", "replaced by another load");
    this.texts.clear();
    let defaultNgrams: Uint8Array | null = null;
    let ngramError: unknown = null;
    if (source.kind === "url" && source.ngrams) {
      try {
        progress("ngrams", 0, null, "n-gram store");
        defaultNgrams = (await this.fetchBytes(source.ngrams, (done, total, cached) => progress(cached ? "cache" : "download", done, total, "n-gram store"))).bytes;
        await engine.setNgramStore(defaultNgrams);
      } catch (error) {
        defaultNgrams = null;
        ngramError = error;
      }
    }
    if (seq !== this.loadSeq) throw new WorkerError("superseded", "replaced by another load");
    const info: ModelInfo = {
      name: source.name,
      format: source.format,
      backend: backendOf(engine.backend),
      threads: engine.threads ?? null,
      weightTypes: weightTypesOf(engine.weightTypes),
      vocabSize: engine.vocabSize,
      contextLength: engine.contextLength,
      kvCacheBytesPerToken: typeof engine.kvCacheBytesPerToken === "number" ? engine.kvCacheBytesPerToken : null,
      loadMs: performance.now() - t0,
      fromCache: tally.fromCache,
      bytes: tally.bytes,
      ngramTokens: engine.ngramStoreTokens,
      chatTemplate: typeof engine.chatTemplate === "string",
      architecture: engine.architecture ?? null,
      parameterCount: engine.parameterCount ?? null,
      tokenizerKind: engine.tokenizerKind ?? null,
    };
    this.loaded = { info, defaultNgrams };
    if (ngramError !== null) {
      const reason = ngramError instanceof Error ? ngramError.message : String(ngramError);
      queueMicrotask(() => this.onNotice({ type: "error", kind: "ngrams", message: `the model loaded, but not its n-gram store (superposed decoding needs α = 0): ${reason}` }));
    }
    return info;
  }

  /** The sampler chain `config` builds, and the settings it ignores, or its config error. */
  async inspect(config: GenerateConfig): Promise<{ stages: string[]; ignored: string[]; error: string | null }> {
    try {
      const engine = await this.engine;
      const [sampler, whole] = await Promise.all([engine.describeSampler(config.sampler), engine.ignoredSettings(config)]);
      // The sampler's own names come from the chain (the strategies' from ignoredByStrategy);
      // the whole config adds what the generation drops, e.g. stop strings under superposed.
      const generation = whole.filter((path) => !path.startsWith("sampler."));
      return { stages: sampler.stages, ignored: [...sampler.ignoredSettings, ...generation], error: null };
    } catch (error) {
      return { stages: [], ignored: [], error: error instanceof Error ? error.message : String(error) };
    }
  }

  /** The text a run feeds: with `chat`, the prompt as a user message in the model's chat
   *  template, ending where the assistant's reply begins. */
  private async promptFor(engine: EngineModel, prompt: string, chat: boolean): Promise<string> {
    return chat ? engine.applyChatTemplate([{ role: "user", content: prompt }], { addGenerationPrompt: true }) : prompt;
  }

  /** The text a run of `prompt` feeds, for a view that scores what follows it (the probe). */
  async fedPrompt(prompt: string, chat: boolean): Promise<string> {
    return this.promptFor(await this.model(), prompt, chat);
  }

  /** The tokens `text` reads as: whether a text stands for a run's own tokens (a score takes text). */
  async encode(text: string): Promise<number[]> {
    return Array.from(await (await this.model()).encode(text));
  }

  /** Each token's own text (a step's `text` is what it adds to the output, empty while a
   *  character is incomplete); the alternatives carry theirs. */
  private async tokenText(engine: EngineModel, token: number, top: readonly Alternative[]): Promise<string> {
    let text = this.texts.get(token) ?? top.find((a) => a.token === token)?.text;
    if (text === undefined) text = await engine.decode([token]);
    this.texts.set(token, text);
    return text;
  }

  /** Scores `text` after `context`, teacher-forced; with `chat`, after the context as a user
   *  message in the model's chat template. */
  async score(text: string, context: string, chat = false): Promise<ScoredText> {
    const engine = await this.model();
    const t0 = performance.now();
    let result: ScoreResult;
    try {
      result = await engine.score(text, { context: await this.promptFor(engine, context, chat), topAlternatives: 10 });
    } catch (error) {
      throw asWorkerError(error, "config");
    }
    const vocab = engine.vocabSize;
    let bits = 0;
    let lead = "";
    const steps: ScoredStep[] = [];
    for (const t of result.tokens) {
      if (t.prob == null || t.surpriseBits == null || t.entropyBits == null || t.rank == null) {
        lead += t.text;
        continue;
      }
      bits += t.surpriseBits;
      steps.push({
        kind: "token", token: t.token, text: t.text, prob: t.prob, surpriseBits: t.surpriseBits, entropyBits: t.entropyBits,
        kept: vocab, top: t.top, perplexity: 2 ** (bits / (steps.length + 1)), rank: t.rank,
        tokenText: await this.tokenText(engine, t.token, t.top),
      });
    }
    return { lead, steps, perplexity: result.perplexity, meanSurpriseBits: result.meanSurpriseBits, contextTokens: result.contextTokens, ms: performance.now() - t0 };
  }

  /** `reusePrefix`: feed only what follows the prefix shared with the previous call; `chat`:
   *  the prompt is a user message, laid out by the model's chat template. A stop resolves
   *  with `cancelled` and the steps made. */
  async run(prompt: string, config: GenerateConfig, onStep: (step: Step, elapsedMs: number) => void, options: RunOptions = {}): Promise<RunResult> {
    const engine = await this.model();
    const run = new AbortController();
    this.runs.add(run);
    const t0 = performance.now();
    let prefilled = t0;
    let last = t0;
    let count = 0;
    let tokens = 0;
    const steps: Step[] = [];
    // Token texts may need the worker: they are looked up in order, so steps reach the view in order.
    let shown = Promise.resolve();
    const show = (raw: Step, elapsedMs: number) => {
      shown = shown.then(async () => {
        const step: Step = raw.kind === "token" ? ({ ...raw, tokenText: await this.tokenText(engine, raw.token, raw.top) } satisfies TokenStep) : raw;
        steps.push(step);
        onStep(step, elapsedMs);
      });
      // A failed lookup fails the run where it awaits `shown`, once; not as an unhandled
      // rejection per step meanwhile.
      shown.catch(() => {});
    };
    try {
      engine.reusePrefix = options.reusePrefix ?? false;
      const text = await this.promptFor(engine, prompt, options.chat ?? false);
      const onRaw = (raw: unknown) => {
        last = performance.now();
        // Until the first step: the prompt's prefill (and the first sample).
        if (count === 0) prefilled = last;
        count += 1;
        tokens += (raw as Step).kind === "token" ? 1 : 0;
        show(raw as Step, last - t0);
      };
      await (options.after
        ? engine.fork(text, options.after, config, onRaw, run.signal)
        : engine.generate(text, config, onRaw, run.signal));
    } catch (error) {
      await shown;
      const kind = kindOf(error, "run");
      if (kind === "cancelled") return { steps, stats: null, prefillMs: prefilled - t0, cancelled: true };
      throw asWorkerError(error, "run");
    } finally {
      this.runs.delete(run);
    }
    await shown;
    const decodeMs = Math.max(last - prefilled, 1e-3);
    const wallMs = performance.now() - t0;
    return {
      steps,
      prefillMs: prefilled - t0,
      cancelled: false,
      stats: {
        steps: count,
        tokens: tokens || count,
        prefillMs: prefilled - t0,
        decodeMs,
        wallMs,
        // The first step's time counts as the prompt's: the rate is of the steps after it.
        tokensPerSecond: count > 1 ? ((count - 1) * 1000) / decodeMs : (count * 1000) / Math.max(wallMs, 1e-3),
      },
    };
  }

  /** A beam search after `prompt` (a user message in the chat template with `chat`): each step
   *  to `onStep`; a stop resolves with `cancelled` and the steps made. */
  async beamSearch(prompt: string, config: BeamConfig, onStep: (step: BeamStep) => void, options: RunOptions = {}): Promise<BeamResult> {
    const engine = await this.model();
    const run = new AbortController();
    this.runs.add(run);
    const t0 = performance.now();
    const steps: BeamStep[] = [];
    try {
      engine.reusePrefix = false;
      const text = await this.promptFor(engine, prompt, options.chat ?? false);
      const hypotheses = await engine.beamSearch(text, config, (step) => {
        steps.push(step);
        onStep(step);
      }, run.signal);
      return { steps, hypotheses, wallMs: performance.now() - t0, cancelled: false };
    } catch (error) {
      if (kindOf(error, "run") === "cancelled") return { steps, hypotheses: [], wallMs: performance.now() - t0, cancelled: true };
      throw asWorkerError(error, "run");
    } finally {
      this.runs.delete(run);
    }
  }

  stop(): void {
    for (const run of this.runs) run.abort();
  }

  async buildNgrams(text: string, extend: boolean): Promise<void> {
    try {
      const engine = await this.model();
      await engine.buildNgramStore(text, extend);
      this.onNotice({ type: "ngrams", tokens: engine.ngramStoreTokens, personal: true });
    } catch (error) {
      this.onNotice({ type: "error", kind: "ngrams", message: error instanceof WorkerError && !this.loaded ? "load a model first: the store uses its tokenizer" : (error as Error).message });
    }
  }

  async resetNgrams(): Promise<void> {
    if (!this.loaded) return;
    try {
      const engine = await this.engine;
      await engine.setNgramStore(this.loaded.defaultNgrams);
      this.onNotice({ type: "ngrams", tokens: engine.ngramStoreTokens, personal: false });
    } catch (error) {
      this.onNotice({ type: "error", kind: "ngrams", message: (error as Error).message });
    }
  }
}
