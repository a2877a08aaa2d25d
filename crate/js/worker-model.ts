// The page's side of the engine worker: `createWorkerModel(worker, source)` gives a
// `WorkerModel`, the Model's API made asynchronous, which talks to `serveModelWorker()` in the
// worker (worker.ts) in protocol.ts's messages.
import type { BackendInfo, BeamConfig, BeamStep, ChatMessage, GenerateConfig, Hypothesis, SamplerConfig, ScoreConfig, ScoreResult, Step } from "./decoding_playground.js";
import { codedError, isResponse, readBody, throwIfAborted } from "./fetcher.js";
import type { LoadModelOptions, LoadProgress, ModelSource } from "./load.js";
import type { EngineThreads } from "./threads.js";
import {
  reviveError,
  type AnsweredRequest, type CallMethod, type ModelProperties, type PostedSource, type ResultOf, type SamplerDescription, type WorkerReply, type WorkerRequest,
} from "./protocol.js";

/** Node's worker_threads `Worker`, as far as `createWorkerModel` uses it. */
export interface NodeWorker {
  postMessage(message: WorkerRequest, transfer?: readonly Transferable[]): void;
  on(event: "message" | "error", listener: (value: any) => void): unknown;
  terminate(): unknown;
}

/** A browser's Worker, as far as `createWorkerModel` uses it. */
type WebWorker = Pick<Worker, "postMessage" | "addEventListener" | "terminate">;

export interface WorkerModelOptions extends LoadModelOptions {
  /** The threads the engine computes on (default: half the cores; at most the cores, since
   * they spin while a pass runs). More than one runs the threaded build, which needs a
   * cross-origin isolated page; elsewhere it runs on one thread, and `threads.note` says why.
   * Fixed for the worker's life. */
  threads?: number;
  /** Called once if the engine fails for good (a trap, or the worker dies); `error.code` is
   * "EngineFailed". Start a new worker to go on. */
  onFailure?: (error: Error & { code: "EngineFailed" }) => void;
}

/** A request's callbacks: its load progress or its steps, and the signal that aborts it. */
interface Handlers {
  onProgress?: ((progress: LoadProgress) => void) | undefined;
  onStep?: ((step: Step | BeamStep) => void) | undefined;
  /** A generation's steps so far, which its AbortError carries. */
  steps?: (Step | BeamStep)[] | undefined;
  signal?: AbortSignal | null | undefined;
}

interface Pending extends Handlers {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** The resolved URL of a location, so that the worker (whose base URL differs) fetches the same file. */
function absolute(source: string | URL): string {
  return new URL(source, globalThis.location?.href).href;
}

/** What can cross to the worker: URLs as absolute strings, Blobs and bytes as they are, a
 * Response read here (it cannot be posted). */
async function postable(
  source: ModelSource,
  onProgress: (progress: LoadProgress) => void,
  signal: AbortSignal | undefined,
): Promise<{ source: PostedSource; transfer: Transferable[] }> {
  if (typeof source === "string" || source instanceof URL) return { source: absolute(source), transfer: [] };
  if (isResponse(source)) {
    if (!source.ok) throw codedError("Network", `the response is HTTP ${source.status} ${source.statusText}`);
    const bytes = await readBody(source, (loaded, total) => onProgress({ phase: "read", file: null, loaded, total }), signal);
    return { source: bytes, transfer: [bytes.buffer] };
  }
  return { source, transfer: [] };
}

/** Listens to a Web Worker, or to Node's worker_threads `Worker`: an EventEmitter, whose
 * "message" listeners get the data itself and "error" listeners the Error. */
function listen(worker: WebWorker | NodeWorker, type: "message", listener: (event: { data: WorkerReply }) => void): void;
function listen(worker: WebWorker | NodeWorker, type: "error", listener: (event: { message?: string; preventDefault?: () => void }) => void): void;
function listen(worker: WebWorker | NodeWorker, type: "message" | "error", listener: (event: any) => void): void {
  if ("addEventListener" in worker) worker.addEventListener(type, listener);
  else worker.on(type, type === "message" ? (data) => listener({ data }) : listener);
}

/** Loads `source` in `worker` (a module worker that calls `serveModelWorker()`, or a Node
 * worker thread that calls `serveModelWorker(parentPort)`). A URL is fetched in the worker (with
 * the Cache API); a File, Blob or bytes are posted to it. If the load fails, or is aborted, the
 * worker is ended. Without a source (null), the worker holds no model until `load()`;
 * `describeSampler` works meanwhile. */
export async function createWorkerModel(worker: WebWorker | NodeWorker, source: ModelSource | null | undefined, options: WorkerModelOptions = {}): Promise<WorkerModel> {
  const { onFailure = () => {}, threads, ...loadOptions } = options;
  const model = new WorkerModel(worker, onFailure);
  try {
    await model.start(threads ?? null);
  } catch (error) {
    model.terminate();
    throw error;
  }
  if (source === undefined || source === null) return model;
  try {
    await model.load(source, loadOptions);
    return model;
  } catch (error) {
    model.terminate();
    throw error;
  }
}

/** A model in a Web Worker, with the Model's API made asynchronous. Its properties are the
 * worker's, as of its latest reply. */
export class WorkerModel {
  #worker: WebWorker | NodeWorker;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #properties: ModelProperties = {};
  #failure: Error | null = null;
  #onFailure: NonNullable<WorkerModelOptions["onFailure"]>;
  #threads: EngineThreads | undefined;

  /** Use `createWorkerModel`, which also loads the model. */
  constructor(worker: WebWorker | NodeWorker, onFailure: NonNullable<WorkerModelOptions["onFailure"]> = () => {}) {
    this.#worker = worker;
    this.#onFailure = onFailure;
    listen(worker, "message", (event) => this.#receive(event.data));
    listen(worker, "error", (event) => {
      event.preventDefault?.();
      this.#fail(codedError("EngineFailed", `the worker failed: ${event.message || "it could not start or run"}`));
    });
  }

  // Until a model is loaded these are undefined; they are typed as a loaded model's.
  get vocabSize(): number { return this.#properties.vocabSize!; }
  get contextLength(): number { return this.#properties.contextLength!; }
  get backend(): BackendInfo { return this.#properties.backend!; }
  get weightTypes(): string[] { return this.#properties.weightTypes!; }
  get kvCacheBytesPerToken(): number { return this.#properties.kvCacheBytesPerToken!; }
  get ngramStoreTokens(): number { return this.#properties.ngramStoreTokens!; }
  get chatTemplate(): string | undefined { return this.#properties.chatTemplate; }
  /** Takes effect for the next generation; the worker receives messages in order. */
  get reusePrefix(): boolean { return this.#properties.reusePrefix!; }
  set reusePrefix(value: boolean) {
    this.#properties.reusePrefix = Boolean(value);
    void this.#request({ type: "set", id: this.#nextId++, value: Boolean(value) }).catch(() => {});
  }
  /** What the files say the model is: see `Model`'s properties of the same names. */
  get architecture(): string | undefined { return this.#properties.architecture; }
  get parameterCount(): number | undefined { return this.#properties.parameterCount; }
  get tokenizerKind(): string | undefined { return this.#properties.tokenizerKind; }
  /** The memory and positions of the KV-cache rows kept of earlier runs, which `fork` takes a
   * branch's prefix from. */
  get prefixCacheHeldBytes(): number { return this.#properties.prefixCacheHeldBytes!; }
  get prefixCachePositions(): number { return this.#properties.prefixCachePositions!; }
  /** Which build the worker runs and on how many threads; undefined until it has started. */
  get threads(): EngineThreads | undefined { return this.#threads; }
  /** The failure that ended this model (a trap, a dead worker, terminate()), or null. */
  get failure(): Error | null { return this.#failure; }

  /** Starts the engine on `threads` threads (null: half the cores); `createWorkerModel` does it
   * first. Resolves to what it runs: a worker started earlier keeps its threads. */
  async start(threads: number | null = null): Promise<EngineThreads> {
    if (threads !== null && !(Number.isSafeInteger(threads) && threads >= 1)) {
      throw codedError("InvalidConfig", `threads must be a whole number of at least 1, not ${threads}`);
    }
    this.#threads = await this.#request({ type: "start", id: this.#nextId++, threads });
    return this.#threads;
  }

  /** Loads `source` in the worker (options as `Model.load`'s). It cancels the running
   * generation; the old model serves until the new one is built, and stays if the load fails,
   * is aborted, or is superseded by a later one (`code` "Superseded"). */
  async load(source: ModelSource, options: LoadModelOptions = {}): Promise<void> {
    const { onProgress = () => {}, signal, ...loadOptions } = options;
    throwIfAborted(signal);
    const { source: sent, transfer } = await postable(source, onProgress, signal);
    await this.#request({ type: "load", id: this.#nextId++, source: sent, options: loadOptions }, transfer, { onProgress, signal });
  }

  encode(text: string): Promise<Uint32Array> { return this.#call("encode", text); }
  decode(ids: ArrayLike<number>): Promise<string> { return this.#call("decode", Uint32Array.from(ids)); }
  score(text: string, config?: ScoreConfig): Promise<ScoreResult> { return this.#call("score", text, config); }
  logProbs(ids: ArrayLike<number>): Promise<Float64Array> { return this.#call("logProbs", Uint32Array.from(ids)); }
  applyChatTemplate(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): Promise<string> { return this.#call("applyChatTemplate", messages, options); }
  setChatTemplate(source: string | null): Promise<void> { return this.#call("setChatTemplate", source); }
  setNgramStore(bytes: Uint8Array | null): Promise<void> { return this.#call("setNgramStore", bytes); }
  buildNgramStore(text: string, extend: boolean): Promise<Uint8Array> { return this.#call("buildNgramStore", text, extend); }
  /** The sampler `config` builds: its stages and the settings it ignores; rejects with its config error. */
  describeSampler(config?: SamplerConfig): Promise<SamplerDescription> { return this.#request({ type: "describeSampler", id: this.#nextId++, config }); }
  /** The settings a generation with `config` would not use, as paths: `sampler.topK` under
   * Mirostat; under superposed decoding every sampler setting given, and `stopStrings`. */
  ignoredSettings(config?: GenerateConfig): Promise<string[]> { return this.#request({ type: "ignoredSettings", id: this.#nextId++, config }); }

  /** Resolves to the steps; `onStep` sees each as it arrives. An abort (`signal` or `cancel()`)
   * rejects with a DOMException named "AbortError" (`code` "Cancelled") whose `steps` holds the
   * steps made. */
  generate(prompt: string, config?: GenerateConfig, onStep?: ((step: Step) => void) | null, signal?: AbortSignal | null): Promise<Step[]> {
    return this.#generate(prompt, undefined, config, onStep, signal);
  }

  /** `generate` from a branch point: after `prompt`, `tokens` are taken as already generated (a
   * run's first tokens, then an alternative to its next one), and the generation goes on from
   * there. The prefix comes from the KV-cache rows the engine kept of earlier runs, and a branch
   * on a run's own token goes on as the run did. */
  fork(prompt: string, tokens: ArrayLike<number>, config?: GenerateConfig, onStep?: ((step: Step) => void) | null, signal?: AbortSignal | null): Promise<Step[]> {
    return this.#generate(prompt, Array.from(tokens), config, onStep, signal);
  }

  #generate(prompt: string, tokens: number[] | undefined, config?: GenerateConfig, onStep?: ((step: Step) => void) | null, signal?: AbortSignal | null): Promise<Step[]> {
    const steps: Step[] = [];
    const request = this.#request({ type: "generate", id: this.#nextId++, prompt, tokens, config }, [], {
      steps,
      onStep: (step) => {
        steps.push(step as Step);
        onStep?.(step as Step);
      },
      signal,
    });
    return request.then(() => steps);
  }

  /** A beam search: `onStep` sees each step (the candidates kept, finished and pruned); resolves
   * to the finished hypotheses, best first. An abort rejects as `generate`'s does. */
  beamSearch(prompt: string, config?: BeamConfig, onStep?: ((step: BeamStep) => void) | null, signal?: AbortSignal | null): Promise<Hypothesis[]> {
    const steps: BeamStep[] = [];
    return this.#request({ type: "beamSearch", id: this.#nextId++, prompt, config }, [], {
      steps,
      onStep: (step) => {
        steps.push(step as BeamStep);
        onStep?.(step as BeamStep);
      },
      signal,
    });
  }

  /** An async iterator of one generation's steps; `break` cancels it. */
  stream(prompt: string, config?: GenerateConfig, { signal }: { signal?: AbortSignal } = {}): AsyncIterableIterator<Step> {
    const queue: Step[] = [];
    let wake: (() => void) | null = null;
    let ended: { done: true } | { error: unknown } | null = null;
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal?.addEventListener("abort", onAbort);
    let started: Promise<unknown> | null = null;
    const start = () => {
      started ??= this.generate(prompt, config, (step) => {
        queue.push(step);
        wake?.();
      }, controller.signal).then(
        () => (ended = { done: true }),
        (error: unknown) => (ended = { error }),
      ).finally(() => {
        signal?.removeEventListener("abort", onAbort);
        wake?.();
      });
      if (signal?.aborted) controller.abort();
    };
    return {
      [Symbol.asyncIterator]() { return this; },
      async next(): Promise<IteratorResult<Step>> {
        start();
        for (;;) {
          const step = queue.shift();
          if (step) return { value: step, done: false };
          if (ended && "error" in ended) throw ended.error;
          if (ended) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
        }
      },
      async return(): Promise<IteratorResult<Step>> {
        if (started && !ended) {
          controller.abort();
          await started;
        }
        ended ??= { done: true };
        return { value: undefined, done: true };
      },
    };
  }

  /** Cancels the running generation, if any: it rejects with an AbortError. */
  cancel(): void {
    for (const [id, pending] of this.#pending) if (pending.steps) this.#post({ type: "abort", target: id });
  }

  /** Ends the worker; every pending and later call rejects (`code` "EngineFailed"). */
  terminate(): void {
    this.#fail(codedError("EngineFailed", "the worker was terminated"), false);
  }

  /** The same as terminate(). */
  free(): void {
    this.terminate();
  }

  /** Ends the model: every pending and later call rejects with `error`. */
  #fail(error: Error & { code?: string | undefined }, report = true): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#worker.terminate();
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    if (report && error.code === "EngineFailed") this.#onFailure(error as Error & { code: "EngineFailed" });
  }

  #call<M extends CallMethod>(method: M, ...args: Extract<WorkerRequest, { method: M }>["args"]): Promise<ResultOf<Extract<WorkerRequest, { method: M }>>> {
    // postMessage copies bytes (nothing is transferred): the caller keeps its own.
    return this.#request({ type: "call", id: this.#nextId++, method, args } as Extract<WorkerRequest, { method: M }>);
  }

  /** Sends one request; `handlers` may take its progress or steps, and abort it with a signal. */
  #request<R extends AnsweredRequest>(message: R, transfer: Transferable[] = [], handlers: Handlers = {}): Promise<ResultOf<R>> {
    if (this.#failure) return Promise.reject(this.#failure);
    const { id } = message;
    return new Promise((resolve, reject) => {
      const { signal } = handlers;
      const onAbort = () => this.#post({ type: "abort", target: id });
      const settle = <T>(finish: (value: T) => void) => (value: T) => {
        signal?.removeEventListener("abort", onAbort);
        finish(value);
      };
      this.#pending.set(id, { ...handlers, resolve: settle(resolve as (value: unknown) => void), reject: settle(reject) });
      this.#post(message, transfer);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort);
    });
  }

  #post(message: WorkerRequest, transfer: Transferable[] = []): void {
    if (!this.#failure) this.#worker.postMessage(message, transfer);
  }

  #receive(message: WorkerReply): void {
    if (message.type === "failed") return this.#fail(reviveError(message.error));
    if (message.id === undefined) return;
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    if (message.type === "progress") return pending.onProgress?.(message.progress);
    if (message.type === "step") return pending.onStep?.(message.step);
    this.#pending.delete(message.id);
    if (message.type === "result") {
      if (message.properties) this.#properties = { ...this.#properties, ...message.properties };
      return pending.resolve(message.value);
    }
    const error = reviveError(message.error, pending.steps);
    pending.reject(error);
    if (error.code === "EngineFailed") this.#fail(error);
  }
}
