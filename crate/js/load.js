// Model.load: a model from wherever its bytes are, with progress in bytes and phases, the
// Cache API (fetcher.js) and an AbortSignal. Types: load.d.ts.
import { Model } from "./decoding_playground.js";
import { cachedFetcher, codedError, plainFetcher, readBody, readStream, throwIfAborted } from "./fetcher.js";

/** The files of an ONNX export's folder; tokenizer_config.json is optional (its chat template). */
const ONNX_FILES = ["model.onnx", "tokenizer.json", "config.json"];

export async function loadModel(source, options = {}) {
  const { onProgress = () => {}, cache = true, signal, ...modelOptions } = options;
  throwIfAborted(signal);
  const fetchBytes = cache ? cachedFetcher() : plainFetcher;
  const fetchFile = async (url) => {
    const file = new URL(url).pathname.split("/").pop();
    const progress = (loaded, total, fromCache) => onProgress({ phase: fromCache ? "cache" : "download", file, loaded, total });
    return (await fetchBytes(url, progress, { signal })).bytes;
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
    : new Model(files["model.onnx"], files["tokenizer.json"], new TextDecoder().decode(files["config.json"]));
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
 * model: anything with it is not needed), or a .onnx model, tokenizer.json and config.json, with
 * tokenizer_config.json's chat template when it is there. */
export function modelFiles(files) {
  files = [...files];
  const lower = (f) => f.name.toLowerCase();
  const ggufs = files.filter((f) => lower(f).endsWith(".gguf"));
  if (ggufs.length > 1) throw codedError("InvalidInput", `${ggufs.length} .gguf files: give one (it holds the whole model)`);
  if (ggufs.length === 1) return { format: "gguf", gguf: ggufs[0] };
  const onnx = files.find((f) => lower(f).endsWith(".onnx"));
  const json = files.filter((f) => lower(f).endsWith(".json"));
  const tokenizerConfig = json.find((f) => lower(f).endsWith("tokenizer_config.json"));
  const tokenizer = json.find((f) => lower(f).includes("tokenizer") && f !== tokenizerConfig);
  const config = json.find((f) => lower(f) === "config.json") ?? json.find((f) => lower(f).includes("config") && !lower(f).includes("tokenizer") && !lower(f).includes("generation"));
  if (!onnx || !tokenizer || !config) {
    const missing = [!onnx && "a .onnx model", !tokenizer && "tokenizer.json", !config && "config.json"].filter(Boolean);
    // The ONNX path takes the dimensions and context length from config.json: it is required.
    throw codedError("InvalidInput", `missing ${missing.join(" and ")}: give one .gguf file, or model.onnx, tokenizer.json and config.json together`);
  }
  return { format: "onnx", onnx, tokenizer, config, tokenizerConfig: tokenizerConfig ?? null };
}

async function readFiles(picked, onProgress, signal) {
  const read = (file) => bytesOf(file, onProgress, signal);
  if (picked.format === "gguf") return { gguf: await read(picked.gguf) };
  const files = { "model.onnx": await read(picked.onnx), "tokenizer.json": await read(picked.tokenizer), "config.json": await read(picked.config) };
  files.chatTemplate = picked.tokenizerConfig ? chatTemplateIn(parseJson(await picked.tokenizerConfig.text(), picked.tokenizerConfig.name)) : null;
  return files;
}

function parseJson(text, name) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw codedError("InvalidInput", `${name} is not JSON: ${error.message}`);
  }
}

/** A `.gguf` URL is one file; a folder URL (ending in "/") or a `.onnx` URL is an ONNX export. */
async function fetchLocation(source, fetchFile) {
  const url = new URL(source, globalThis.location?.href);
  const onnx = url.pathname.endsWith("/") || url.pathname.endsWith(".onnx");
  if (!onnx) return { gguf: await fetchFile(url.href) };
  const folder = new URL(".", url);
  const files = {};
  for (const name of ONNX_FILES) files[name] = await fetchFile(new URL(name, folder).href);
  files.chatTemplate = await chatTemplateOf(new URL("tokenizer_config.json", folder).href);
  return files;
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

