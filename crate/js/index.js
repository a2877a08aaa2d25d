// The package's entry: wasm-bindgen's bindings (decoding_playground.js), plus loading with
// progress and the Cache API, and the engine in a Web Worker (worker.js), which are plain JS. Types: index.d.ts.
import { Model } from "./decoding_playground.js";
import { checkModelSize, loadModel, locationFiles, MAX_MODEL_BYTES, modelFiles } from "./load.js";

export * from "./decoding_playground.js";
export { default } from "./decoding_playground.js";
export { cachedFetcher, fetchWithCache, isCached, partKey, plainFetcher, PART_BYTES } from "./fetcher.js";
export { checkModelSize, loadModel, locationFiles, MAX_MODEL_BYTES, modelFiles };
export { orderSplitFiles, splitPartNames, splitPartUrls } from "./split.js";
export { createWorkerModel, serveModelWorker, WorkerModel } from "./worker.js";

Model.load = loadModel;
