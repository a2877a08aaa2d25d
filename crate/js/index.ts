// The package's entry: wasm-bindgen's bindings (decoding_playground.js), plus loading with
// progress and the Cache API, the engine in a Web Worker, and the engine's defaults as constants.
import { Model } from "./decoding_playground.js";
import { loadModel, type LoadModelOptions, type ModelSource } from "./load.js";

export * from "./decoding_playground.js";
export { default } from "./decoding_playground.js";
// facts.js is generated at build time from the wasm (scripts/engine-facts.mjs), beside the bindings.
export * from "./facts.js";
export { cachedFetcher, fetchWithCache, isCached, partKey, plainFetcher, PART_BYTES, type FetchBytes, type Fetched, type Progress } from "./fetcher.js";
export * from "./load.js";
export { orderSplitFiles, splitPartNames, splitPartUrls } from "./split.js";
export type { SamplerDescription, SerializedError, WorkerReply, WorkerRequest } from "./protocol.js";
export { serveModelWorker, type WorkerScope } from "./worker.js";
export { defaultThreads, threadsUnavailable, type EngineThreads } from "./threads.js";
export * from "./worker-model.js";

declare module "./decoding_playground.js" {
  namespace Model {
    /** The model at `source` (a .gguf URL, an ONNX folder URL, a File, Blob, Response or bytes),
     * with progress, the Cache API and an AbortSignal: see `loadModel`. */
    function load(source: ModelSource, options?: LoadModelOptions): Promise<Model>;
  }
}

const load: typeof Model.load = loadModel;
Object.assign(Model, { load });
