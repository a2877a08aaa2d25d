import type { LoadModelOptions, ModelSource } from "./load.js";
import type { Model as WasmModel } from "./decoding_playground.js";

export * from "./decoding_playground.js";
export { default } from "./decoding_playground.js";
export * from "./fetcher.js";
export * from "./load.js";
export * from "./split.js";
export * from "./worker.js";

declare module "./decoding_playground.js" {
  namespace Model {
    /** The model at `source` (a .gguf URL, an ONNX folder URL, a File, Blob, Response or bytes),
     * with progress, the Cache API and an AbortSignal: see `loadModel`. */
    function load(source: ModelSource, options?: LoadModelOptions): Promise<WasmModel>;
  }
}
