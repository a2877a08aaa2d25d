// Model.load: a model from wherever its bytes are, with progress in bytes and phases, the
// Cache API (fetcher.js) and an AbortSignal. Types: load.d.ts.
import { Model, externalDataFiles } from "./decoding_playground.js";
import { cachedFetcher, codedError, plainFetcher, readBody, readStream, throwIfAborted } from "./fetcher.js";
import { orderSplitFiles, splitPartNames, splitPartUrls } from "./split.js";

/** The most bytes of model files a load takes. The engine is wasm32: its memory (never shrunk)
 * ends at 4 GiB, and a GGUF's weights stay in their own blocks there, about the file's size
 * (SmolLM2: a 98 MB file, 135 MB of wasm memory once loaded). The last GiB is left to the KV
 * cache (SmolLM2 at its full 8192 tokens: 377 MB), the tokenizer, the runtime's scratch and the
 * one tensor copied while it loads. A bigger model would trap when the memory cannot grow,
 * after its whole download, and cost the page its engine. */
export const MAX_MODEL_BYTES = 3 * 2 ** 30;

/** Refuses (`code` "TooLarge") a model of `bytes` past MAX_MODEL_BYTES, before any is read. */
export function checkModelSize(bytes, what = "the model") {
  if (bytes > MAX_MODEL_BYTES) {
    const gb = (n) => `${(n / 1e9).toFixed(1)} GB`;
    throw codedError("TooLarge", `${what} is ${gb(bytes)}, more than the ${gb(MAX_MODEL_BYTES)} this engine can hold (WebAssembly's memory ends at 4 GiB, and the model needs room beside its weights)`);
  }
}

export async function loadModel(source, options = {}) {
  const { onProgress = () => {}, cache = true, signal, ...modelOptions } = options;
  throwIfAborted(signal);
  const fetchBytes = cache ? cachedFetcher() : plainFetcher;
  // Bytes of the files fetched so far: a download is refused once the files pass what the
  // engine can hold, from its Content-Length, or as its bytes come when it has none.
  let fetched = 0;
  const fetchFile = async (url) => {
    const file = new URL(url).pathname.split("/").pop();
    const progress = (loaded, total, fromCache) => {
      checkModelSize(fetched + Math.max(loaded, total ?? 0), file);
      onProgress({ phase: fromCache ? "cache" : "download", file, loaded, total });
    };
    const { bytes } = await fetchBytes(url, progress, { signal });
    fetched += bytes.length;
    return bytes;
  };
  const files = await (isLocation(source)
    ? fetchLocation(source, fetchFile)
    : isFileList(source)
      ? readFiles(modelFiles(source), onProgress, signal)
      : { gguf: await bytesOf(source, onProgress, signal) });
  throwIfAborted(signal);
  onProgress({ phase: "build", file: null, loaded: 0, total: null });
  // The model's graph or weights are built here, on this thread: seconds for SmolLM2. In a
  // page, call this in a Web Worker.
  if (!files.gguf && Object.keys(modelOptions).length > 0) {
    throw codedError("InvalidConfig", `an ONNX export runs on the CPU at its full context: ${Object.keys(modelOptions).join(", ")} apply to GGUF files only`);
  }
  const model = files.gguf
    ? await Model.fromGguf(files.gguf, modelOptions)
    : new Model(files.onnx, files.tokenizer, files.config, { externalData: files.externalData, generationConfigJson: files.generationConfig ?? undefined });
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

function isLocation(source) {
  return typeof source === "string" || source instanceof URL;
}

function isFileList(source) {
  return Array.isArray(source) || (typeof FileList !== "undefined" && source instanceof FileList);
}

/** Picks the model out of a drop or a file picker's files: one .gguf file (it holds the whole
 * model: anything with it is not needed) or every part of a split one (`parts`, in order; `gguf`
 * is the first), or one .onnx model with tokenizer.json, config.json
 * (optional: the dimensions are in the graph), generation_config.json and tokenizer_config.json
 * or chat_template.jinja (its chat template) when they are there, and the graph's external data
 * files among the rest. */
export function modelFiles(files) {
  files = [...files];
  const lower = (f) => f.name.toLowerCase();
  const ggufs = files.filter((f) => lower(f).endsWith(".gguf"));
  if (ggufs.length > 0) {
    const split = ggufs.length > 1 || (splitPartNames(ggufs[0].name)?.length ?? 1) > 1;
    const parts = split ? orderSplitFiles(ggufs) : ggufs;
    return { format: "gguf", gguf: parts[0], parts };
  }
  const onnxs = files.filter((f) => lower(f).endsWith(".onnx"));
  if (onnxs.length > 1) throw codedError("InvalidInput", `${onnxs.length} .onnx files (${onnxs.map((f) => f.name).join(", ")}): give one model`);
  const [onnx] = onnxs;
  const json = files.filter((f) => lower(f).endsWith(".json"));
  const named = (name) => json.find((f) => lower(f) === name);
  const tokenizer = named("tokenizer.json") ?? json.find((f) => lower(f).includes("tokenizer") && !lower(f).includes("config"));
  const config = named("config.json") ?? json.find((f) => lower(f).includes("config") && !lower(f).includes("tokenizer") && !lower(f).includes("generation"));
  if (!onnx || !tokenizer) {
    const missing = [!onnx && "a .onnx model", !tokenizer && "tokenizer.json"].filter(Boolean);
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

async function readFiles(picked, onProgress, signal) {
  const read = (file) => bytesOf(file, onProgress, signal);
  const sizes = picked.format === "gguf" ? picked.parts : [picked.onnx, ...picked.data];
  checkModelSize(sizes.reduce((sum, f) => sum + f.size, 0), picked.format === "gguf" ? picked.gguf.name : picked.onnx.name);
  if (picked.format === "gguf") return { gguf: await readAll(picked.parts, read) };
  const onnx = await read(picked.onnx);
  const wanted = new Set(externalDataFiles(onnx));
  const externalData = {};
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

function parseJson(text, name) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw codedError("InvalidInput", `${name} is not JSON: ${error.message}`);
  }
}

/** Each file's bytes, one after another (not at once: each is a download or a read in full). */
async function readAll(sources, read) {
  const all = [];
  for (const source of sources) all.push(await read(source));
  return all;
}

/** A `.gguf` URL is one file, or a part of a split one (`name-00001-of-00003.gguf`: every part is
 * fetched); a folder URL (ending in "/") or a `.onnx` URL is an ONNX export:
 * the .onnx (model.onnx for a folder) with the data files it names, and tokenizer.json,
 * config.json, generation_config.json, tokenizer_config.json (or chat_template.jinja) beside it, or
 * beside its folder when that is `onnx/` (the transformers.js layout). Only tokenizer.json is
 * required of those. */
async function fetchLocation(source, fetchFile) {
  const url = new URL(source, globalThis.location?.href);
  if (!isOnnxLocation(url)) return { gguf: await readAll(splitPartUrls(url), fetchFile) };
  const { model: modelUrl, folder, meta } = onnxFolders(url);
  const onnx = await fetchFile(modelUrl.href);
  const externalData = {};
  for (const name of externalDataFiles(onnx)) externalData[name] = await fetchFile(new URL(name, folder).href);
  // An optional file: null when the server has none. A server with a single-page-app fallback
  // answers a missing file with its index.html, which is taken for none too.
  const text = async (name) => {
    let body;
    try {
      body = new TextDecoder().decode(await fetchFile(new URL(name, meta).href));
    } catch (error) {
      if (error?.status === 404) return null;
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

function isOnnxLocation(url) {
  return url.pathname.endsWith("/") || url.pathname.endsWith(".onnx");
}

/** An ONNX location's graph, the folder of its data files and the folder of its tokenizer and
 * configs (the one above an `onnx/` folder). */
function onnxFolders(url) {
  const model = url.pathname.endsWith("/") ? new URL("model.onnx", url) : url;
  const folder = new URL(".", model);
  return { model, folder, meta: folder.pathname.endsWith("/onnx/") ? new URL("..", folder) : folder };
}

/** The files a location's load fetches first, as `loadModel` finds them (before an ONNX graph
 * names its data files): a GGUF's parts, or an ONNX export's graph, tokenizer.json and
 * config.json (optional). For sizing a download before it starts. */
export function locationFiles(source) {
  const url = new URL(source, globalThis.location?.href);
  if (!isOnnxLocation(url)) return { format: "gguf", gguf: splitPartUrls(url) };
  const { model, meta } = onnxFolders(url);
  return { format: "onnx", onnx: model.href, tokenizer: new URL("tokenizer.json", meta).href, config: new URL("config.json", meta).href };
}

/** `chat_template` from an HF tokenizer_config.json, when the folder has one. */
async function chatTemplateOf(url) {
  try {
    const response = await fetch(url);
    return response.ok ? chatTemplateIn(await response.json()) : null;
  } catch {
    return null;
  }
}

function chatTemplateIn(config) {
  const template = config?.chat_template;
  // Some configs list named templates: [{ name: "default", template }, ...].
  if (Array.isArray(template)) return template.find((t) => t?.name === "default")?.template ?? null;
  return typeof template === "string" ? template : null;
}

/** The bytes of a GGUF given as a Blob or File, a Response, an ArrayBuffer or a typed array. */
async function bytesOf(source, onProgress, signal) {
  const file = typeof File !== "undefined" && source instanceof File ? source.name : null;
  const progress = (loaded, total) => onProgress({ phase: "read", file, loaded, total });
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  if (typeof Blob !== "undefined" && source instanceof Blob) return readStream(source.stream(), source.size, progress, signal);
  if (typeof Response !== "undefined" && source instanceof Response) {
    if (!source.ok) throw codedError("Network", `the response is HTTP ${source.status} ${source.statusText}`);
    return readBody(source, progress, signal);
  }
  throw codedError("InvalidInput", "Model.load takes a URL (of a .gguf file, or of an ONNX export's folder), a File or Blob, a list of Files, a Response, an ArrayBuffer or a Uint8Array");
}

