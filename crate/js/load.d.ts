import type { LoadOptions, Model } from "./decoding_playground.js";

/** Where a model's bytes are: a URL of a `.gguf` file, a URL of an ONNX export's folder (ending
 * in "/", or its `model.onnx`: model.onnx, tokenizer.json, config.json and, when present,
 * tokenizer_config.json's chat template), or a GGUF as a File, Blob, Response or bytes. */
export type ModelSource = string | URL | Blob | Response | ArrayBuffer | ArrayBufferView | ModelFileList;

/** Files from a drop or a file picker: one .gguf, or a .onnx with tokenizer.json and config.json
 * (and tokenizer_config.json for its chat template). */
export type ModelFileList = readonly File[] | (ArrayLike<File> & Iterable<File>); // a FileList is one

export type PickedModelFiles =
  | { format: "gguf"; gguf: File }
  | { format: "onnx"; onnx: File; tokenizer: File; config: File; tokenizerConfig: File | null };

/** Which of `files` make the model, as `loadModel` picks them; throws (`code` "InvalidInput")
 * when they do not make one, saying what is missing. */
export function modelFiles(files: ModelFileList): PickedModelFiles;

export interface LoadProgress {
  /** "download" and "cache": a URL's bytes, from the network or the Cache API; "read": a Blob's
   * or Response's; "build": the engine builds the model (no byte counts); "ready": done. */
  phase: "download" | "cache" | "read" | "build" | "ready";
  /** The file the bytes belong to (null for bytes without a name, and for build and ready). */
  file: string | null;
  loaded: number;
  /** null when the size is not known in advance. */
  total: number | null;
}

export interface LoadModelOptions extends LoadOptions {
  onProgress?: (progress: LoadProgress) => void;
  /** Keep downloaded files in the Cache API, where there is one (default true). */
  cache?: boolean;
  /** Aborts the load: it rejects with a DOMException named "AbortError" (`code` "Cancelled"). */
  signal?: AbortSignal;
}

/** The model at `source`; also `Model.load(source, options)`. */
export function loadModel(source: ModelSource, options?: LoadModelOptions): Promise<Model>;
