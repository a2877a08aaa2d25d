import type { BackendInfo, ChatMessage, GenerateConfig, SamplerConfig, ScoreConfig, ScoreResult, Step } from "./decoding_playground.js";
import type { LoadModelOptions, ModelSource } from "./load.js";

/** What `serveModelWorker` talks through: the worker's global scope, or in a Node worker thread
 * `parentPort` (worker_threads). */
export interface WorkerScope {
  postMessage(message: any): void;
  addEventListener(type: "message", listener: (event: any) => void): void;
}

/** Node's worker_threads `Worker`, as far as `createWorkerModel` uses it. */
export interface NodeWorker {
  postMessage(message: any, transfer?: readonly any[]): void;
  on(event: "message" | "error", listener: (value: any) => void): unknown;
  terminate(): unknown;
}

/** Serves one model to the page that started this worker: call it once, in the worker
 * (`serveModelWorker(parentPort)` in a Node worker thread). */
export function serveModelWorker(scope?: WorkerScope): void;

export interface WorkerModelOptions extends LoadModelOptions {
  /** Called once if the engine fails for good (a trap, or the worker dies); `error.code` is
   * "EngineFailed". Start a new worker to go on. */
  onFailure?: (error: Error & { code: "EngineFailed" }) => void;
}

/** Loads `source` in `worker` (a module worker that calls `serveModelWorker()`, or a Node
 * worker thread that calls `serveModelWorker(parentPort)`). A URL is
 * fetched in the worker (with the Cache API); a File, Blob or bytes are posted to it. If the load
 * fails, or is aborted, the worker is ended. Without a source (null), the worker holds no model
 * until `load()`. */
export function createWorkerModel(worker: Worker | NodeWorker, source: ModelSource | null, options?: WorkerModelOptions): Promise<WorkerModel>;

/** A model in a Web Worker, with the Model's API made asynchronous. Its properties are the
 * worker's, as of its latest reply. */
export class WorkerModel {
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly backend: BackendInfo;
  readonly weightTypes: string[];
  readonly kvCacheBytesPerToken: number;
  readonly ngramStoreTokens: number;
  readonly chatTemplate: string | undefined;
  /** What the files say the model is: see `Model`'s properties of the same names. */
  readonly architecture: string | undefined;
  readonly parameterCount: number | undefined;
  readonly tokenizerKind: string | undefined;
  /** Loads `source` in the worker, as `Model.load` does. It cancels the running generation; the
   * old model serves until the new one is built, and stays if the load fails, is aborted
   * (AbortError), or is superseded by a later load (`code` "Superseded"). */
  load(source: ModelSource, options?: LoadModelOptions): Promise<void>;
  /** Takes effect for the next generation. */
  reusePrefix: boolean;
  /** The failure that ended this model (a trap, a dead worker, terminate()), or null. */
  readonly failure: Error | null;
  encode(text: string): Promise<Uint32Array>;
  decode(ids: ArrayLike<number>): Promise<string>;
  score(text: string, config?: ScoreConfig): Promise<ScoreResult>;
  logProbs(ids: ArrayLike<number>): Promise<Float64Array>;
  applyChatTemplate(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): Promise<string>;
  setChatTemplate(source: string | null): Promise<void>;
  setNgramStore(bytes: Uint8Array | null): Promise<void>;
  buildNgramStore(text: string, extend: boolean): Promise<Uint8Array>;
  /** The sampler `config` builds: its stages and the settings it ignores; rejects with its config error. */
  describeSampler(config?: SamplerConfig): Promise<{ stages: string[]; ignoredSettings: string[] }>;
  /** The settings a generation with `config` would not use, as paths: `sampler.topK` under
   * Mirostat; under superposed decoding every sampler setting given, and `stopStrings`. */
  ignoredSettings(config?: GenerateConfig): Promise<string[]>;
  /** Resolves to the steps; an abort (`signal` or `cancel()`) rejects with a DOMException named
   * "AbortError" (`code` "Cancelled") whose `steps` holds the steps made. */
  generate(prompt: string, config?: GenerateConfig, onStep?: ((step: Step) => void) | null, signal?: AbortSignal | null): Promise<Step[]>;
  /** The steps as an async iterator; `break` cancels the generation. */
  stream(prompt: string, config?: GenerateConfig, options?: { signal?: AbortSignal }): AsyncIterableIterator<Step>;
  /** Cancels the running generation, if any. */
  cancel(): void;
  /** Ends the worker; every pending and later call rejects (`code` "EngineFailed"). */
  terminate(): void;
  /** The same as terminate(). */
  free(): void;
}
