import type { LoadOptions, Model } from "./decoding_playground.js";

/** Where a model's bytes are: a URL of a `.gguf` file (of any part of a split one,
 * `name-00001-of-00003.gguf`: every part is fetched); a URL of an ONNX export's folder (ending
 * in "/": its model.onnx) or of one of its `.onnx` files, fetched with the external data files
 * the graph names and, beside it (or beside its `onnx/` folder, as transformers.js lays them
 * out), tokenizer.json and, when present, config.json, generation_config.json (eos ids) and
 * tokenizer_config.json or chat_template.jinja (chat template); a GGUF as a File, Blob, Response or bytes; or a list
 * of Files (see `modelFiles`). */
export type ModelSource = string | URL | Blob | Response | ArrayBuffer | ArrayBufferView | ModelFileList;

/** Files from a drop or a file picker: one .gguf, or one .onnx with tokenizer.json, and, if
 * there, config.json, generation_config.json, tokenizer_config.json and its data files. */
export type ModelFileList = readonly File[] | (ArrayLike<File> & Iterable<File>); // a FileList is one

export type PickedModelFiles =
  /** One .gguf file, or every part of a split one in order (`parts`; `gguf` is the first). */
  | { format: "gguf"; gguf: File; parts: File[] }
  | {
      format: "onnx";
      onnx: File;
      tokenizer: File;
      config: File | null;
      generationConfig: File | null;
      tokenizerConfig: File | null;
      /** A chat_template.jinja (Hugging Face's newer home of the template), used when tokenizer_config.json has none. */
      chatTemplate: File | null;
      /** The other files: the loader takes those the graph names as its external data. */
      data: File[];
    };

/** Which of `files` make the model, as `loadModel` picks them; throws (`code` "InvalidInput")
 * when they do not make one, saying what is missing (a split GGUF's missing parts by name). */
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

/** The most bytes of model files a load takes (3 GiB): the engine's wasm32 memory ends at 4 GiB,
 * the weights take about their files' size there, and the rest is left to the KV cache, the
 * tokenizer and the runtime. */
export const MAX_MODEL_BYTES: number;
/** Throws (`code` "TooLarge", naming `what` and the reason) when `bytes` is past MAX_MODEL_BYTES:
 * check a download's size (a HEAD request's Content-Length) before it starts. `loadModel`
 * checks Files itself, before reading them. */
export function checkModelSize(bytes: number, what?: string): void;

/** The files a URL's load fetches first, as `loadModel` finds them: a GGUF's parts (every part of
 * a split one), or an ONNX export's graph, tokenizer.json and config.json (optional; the data
 * files the graph names are known only once it is read). To size a download before it starts. */
export function locationFiles(url: string | URL): { format: "gguf"; gguf: string[] } | { format: "onnx"; onnx: string; tokenizer: string; config: string };

/** The model at `source`; also `Model.load(source, options)`. */
export function loadModel(source: ModelSource, options?: LoadModelOptions): Promise<Model>;
