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
  const files = await (isLocation(source) ? fetchLocation(source, fetchFile) : { gguf: await bytesOf(source, onProgress, signal) });
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
  let config;
  try {
    const response = await fetch(url);
    if (!response.ok) return null;
    config = await response.json();
  } catch {
    return null;
  }
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
  throw codedError("InvalidInput", "Model.load takes a URL (of a .gguf file, or of an ONNX export's folder), a File or Blob, a Response, an ArrayBuffer or a Uint8Array");
}

