// The model section: load the default model (first its size, then progress: bytes fetched, then
// compiling), a model from a URL (typed, or carried by a link: see modelurl.ts), or the user's
// own model by drag and drop or file picker: one .gguf file (or every part of a split one), or
// model.onnx + tokenizer.json + config.json. The files go to the engine's worker; nothing is
// uploaded anywhere.
import { WorkerError, type EngineClient } from "./client";
import { isCached, modelFiles, SUPPORTED_ARCHITECTURES, SUPPORTED_WEIGHT_TYPES } from "decoding-playground";
import { headError, refusal, urlSource, type SizedFile } from "./modelurl";
import { modelUrls, type LoadPhase, type ModelFormat, type ModelInfo, type ModelSource } from "./protocol";

/** The model families better known than their architecture's name, for the drop zone's help. */
const FAMILIES: Partial<Record<string, string>> = { llama: "incl. Llama 3, SmolLM2, TinyLlama" };

/** "a, b or c". */
const orList = (items: readonly string[]) => (items.length > 1 ? `${items.slice(0, -1).join(", ")} or ${items.at(-1)}` : items.join(""));

/** The drop zone's help: what loads, from the engine's own lists of architectures and weight types. */
export function dropzoneHelp(): string {
  const architectures = SUPPORTED_ARCHITECTURES.map((a) => (FAMILIES[a] ? `${a} (${FAMILIES[a]})` : a)).join(", ");
  return `The files stay on this computer; nothing is uploaded. A GGUF (or every part of a split one) must be one of ${architectures}, with ${orList(SUPPORTED_WEIGHT_TYPES)} weights (llama.cpp's Q4_K_M, Q5_K_M, Q6_K, Q8_0, Q4_0 and Q5_0 files among them); an ONNX model needs the signature of models/build_model.py.`;
}

/** "135M", "1.2B", "107k": a parameter count as model cards write it. */
export function formatCount(n: number): string {
  const [value, unit] = n >= 1e9 ? [n / 1e9, "B"] : n >= 1e6 ? [n / 1e6, "M"] : n >= 1e3 ? [n / 1e3, "k"] : [n, ""];
  return `${Number(value.toPrecision(value < 10 ? 2 : 3))}${unit}`;
}

/** What the files say the model is: "llama · 135M parameters · byte-level BPE (smollm) tokenizer". */
export function describeModel(info: Pick<ModelInfo, "architecture" | "parameterCount" | "tokenizerKind">): string {
  const parts = [info.architecture, info.parameterCount === null ? null : `${formatCount(info.parameterCount)} parameters`, info.tokenizerKind && `${info.tokenizerKind} tokenizer`];
  return parts.filter((p) => p).join(" · ");
}

/** The KV cache's cost, which grows with every token of a sequence: what the context cap bounds. */
export function kvText(info: Pick<ModelInfo, "kvCacheBytesPerToken" | "contextLength">): string {
  const kv = info.kvCacheBytesPerToken;
  return kv ? ` (KV cache ${formatBytes(kv)} a token, ${formatBytes(kv * info.contextLength)} full)` : "";
}

/** Decimal units, as a file manager or a download dialog shows them. */
export function formatBytes(bytes: number): string {
  if (bytes < 1e3) return `${bytes} B`;
  if (bytes < 1e6) return `${Math.round(bytes / 1e3)} kB`;
  const mb = bytes / 1e6;
  return `${mb.toFixed(mb < 10 ? 1 : 0)} MB`;
}

export type ServerModel = "smollm2" | "tiny";
type UrlSource = Extract<ModelSource, { kind: "url" }>;

/** The n-gram stores the server has for SmolLM2 (`?ngrams=`): the default one includes the
 *  Brown corpus, whose licence allows non-commercial use only (models/ngrams/README.md). */
export const NGRAM_STORES = {
  default: { path: "models/ngrams/default.ngram", corpus: "Brown, non-commercial use only, + Shakespeare + Milton" },
  "public-domain": { path: "models/ngrams/public-domain.ngram", corpus: "Shakespeare + Milton, public domain" },
} as const;
export type NgramChoice = keyof typeof NGRAM_STORES;

/** Which corpus a server model's n-gram store was built from, or null for other stores. */
export function storeCorpus(source: UrlSource | null): string | null {
  const store = Object.values(NGRAM_STORES).find((s) => source?.ngrams?.endsWith(`/${s.path}`));
  return store?.corpus ?? null;
}

/** A model on the server: its GGUF by default, or its ONNX files (`?format=onnx`). */
export function serverModel(which: ServerModel, format: ModelFormat = "gguf", store: NgramChoice = "default"): UrlSource {
  const base = new URL(import.meta.env.BASE_URL, location.href);
  const url = (path: string) => new URL(path, base).href;
  const dir = which === "tiny" ? "models/tiny" : "models/smollm2-135m";
  const name = which === "tiny" ? "tiny test model (random weights)" : "SmolLM2-135M-Instruct";
  const ngrams = url(which === "tiny" ? "models/tiny/ngrams.bin" : NGRAM_STORES[store].path);
  const param = which === "tiny" ? "tiny" : null;
  return format === "gguf"
    ? { kind: "url", format, name, gguf: url(`${dir}/model.gguf`), ngrams, param }
    : { kind: "url", format, name, onnx: url(`${dir}/model.onnx`), tokenizer: url(`${dir}/tokenizer.json`), config: url(`${dir}/config.json`), ngrams, param };
}

/** One file a URL model's load fetches: its size (null when the server does not say), why a
 *  HEAD request for it failed, and whether the browser cache already holds this version of it. */
export interface ServerFile extends SizedFile {
  cached: boolean;
}

/** The files a URL model's load fetches, its n-gram store included, sized with HEAD requests:
 *  what it will download, before any of it is. */
export async function probeFiles(source: UrlSource, fetchFn: typeof fetch = fetch, cached = isCached): Promise<ServerFile[]> {
  const files = [...modelUrls(source), ...(source.ngrams ? [{ file: "n-gram store", url: source.ngrams }] : [])];
  return Promise.all(
    files.map(async ({ file, url }): Promise<ServerFile> => {
      let head: Response;
      try {
        head = await fetchFn(url, { method: "HEAD", cache: "no-store" });
      } catch {
        return { file, bytes: null, cached: false, error: headError(null) };
      }
      if (!head.ok) return { file, bytes: null, cached: false, error: headError(head) };
      const length = Number(head.headers.get("Content-Length"));
      return { file, bytes: Number.isFinite(length) && length > 0 ? length : null, cached: await cached(url, head), error: null };
    }),
  );
}

/** The model's own files (probeFiles lists them before the n-gram store): what must fit. */
const modelFilesOf = (source: UrlSource, files: readonly ServerFile[]) => files.slice(0, modelUrls(source).length);

/** The files' total size, or null when one is unknown. */
export function sumBytes(files: readonly ServerFile[]): number | null {
  return files.every((f) => f.bytes !== null) ? files.reduce((sum, f) => sum + (f.bytes ?? 0), 0) : null;
}

/** What a load would download: the cached files cost nothing. */
export const bytesToFetch = (files: readonly ServerFile[]) => sumBytes(files.filter((f) => !f.cached));

// Under 20 MB to fetch, the page loads the model as it opens: the tiny test model (0.1 MB) or
// any model already in the browser cache (nothing) would only wait for a pointless click.
// SmolLM2 (122 MB with its n-gram store) waits for one, so that opening the page on a phone or
// a metered line downloads nothing big unasked. An unknown size waits too.
export const AUTO_LOAD_BYTES = 20e6;

export function autoLoads(files: readonly ServerFile[]): boolean {
  const bytes = bytesToFetch(files);
  return bytes !== null && bytes < AUTO_LOAD_BYTES;
}

/** What was dropped, when it makes a model: one .gguf file, or model.onnx, tokenizer.json and
 *  config.json (the package's `modelFiles` picks them, and says what is missing). */
export function filesToSource(files: readonly File[]): ModelSource {
  const picked = modelFiles(files);
  return { kind: "files", format: picked.format, name: (picked.format === "gguf" ? picked.gguf : picked.onnx).name, files: [...files] };
}

/** "WebGPU · <adapter>" (with "fallback adapter" for a software one), or "CPU · wasm SIMD128"
 *  with its threads, with the reason when the GPU or more threads were wanted but are not used. */
export function backendLabel(backend: ModelInfo["backend"], threads: ModelInfo["threads"] = null): string {
  if (!backend) return `CPU · wasm SIMD128${threadsText(threads)}`;
  if (backend.backend === "webgpu") {
    const adapter = backend.adapter;
    const name = adapter?.name ? adapter.name : "browser adapter";
    return `WebGPU · ${name}${adapter?.fallback ? " (fallback adapter: software, slow)" : ""}`;
  }
  return `CPU · wasm SIMD128${threadsText(threads)}${backend.fallbackReason ? ` (not WebGPU: ${backend.fallbackReason})` : ""}`;
}

/** " · 2 threads", or " · 1 thread" with why, when more were asked. */
export function threadsText(threads: ModelInfo["threads"]): string {
  if (!threads) return "";
  const count = `${threads.threads} thread${threads.threads === 1 ? "" : "s"}`;
  return ` · ${count}${threads.note ? ` (${threads.note})` : ""}`;
}

/** What `auto` on WebGPU costs besides the GPU's memory: the CPU's copy of the weights, kept in
 *  the page's memory so that a GPU failure can move the run to the CPU. */
export function fallbackCopyText(backend: ModelInfo["backend"]): string {
  const bytes = backend?.fallbackWeightBytes;
  return bytes ? ` (+ ${formatBytes(bytes)} of memory: a CPU copy of the weights, for a fallback)` : "";
}

/** What an ONNX model's weight types cost in the page (tract in wasm), measured on SmolLM2
 *  against its Q4_1 GGUF: `node tests/bench/onnx_variants.mjs --wasm` (docs/benchmarks.md). */
const ONNX_COSTS: Record<string, string> = {
  F32: "widened to f32: decode ~2× slower than the GGUF, in 4× its memory",
  // 1.3× with a 4-bit embedding (GatherBlockQuantized), 2× with an f32 one.
  Q4_0: "decode ~4× slower than the GGUF in wasm, in 1.3–2× its memory",
  INT8: "decode ~4× slower than the GGUF in wasm, in 2× its memory",
  F16: "f16 arithmetic in wasm: decode ~10× slower than the GGUF; prefer a GGUF",
};

/** "GGUF · Q4_1 / Q8_0 blocks", or the format alone when the weight types are not known. */
export function formatLabel(info: Pick<ModelInfo, "format" | "weightTypes">): string {
  const format = info.format.toUpperCase();
  if (!info.weightTypes?.length) return format;
  const cost = info.format === "onnx" ? ONNX_COSTS[info.weightTypes[0] ?? ""] : undefined;
  return `${format} · ${info.weightTypes.join(" / ")}${info.format === "gguf" ? " blocks" : ""}${cost ? ` (${cost})` : ""}`;
}

export class ModelPanel {
  private readonly status: HTMLElement;
  private readonly progress: HTMLProgressElement;
  private readonly progressText: HTMLElement;
  private readonly error: HTMLElement;
  private readonly loadButton: HTMLButtonElement;
  private readonly fileSizes = new Map<string, [number, number | null]>();
  info: ModelInfo | null = null;
  /** The URL model that loaded last (null for dropped files): what a restarted engine reloads.
   *  Set once a load succeeds: a model that crashed the engine must not be loaded again. */
  lastUrl: UrlSource | null = null;
  onLoaded: (info: ModelInfo) => void = () => {};
  onLoading: () => void = () => {};
  /** The format the "Load" buttons fetch (`?format=onnx` switches them to the ONNX files). */
  serverFormat: ModelFormat = "gguf";
  /** The store the "Load" buttons fetch with SmolLM2 (`?ngrams=public-domain`). */
  serverNgrams: NgramChoice = "default";
  private loadSeq = 0;

  constructor(root: HTMLElement, private readonly client: EngineClient) {
    this.status = root.querySelector("#model-status") as HTMLElement;
    this.progress = root.querySelector("#load-progress") as HTMLProgressElement;
    this.progressText = root.querySelector("#load-text") as HTMLElement;
    this.error = root.querySelector("#model-error") as HTMLElement;
    this.loadButton = root.querySelector("#load-model") as HTMLButtonElement;
    const input = root.querySelector("#model-files") as HTMLInputElement;
    input.addEventListener("change", () => {
      void this.loadFiles([...(input.files ?? [])]);
      input.value = "";
    });
    (root.querySelector("#dropzone-help") as HTMLElement).textContent = dropzoneHelp();
    const urlForm = root.querySelector("#model-url-form") as HTMLFormElement;
    const urlInput = root.querySelector("#model-url") as HTMLInputElement;
    urlForm.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.loadUrl(urlInput.value);
    });
    const zone = root.querySelector("#dropzone") as HTMLElement;
    zone.addEventListener("dragover", (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      void this.loadFiles([...(e.dataTransfer?.files ?? [])]);
    });
    // The drop zone is a keyboard stop too: Enter or Space opens the file picker.
    zone.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        input.click();
      }
    });
    for (const button of root.querySelectorAll<HTMLButtonElement>("[data-load]")) {
      button.addEventListener("click", () => void this.load(serverModel(button.dataset.load === "tiny" ? "tiny" : "smollm2", this.serverFormat, this.serverNgrams)));
    }
  }

  showError(message: string | null): void {
    this.error.textContent = message ?? "";
    this.error.hidden = message === null;
  }

  /** A model URL the visitor typed: their click is the consent; it is sized, then loaded. */
  async loadUrl(text: string): Promise<void> {
    let source: UrlSource;
    try {
      source = urlSource(text);
    } catch (error) {
      this.showError(`Cannot load this URL: ${(error as Error).message}`);
      return;
    }
    await this.load(source);
  }

  async loadFiles(files: File[]): Promise<void> {
    try {
      await this.load(filesToSource(files));
    } catch (error) {
      this.showError(`Cannot use these files: ${(error as Error).message}`);
    }
  }

  /** The page's first model: its name and download size with a "Load model" button, or, when
   *  it costs little to fetch (see AUTO_LOAD_BYTES), the model itself. A model that a link
   *  names (`fromLink`) always waits for the click: a link is someone else's choice. */
  async offer(source: UrlSource, fromLink = false): Promise<void> {
    const seq = ++this.loadSeq;
    this.status.textContent = `Checking the size of ${source.name}…`;
    const files = await probeFiles(source);
    // A dropped model or a Load button came first.
    if (seq !== this.loadSeq) return;
    const refused = refusal(source, modelFilesOf(source, files));
    if (refused) {
      this.status.dataset.state = "unloaded";
      this.status.textContent = `${source.name} was not loaded: load another model below.`;
      this.showError(`Cannot load ${source.name}: ${refused}`);
      return;
    }
    if (!fromLink && autoLoads(files)) return this.load(source, files);
    const bytes = bytesToFetch(files);
    const list = files.map((f) => `${f.file}${f.bytes === null ? "" : ` ${formatBytes(f.bytes)}`}`).join(" + ");
    this.status.dataset.state = "unloaded";
    const what =
      bytes === null
        ? `${source.name} (${list}): the server does not say how big it is.`
        : `${source.name}: ${formatBytes(bytes)} to download (${list}), then kept in this browser's cache.`;
    const origin = new URL(source.format === "gguf" ? source.gguf : source.onnx).origin;
    this.status.textContent = fromLink ? `This link asks to load a model from ${origin}. ${what} Load it only if you trust where it comes from.` : what;
    this.loadButton.textContent = bytes === null ? "Load model" : `Load model (${formatBytes(bytes)})`;
    this.loadButton.onclick = () => void this.load(source, files);
    this.loadButton.hidden = false;
  }

  /** Loads `source`; a server model is first sized (unless `files` says its sizes already). */
  async load(source: ModelSource, files?: ServerFile[]): Promise<void> {
    const seq = ++this.loadSeq;
    this.loadButton.hidden = true;
    this.showError(null);
    this.fileSizes.clear();
    this.progress.hidden = false;
    this.progress.removeAttribute("value");
    this.status.dataset.state = "loading";
    const loading = (what: string) => {
      this.progressText.textContent = `Loading ${what}…`;
      this.status.textContent = this.info ? `${this.info.name} is loaded; loading ${what}…` : `Loading ${what}…`;
    };
    loading(source.name);
    this.onLoading();
    try {
      if (source.kind === "url") {
        // Say what is about to be downloaded before the download starts (a cached copy is only
        // read, but the size is still what the model weighs), or why it will not be.
        const sized = files ?? (await probeFiles(source));
        if (seq !== this.loadSeq) return;
        const refused = refusal(source, modelFilesOf(source, sized));
        if (refused) throw new Error(refused);
        const size = sumBytes(sized);
        const toFetch = bytesToFetch(sized);
        loading(`${source.name} (${sized.map((f) => f.file).join(" + ")}${size === null ? "" : `, ${formatBytes(size)}`})`);
        if (toFetch === 0) this.progressText.textContent = "Reading from the browser cache…";
        else if (toFetch !== null) this.progressText.textContent = `${formatBytes(toFetch)} to fetch: downloaded once, then read from the browser cache…`;
      }
      const info = await this.client.load(source, (phase, loaded, total, file) => this.onProgress(phase, loaded, total, file));
      this.lastUrl = source.kind === "url" ? source : null;
      this.info = info;
      this.progress.hidden = true;
      this.progressText.textContent = "";
      this.status.dataset.state = "ready";
      this.status.textContent = this.readyText(info);
      this.onLoaded(info);
    } catch (error) {
      // A newer load took over: it reports for itself.
      if (error instanceof WorkerError && error.kind === "superseded") return;
      this.progress.hidden = true;
      this.progressText.textContent = "";
      // The worker keeps the previous model when a new one fails.
      this.status.dataset.state = this.info ? "ready" : "error";
      this.status.textContent = this.info ? this.readyText(this.info) : "No model loaded.";
      this.showError(`Could not load ${source.name}: ${(error as Error).message}${this.info ? ` (still using ${this.info.name})` : ""}`);
      if (this.info) this.onLoaded(this.info);
    }
  }

  private readyText(info: ModelInfo): string {
    const store = info.ngramTokens ? `${info.ngramTokens.toLocaleString("en")} tokens` : "none";
    const described = describeModel(info);
    return `${info.name}: ready in ${(info.loadMs / 1000).toFixed(1)} s (${formatBytes(info.bytes)}${info.fromCache ? ", from the browser cache" : ""})${described ? ` · ${described}` : ""} · ${formatLabel(info)} · ${backendLabel(info.backend, info.threads)}${fallbackCopyText(info.backend)} · vocabulary ${info.vocabSize} · context ${info.contextLength}${kvText(info)} · n-gram store ${store}`;
  }

  private onProgress(phase: LoadPhase, loaded: number, total: number | null, file: string): void {
    if (phase === "compile" || phase === "ngrams") {
      this.progress.removeAttribute("value");
      this.progressText.textContent = phase === "compile" ? "Compiling the model (tract optimises the graph; this takes a few seconds)…" : "Loading the n-gram store…";
      return;
    }
    this.fileSizes.set(file, [loaded, total]);
    const sizes = [...this.fileSizes.values()];
    const done = sizes.reduce((sum, [l]) => sum + l, 0);
    const all = sizes.every(([, t]) => t !== null) ? sizes.reduce((sum, [, t]) => sum + (t ?? 0), 0) : null;
    if (all) {
      this.progress.max = all;
      this.progress.value = done;
    }
    const verb = phase === "cache" ? "Reading from the browser cache" : "Downloading";
    this.progressText.textContent = `${verb}: ${formatBytes(done)}${all ? ` of ${formatBytes(all)}` : ""}`;
    this.progressText.dataset.phase = phase;
  }
}
