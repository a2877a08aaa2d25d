// Model.load: a model from wherever its bytes are, with progress in bytes and phases, the
// Cache API (fetcher.js) and an AbortSignal. Types: load.d.ts.
import { Model, externalDataFiles } from "./decoding_playground.js";
import { cachedFetcher, codedError, plainFetcher, readBody, readStream, throwIfAborted } from "./fetcher.js";

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
 * model: anything with it is not needed), or one .onnx model with tokenizer.json, config.json
 * (optional: the dimensions are in the graph), generation_config.json and tokenizer_config.json
 * or chat_template.jinja (its chat template) when they are there, and the graph's external data
 * files among the rest. */
export function modelFiles(files) {
  files = [...files];
  const lower = (f) => f.name.toLowerCase();
  const ggufs = files.filter((f) => lower(f).endsWith(".gguf"));
  if (ggufs.length > 1) throw codedError("InvalidInput", `${ggufs.length} .gguf files: give one (it holds the whole model)`);
  if (ggufs.length === 1) return { format: "gguf", gguf: ggufs[0] };
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
  if (picked.format === "gguf") return { gguf: await read(picked.gguf) };
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

/** A `.gguf` URL is one file; a folder URL (ending in "/") or a `.onnx` URL is an ONNX export:
 * the .onnx (model.onnx for a folder) with the data files it names, and tokenizer.json,
 * config.json, generation_config.json, tokenizer_config.json (or chat_template.jinja) beside it, or
 * beside its folder when that is `onnx/` (the transformers.js layout). Only tokenizer.json is
 * required of those. */
async function fetchLocation(source, fetchFile) {
  const url = new URL(source, globalThis.location?.href);
  if (!url.pathname.endsWith("/") && !url.pathname.endsWith(".onnx")) return { gguf: await fetchFile(url.href) };
  const modelUrl = url.pathname.endsWith("/") ? new URL("model.onnx", url) : url;
  const folder = new URL(".", modelUrl);
  const meta = folder.pathname.endsWith("/onnx/") ? new URL("..", folder) : folder;
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

