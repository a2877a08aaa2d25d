// Model.load: a model from wherever its bytes are, with progress in bytes and phases, the
// Cache API (fetcher.js) and an AbortSignal.
import * as singleThreaded from "./decoding_playground.js";
import { Model, type LoadOptions } from "./decoding_playground.js";
import { cachedFetcher, codedError, isResponse, plainFetcher, readBody, readStream, throwIfAborted, type Progress } from "./fetcher.js";
import { orderSplitFiles, splitPartNames, splitPartUrls } from "./split.js";

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

/** The files a URL's load fetches first: see `locationFiles`. */
export type LocationFiles = { format: "gguf"; gguf: string[] } | { format: "onnx"; onnx: string; tokenizer: string; config: string };

/** An ONNX export's files, read: what `new Model` takes. */
interface OnnxFiles {
  gguf?: undefined;
  onnx: Uint8Array;
  externalData: Record<string, Uint8Array>;
  tokenizer: Uint8Array;
  config: string | null;
  generationConfig: string | null;
  chatTemplate: string | null;
}

/** A model's files, read: a GGUF's parts, or an ONNX export's files. */
type ReadFiles = { gguf: Uint8Array | Uint8Array[]; chatTemplate?: undefined } | OnnxFiles;

type OnProgress = (progress: LoadProgress) => void;

/** The most bytes of model files a load takes. The engine is wasm32: its memory (never shrunk)
 * ends at 4 GiB, and a GGUF's weights stay in their own blocks there, about the file's size
 * (SmolLM2: a 98 MB file, 135 MB of wasm memory once loaded). The last GiB is left to the KV
 * cache (SmolLM2 at its full 8192 tokens: 377 MB), the tokenizer, the runtime's scratch and the
 * one tensor copied while it loads. A bigger model would trap when the memory cannot grow,
 * after its whole download, and cost the page its engine. */
export const MAX_MODEL_BYTES = 3 * 2 ** 30;

/** Refuses (`code` "TooLarge") a model of `bytes` past MAX_MODEL_BYTES, before any is read. */
export function checkModelSize(bytes: number, what = "the model"): void {
  if (bytes > MAX_MODEL_BYTES) {
    const gb = (n: number) => `${(n / 1e9).toFixed(1)} GB`;
    throw codedError("TooLarge", `${what} is ${gb(bytes)}, more than the ${gb(MAX_MODEL_BYTES)} this engine can hold (WebAssembly's memory ends at 4 GiB, and the model needs room beside its weights)`);
  }
}

/** The build a model loads into: the package's own (single-threaded), or the threaded one in
 * an engine worker that runs it (worker.ts). */
export interface EngineBuild {
  Model: Pick<typeof Model, "fromGguf"> & (new (...args: ConstructorParameters<typeof Model>) => Model);
  externalDataFiles: typeof singleThreaded.externalDataFiles;
}

/** The model at `source`; also `Model.load(source, options)`. */
export async function loadModel(source: ModelSource, options: LoadModelOptions = {}, build: EngineBuild = singleThreaded): Promise<Model> {
  const { onProgress = () => {}, cache = true, signal, ...modelOptions } = options;
  throwIfAborted(signal);
  const fetchBytes = cache ? cachedFetcher() : plainFetcher;
  // Bytes of the files fetched so far: a download is refused once the files pass what the
  // engine can hold, from its Content-Length, or as its bytes come when it has none.
  let fetched = 0;
  const fetchFile = async (url: string) => {
    const file = new URL(url).pathname.split("/").pop() ?? url;
    const progress: Progress = (loaded, total, fromCache) => {
      checkModelSize(fetched + Math.max(loaded, total ?? 0), file);
      onProgress({ phase: fromCache ? "cache" : "download", file, loaded, total });
    };
    const { bytes } = await fetchBytes(url, progress, { signal });
    fetched += bytes.length;
    return bytes;
  };
  const files: ReadFiles = await (isLocation(source)
    ? fetchLocation(source, fetchFile, build)
    : isFileList(source)
      ? readFiles(modelFiles(source), onProgress, signal, build)
      : { gguf: await bytesOf(source, onProgress, signal) });
  throwIfAborted(signal);
  onProgress({ phase: "build", file: null, loaded: 0, total: null });
  // The model's graph or weights are built here, on this thread: seconds for SmolLM2. In a
  // page, call this in a Web Worker.
  if (files.gguf === undefined && Object.keys(modelOptions).length > 0) {
    throw codedError("InvalidConfig", `an ONNX export runs on the CPU at its full context: ${Object.keys(modelOptions).join(", ")} apply to GGUF files only`);
  }
  const model = files.gguf !== undefined
    ? await build.Model.fromGguf(files.gguf, modelOptions)
    : new build.Model(files.onnx, files.tokenizer, files.config, { externalData: files.externalData, generationConfigJson: files.generationConfig ?? undefined });
  try {
    if (files.chatTemplate) model.setChatTemplate(files.chatTemplate);
    throwIfAborted(signal);
  } catch (error) {
    model.free();
    throw error;
  }
  onProgress({ phase: "ready", file: null, loaded: 0, total: null });
  return model;
}

function isLocation(source: ModelSource): source is string | URL {
  return typeof source === "string" || source instanceof URL;
}

function isFileList(source: ModelSource): source is ModelFileList {
  return Array.isArray(source) || (typeof FileList !== "undefined" && source instanceof FileList);
}

/** Picks the model out of a drop or a file picker's files: one .gguf file (it holds the whole
 * model: anything with it is not needed) or every part of a split one (`parts`, in order; `gguf`
 * is the first), or one .onnx model with tokenizer.json, config.json
 * (optional: the dimensions are in the graph), generation_config.json and tokenizer_config.json
 * or chat_template.jinja (its chat template) when they are there, and the graph's external data
 * files among the rest. */
export function modelFiles(list: ModelFileList): PickedModelFiles {
  const files = [...list];
  const lower = (f: File) => f.name.toLowerCase();
  const ggufs = files.filter((f) => lower(f).endsWith(".gguf"));
  if (ggufs.length > 0) {
    const split = ggufs.length > 1 || (splitPartNames(ggufs[0]!.name)?.length ?? 1) > 1;
    const parts = split ? orderSplitFiles(ggufs) : ggufs;
    return { format: "gguf", gguf: parts[0]!, parts };
  }
  const onnxs = files.filter((f) => lower(f).endsWith(".onnx"));
  if (onnxs.length > 1) throw codedError("InvalidInput", `${onnxs.length} .onnx files (${onnxs.map((f) => f.name).join(", ")}): give one model`);
  const [onnx] = onnxs;
  const json = files.filter((f) => lower(f).endsWith(".json"));
  const named = (name: string) => json.find((f) => lower(f) === name);
  const tokenizer = named("tokenizer.json") ?? json.find((f) => lower(f).includes("tokenizer") && !lower(f).includes("config"));
  const config = named("config.json") ?? json.find((f) => lower(f).includes("config") && !lower(f).includes("tokenizer") && !lower(f).includes("generation"));
  if (!onnx || !tokenizer) {
    const missing = [!onnx && "a .onnx model", !tokenizer && "tokenizer.json"].filter((m) => m !== false);
    throw codedError("InvalidInput", `missing ${missing.join(" and ")}: give one .gguf file, or a .onnx model with its tokenizer.json (and config.json, and its data files)`);
  }
  const used = new Set([onnx, tokenizer, config, ...json, ...files.filter((f) => lower(f).endsWith(".jinja"))]);
  return {
    format: "onnx",
    onnx,
    tokenizer,
    config: config ?? null,
    generationConfig: named("generation_config.json") ?? null,
    tokenizerConfig: named("tokenizer_config.json") ?? null,
    chatTemplate: files.find((f) => lower(f).endsWith(".jinja")) ?? null,
    // The graph names its data files (model.onnx_data, …); the loader matches them by name.
    data: files.filter((f) => !used.has(f)),
  };
}

async function readFiles(picked: PickedModelFiles, onProgress: OnProgress, signal: AbortSignal | undefined, build: EngineBuild): Promise<ReadFiles> {
  const read = (file: File) => bytesOf(file, onProgress, signal);
  const sizes = picked.format === "gguf" ? picked.parts : [picked.onnx, ...picked.data];
  checkModelSize(sizes.reduce((sum, f) => sum + f.size, 0), picked.format === "gguf" ? picked.gguf.name : picked.onnx.name);
  if (picked.format === "gguf") return { gguf: await readAll(picked.parts, read) };
  const onnx = await read(picked.onnx);
  const wanted = new Set(build.externalDataFiles(onnx));
  const externalData: Record<string, Uint8Array> = {};
  for (const file of picked.data) if (wanted.has(file.name)) externalData[file.name] = await read(file);
  return {
    onnx,
    externalData,
    tokenizer: await read(picked.tokenizer),
    config: picked.config ? await picked.config.text() : null,
    generationConfig: picked.generationConfig ? await picked.generationConfig.text() : null,
    chatTemplate: (picked.tokenizerConfig ? chatTemplateIn(parseJson(await picked.tokenizerConfig.text(), picked.tokenizerConfig.name)) : null) ?? (await picked.chatTemplate?.text()) ?? null,
  };
}

function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw codedError("InvalidInput", `${name} is not JSON: ${(error as Error).message}`);
  }
}

/** Each file's bytes, one after another (not at once: each is a download or a read in full). */
async function readAll<S>(sources: readonly S[], read: (source: S) => Promise<Uint8Array>): Promise<Uint8Array[]> {
  const all: Uint8Array[] = [];
  for (const source of sources) all.push(await read(source));
  return all;
}

/** A `.gguf` URL is one file, or a part of a split one (`name-00001-of-00003.gguf`: every part is
 * fetched); a folder URL (ending in "/") or a `.onnx` URL is an ONNX export:
 * the .onnx (model.onnx for a folder) with the data files it names, and tokenizer.json,
 * config.json, generation_config.json, tokenizer_config.json (or chat_template.jinja) beside it, or
 * beside its folder when that is `onnx/` (the transformers.js layout). Only tokenizer.json is
 * required of those. */
async function fetchLocation(source: string | URL, fetchFile: (url: string) => Promise<Uint8Array>, build: EngineBuild): Promise<ReadFiles> {
  const url = new URL(source, globalThis.location?.href);
  if (!isOnnxLocation(url)) return { gguf: await readAll(splitPartUrls(url), fetchFile) };
  const { model: modelUrl, folder, meta } = onnxFolders(url);
  const onnx = await fetchFile(modelUrl.href);
  const externalData: Record<string, Uint8Array> = {};
  for (const name of build.externalDataFiles(onnx)) externalData[name] = await fetchFile(new URL(name, folder).href);
  // An optional file: null when the server has none. A server with a single-page-app fallback
  // answers a missing file with its index.html, which is taken for none too.
  const text = async (name: string) => {
    let body: string;
    try {
      body = new TextDecoder().decode(await fetchFile(new URL(name, meta).href));
    } catch (error) {
      if ((error as { status?: number } | null)?.status === 404) return null;
      throw error;
    }
    return /^\s*<(!doctype html|html)/i.test(body) ? null : body;
  };
  return {
    onnx,
    externalData,
    tokenizer: await fetchFile(new URL("tokenizer.json", meta).href),
    config: await text("config.json"),
    generationConfig: await text("generation_config.json"),
    // Newer Hugging Face repositories keep the template in its own file.
    chatTemplate: (await chatTemplateOf(new URL("tokenizer_config.json", meta).href)) ?? (await text("chat_template.jinja")),
  };
}

function isOnnxLocation(url: URL): boolean {
  return url.pathname.endsWith("/") || url.pathname.endsWith(".onnx");
}

/** An ONNX location's graph, the folder of its data files and the folder of its tokenizer and
 * configs (the one above an `onnx/` folder). */
function onnxFolders(url: URL): { model: URL; folder: URL; meta: URL } {
  const model = url.pathname.endsWith("/") ? new URL("model.onnx", url) : url;
  const folder = new URL(".", model);
  return { model, folder, meta: folder.pathname.endsWith("/onnx/") ? new URL("..", folder) : folder };
}

/** The files a location's load fetches first, as `loadModel` finds them (before an ONNX graph
 * names its data files): a GGUF's parts, or an ONNX export's graph, tokenizer.json and
 * config.json (optional). For sizing a download before it starts. */
export function locationFiles(source: string | URL): LocationFiles {
  const url = new URL(source, globalThis.location?.href);
  if (!isOnnxLocation(url)) return { format: "gguf", gguf: splitPartUrls(url) };
  const { model, meta } = onnxFolders(url);
  return { format: "onnx", onnx: model.href, tokenizer: new URL("tokenizer.json", meta).href, config: new URL("config.json", meta).href };
}

/** `chat_template` from an HF tokenizer_config.json, when the folder has one. */
async function chatTemplateOf(url: string): Promise<string | null> {
  try {
    const response = await fetch(url);
    return response.ok ? chatTemplateIn(await response.json()) : null;
  } catch {
    return null;
  }
}

function chatTemplateIn(config: unknown): string | null {
  const template = (config as { chat_template?: unknown } | null)?.chat_template;
  // Some configs list named templates: [{ name: "default", template }, ...].
  if (Array.isArray(template)) return (template as ({ name?: unknown; template?: string } | null)[]).find((t) => t?.name === "default")?.template ?? null;
  return typeof template === "string" ? template : null;
}

/** The bytes of a GGUF given as a Blob or File, a Response, an ArrayBuffer or a typed array. */
async function bytesOf(source: ModelSource, onProgress: OnProgress, signal: AbortSignal | undefined): Promise<Uint8Array> {
  const file = typeof File !== "undefined" && source instanceof File ? source.name : null;
  const progress = (loaded: number, total: number | null) => onProgress({ phase: "read", file, loaded, total });
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  if (typeof Blob !== "undefined" && source instanceof Blob) return readStream(source.stream(), source.size, progress, signal);
  if (isResponse(source)) {
    if (!source.ok) throw codedError("Network", `the response is HTTP ${source.status} ${source.statusText}`);
    return readBody(source, progress, signal);
  }
  throw codedError("InvalidInput", "Model.load takes a URL (of a .gguf file, or of an ONNX export's folder), a File or Blob, a list of Files, a Response, an ArrayBuffer or a Uint8Array");
}

