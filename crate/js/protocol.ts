// What crosses between the two halves of the engine worker: the page's `WorkerModel`
// (worker-model.ts) and `serveModelWorker` in the worker (worker.ts). One union of requests and
// one of replies, which both halves are checked against. Requests carry ids; steps and progress
// stream back under their request's id. Errors cross as `SerializedError` and are rebuilt on the
// page, so that they keep their `code`.
import type { BeamConfig, BeamStep, GenerateConfig, Hypothesis, Model, SamplerConfig, Step } from "./decoding_playground.js";
import { abortError, type CodedError } from "./fetcher.js";
import type { LoadModelOptions, LoadProgress, ModelSource } from "./load.js";
import type { EngineThreads } from "./threads.js";

/** The Model methods the page may call through the worker, all answered with their result. */
export const CALLS = ["encode", "decode", "score", "logProbs", "applyChatTemplate", "setChatTemplate", "setNgramStore", "buildNgramStore"] as const;
export type CallMethod = (typeof CALLS)[number];

/** What the page keeps of the model, sent after the load and after every call that may change it. */
export const PROPERTIES = [
  "vocabSize", "contextLength", "backend", "weightTypes", "kvCacheBytesPerToken", "ngramStoreTokens", "chatTemplate",
  "reusePrefix", "architecture", "parameterCount", "tokenizerKind", "prefixCacheHeldBytes", "prefixCachePositions",
] as const;
/** The model's properties; one the worker could not read (its engine has failed) is missing. */
export type ModelProperties = Partial<Pick<Model, (typeof PROPERTIES)[number]>>;

/** A model source as it crosses: a URL made absolute (the worker's base URL differs), a
 * Response read into bytes (it cannot be posted). */
export type PostedSource = Exclude<ModelSource, URL | Response>;

/** The sampler a config builds, as `describeSampler` answers. */
export interface SamplerDescription {
  stages: string[];
  ignoredSettings: string[];
}

/** From the page to the worker. */
export type WorkerRequest =
  /** Starts the engine on `threads` threads (null: the default), with the threaded build where
   * the page allows it. It must come first: the engine starts on the first request, and a worker's
   * thread pool is fixed once started. */
  | { type: "start"; id: number; threads: number | null }
  | { type: "load"; id: number; source: PostedSource; options: Omit<LoadModelOptions, "onProgress" | "signal"> }
  /** A generation; with `tokens`, `fork(prompt, tokens, config)`. */
  | { type: "generate"; id: number; prompt: string; tokens?: number[]; config: GenerateConfig | undefined }
  /** A beam search: its steps come as "step" replies, its hypotheses as the result. */
  | { type: "beamSearch"; id: number; prompt: string; config: BeamConfig | undefined }
  /** Sets the model's `reusePrefix`. */
  | { type: "set"; id: number; value: boolean }
  | { [M in CallMethod]: { type: "call"; id: number; method: M; args: Parameters<Model[M]> } }[CallMethod]
  | { type: "describeSampler"; id: number; config: SamplerConfig | undefined }
  | { type: "ignoredSettings"; id: number; config: GenerateConfig | undefined }
  /** Aborts request `target` (a load or a generation); it has no reply of its own. */
  | { type: "abort"; target: number };

/** A request that is answered. */
export type AnsweredRequest = Exclude<WorkerRequest, { type: "abort" }>;

/** What a request's "result" reply carries. A generation's steps come before it, one "step"
 * reply each. */
export type ResultOf<R extends AnsweredRequest> = R extends { type: "call"; method: infer M extends CallMethod }
  ? Awaited<ReturnType<Model[M]>>
  : R extends { type: "start" }
    ? EngineThreads
    : R extends { type: "describeSampler" }
      ? SamplerDescription
      : R extends { type: "ignoredSettings" }
        ? string[]
        : R extends { type: "beamSearch" }
          ? Hypothesis[]
          : null;

/** An Error as it crosses: its name, message and the `code` and `field` the page decides by. */
export interface SerializedError {
  name: string;
  message: string;
  code: string | undefined;
  field?: string | undefined;
}

/** From the worker to the page. */
export type WorkerReply =
  | { type: "result"; id: number; value: unknown; properties: ModelProperties | null }
  | { type: "error"; id: number | undefined; error: SerializedError }
  | { type: "progress"; id: number; progress: LoadProgress }
  | { type: "step"; id: number; step: Step | BeamStep }
  /** The engine failed outside any request (a trap while idle): the model is gone. */
  | { type: "failed"; error: SerializedError };

export function serializeError(error: unknown): SerializedError {
  if (typeof WebAssembly !== "undefined" && error instanceof WebAssembly.RuntimeError) {
    return { name: "EngineFailedError", message: `the engine failed (${error.message}) and cannot be used any more: start a new worker`, code: "EngineFailed" };
  }
  if (error && typeof error === "object") {
    const { name, message, code, field } = error as Partial<CodedError>;
    return { name: name ?? "Error", message: message ?? String(error), code, field };
  }
  return { name: "Error", message: String(error), code: undefined };
}

/** The page's Error for one that crossed; an AbortError keeps the `steps` made before it. */
export function reviveError(data: SerializedError, steps?: (Step | BeamStep)[]): Error & { code?: string | undefined } {
  if (data.name === "AbortError") return steps ? Object.assign(abortError(data.message), { steps }) : abortError(data.message);
  const error = Object.assign(new Error(data.message), { code: data.code }, data.field === undefined ? {} : { field: data.field });
  error.name = data.name;
  return error;
}
