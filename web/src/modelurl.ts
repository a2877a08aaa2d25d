// Models named by a URL: one typed in the model panel's "Load from URL" field, or one that a
// link carries as `?model=<url>`. The page fetches only the URL it is given (never a hub of its
// own accord): a GGUF (any part of a split one brings its siblings), or an ONNX export's .onnx
// or folder. Before anything is downloaded it is sized with HEAD requests, and refused when it
// cannot be reached or is past what the engine can hold.
import { checkModelSize, locationFiles } from "decoding-playground";
import { fileName, type ModelSource } from "./protocol";

type UrlSource = Extract<ModelSource, { kind: "url" }>;

/** What `?model=` asks for: a server model ("tiny", or SmolLM2 without the key), or a URL. */
export type ModelParam = { kind: "server"; which: "smollm2" | "tiny" } | { kind: "url"; url: string };

export function modelParam(value: string | null): ModelParam {
  if (value === null || value === "" || value === "smollm2") return { kind: "server", which: "smollm2" };
  if (value === "tiny") return { kind: "server", which: "tiny" };
  return { kind: "url", url: value };
}

/** The source for a model URL, resolved against the page (a link may name a path on the page's
 *  own server). Throws, saying why, for what cannot be a model URL. */
export function urlSource(text: string, base: string = location.href): UrlSource {
  let url: URL;
  try {
    url = new URL(text.trim(), base);
  } catch {
    throw new Error(`“${text}” is not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error(`${url.protocol} URLs cannot be fetched: give an http(s) URL`);
  // Hugging Face's file page is HTML; its download link is the same path with /resolve/.
  if (url.hostname === "huggingface.co" && url.pathname.includes("/blob/")) {
    throw new Error(`this is Hugging Face's page of the file, not the file: use its download link, ${url.origin}${url.pathname.replace("/blob/", "/resolve/")}`);
  }
  const name = `${fileName(url.href) || url.pathname} (${url.origin})`;
  const files = locationFiles(url.href);
  const common = { kind: "url" as const, name, ngrams: null, param: url.href };
  return files.format === "gguf" ? { ...common, format: "gguf", gguf: url.href } : { ...common, format: "onnx", onnx: files.onnx, tokenizer: files.tokenizer, config: files.config };
}

/** A model file as a HEAD request found it: its size (null when the server does not say), or
 *  why it cannot be fetched. */
export interface SizedFile {
  file: string;
  bytes: number | null;
  error: string | null;
}

/** Why a model named by a URL must not be downloaded, or null: a file that cannot be reached
 *  (the download would fail the same way), or files past what the engine can hold. An ONNX
 *  export's config.json is optional, so its absence is no reason. */
export function refusal(source: UrlSource, files: readonly SizedFile[]): string | null {
  const broken = files.find((f) => f.error !== null && !(source.format === "onnx" && f.file === "config.json"));
  if (broken) return `${broken.file} cannot be fetched: ${broken.error}`;
  try {
    checkModelSize(files.reduce((sum, f) => sum + (f.bytes ?? 0), 0), source.name);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Why a HEAD request failed, in words: a fetch that throws is a network error or, far more
 *  often for a file on another site, a server that does not allow this page to read it. */
export function headError(response: Response | null): string {
  if (response === null) return "the server did not answer, or does not allow other sites to fetch its files (CORS)";
  return `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
}
