// The model section: load the default model (first its size, then progress: bytes fetched, then
// compiling), or the user's own model by drag and drop or file picker: one .gguf file, or
// model.onnx + tokenizer.json + config.json. The files are read here and handed to the worker;
// nothing is uploaded anywhere.
import { WorkerError, type EngineClient } from "./client";
import { modelUrls, type LoadPhase, type ModelFormat, type ModelInfo, type ModelSource } from "./protocol";

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

/** A model on the server: its GGUF by default, or its ONNX files (`?format=onnx`). */
export function serverModel(which: ServerModel, format: ModelFormat = "gguf"): ModelSource {
  const base = new URL(import.meta.env.BASE_URL, location.href);
  const url = (path: string) => new URL(path, base).href;
  const dir = which === "tiny" ? "models/tiny" : "models/smollm2-135m";
  const name = which === "tiny" ? "tiny test model (random weights)" : "SmolLM2-135M-Instruct";
  const ngrams = url(which === "tiny" ? "models/tiny/ngrams.bin" : "models/ngrams/default.ngram");
  return format === "gguf"
    ? { kind: "url", format, name, gguf: url(`${dir}/model.gguf`), ngrams }
    : { kind: "url", format, name, onnx: url(`${dir}/model.onnx`), tokenizer: url(`${dir}/tokenizer.json`), config: url(`${dir}/config.json`), ngrams };
}

/** The total size of a server model's files (HEAD requests), or null when one is unknown. */
export async function downloadSize(source: Extract<ModelSource, { kind: "url" }>, fetchFn: typeof fetch = fetch): Promise<number | null> {
  try {
    const sizes = await Promise.all(
      modelUrls(source).map(async ({ url }) => {
        const head = await fetchFn(url, { method: "HEAD", cache: "no-store" });
        const length = Number(head.headers.get("Content-Length"));
        return head.ok && Number.isFinite(length) && length > 0 ? length : null;
      }),
    );
    return sizes.every((n) => n !== null) ? sizes.reduce((a: number, b) => a + (b ?? 0), 0) : null;
  } catch {
    return null;
  }
}

/** Picks the model out of what was dropped: one .gguf file, or model.onnx, tokenizer.json and
 *  config.json. */
export async function filesToSource(files: readonly File[]): Promise<ModelSource> {
  const lower = (f: File) => f.name.toLowerCase();
  const ggufs = files.filter((f) => lower(f).endsWith(".gguf"));
  if (ggufs.length > 1) throw new Error(`${ggufs.length} .gguf files: drop one (it holds the whole model)`);
  const [gguf] = ggufs;
  // A GGUF holds its tokenizer and dimensions: anything dropped with it is not needed.
  if (gguf) return { kind: "files", format: "gguf", name: gguf.name, gguf: await gguf.arrayBuffer() };
  const onnx = files.find((f) => lower(f).endsWith(".onnx"));
  const json = files.filter((f) => lower(f).endsWith(".json"));
  const tokenizer = json.find((f) => lower(f).includes("tokenizer"));
  const config = json.find((f) => lower(f).includes("config") && !lower(f).includes("tokenizer"));
  const missing = [!onnx && "a .onnx model", !tokenizer && "tokenizer.json", !config && "config.json"].filter(Boolean);
  if (!onnx || !tokenizer || !config) {
    // The wasm API takes the dimensions and context length from config.json: it is required.
    throw new Error(`missing ${missing.join(" and ")}: drop one .gguf file, or model.onnx, tokenizer.json and config.json together`);
  }
  return {
    kind: "files",
    format: "onnx",
    name: onnx.name,
    onnx: await onnx.arrayBuffer(),
    tokenizer: await tokenizer.arrayBuffer(),
    config: await config.text(),
  };
}

/** "WebGPU · <adapter>" (with "fallback adapter" for a software one), or "CPU · wasm SIMD128",
 *  with the reason when the GPU was wanted but is not used. */
export function backendLabel(backend: ModelInfo["backend"]): string {
  if (!backend) return "CPU · wasm SIMD128";
  if (backend.backend === "webgpu") {
    const adapter = backend.adapter;
    const name = adapter?.name ? adapter.name : "browser adapter";
    return `WebGPU · ${name}${adapter?.fallback ? " (fallback adapter: software, slow)" : ""}`;
  }
  return `CPU · wasm SIMD128${backend.fallbackReason ? ` (not WebGPU: ${backend.fallbackReason})` : ""}`;
}

/** "GGUF · Q4_1 / Q8_0 blocks", or the format alone when the weight types are not known. */
export function formatLabel(info: Pick<ModelInfo, "format" | "weightTypes">): string {
  const format = info.format.toUpperCase();
  return info.weightTypes?.length ? `${format} · ${info.weightTypes.join(" / ")}${info.format === "gguf" ? " blocks" : ""}` : format;
}

export class ModelPanel {
  private readonly status: HTMLElement;
  private readonly progress: HTMLProgressElement;
  private readonly progressText: HTMLElement;
  private readonly error: HTMLElement;
  private readonly fileSizes = new Map<string, [number, number | null]>();
  info: ModelInfo | null = null;
  onLoaded: (info: ModelInfo) => void = () => {};
  onLoading: () => void = () => {};
  /** The format the "Load" buttons fetch (`?format=onnx` switches them to the ONNX files). */
  serverFormat: ModelFormat = "gguf";
  private loadSeq = 0;

  constructor(root: HTMLElement, private readonly client: EngineClient) {
    this.status = root.querySelector("#model-status") as HTMLElement;
    this.progress = root.querySelector("#load-progress") as HTMLProgressElement;
    this.progressText = root.querySelector("#load-text") as HTMLElement;
    this.error = root.querySelector("#model-error") as HTMLElement;
    const input = root.querySelector("#model-files") as HTMLInputElement;
    input.addEventListener("change", () => {
      void this.loadFiles([...(input.files ?? [])]);
      input.value = "";
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
      button.addEventListener("click", () => void this.load(serverModel(button.dataset.load === "tiny" ? "tiny" : "smollm2", this.serverFormat)));
    }
  }

  showError(message: string | null): void {
    this.error.textContent = message ?? "";
    this.error.hidden = message === null;
  }

  async loadFiles(files: File[]): Promise<void> {
    try {
      await this.load(await filesToSource(files));
    } catch (error) {
      this.showError(`Cannot use these files: ${(error as Error).message}`);
    }
  }

  async load(source: ModelSource): Promise<void> {
    const seq = ++this.loadSeq;
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
    if (source.kind === "url") {
      // Say what is about to be downloaded before the download starts (a cached copy is only
      // read, but the size is still what the model weighs).
      const size = await downloadSize(source);
      if (seq !== this.loadSeq) return;
      const files = modelUrls(source).map((f) => f.file).join(" + ");
      loading(`${source.name} (${files}${size === null ? "" : `, ${formatBytes(size)}`})`);
      if (size !== null) this.progressText.textContent = `${formatBytes(size)} to fetch: downloaded once, then read from the browser cache…`;
    }
    try {
      const info = await this.client.load(source, (phase, loaded, total, file) => this.onProgress(phase, loaded, total, file));
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
    return `${info.name}: ready in ${(info.loadMs / 1000).toFixed(1)} s (${formatBytes(info.bytes)}${info.fromCache ? ", from the browser cache" : ""}) · ${formatLabel(info)} · ${backendLabel(info.backend)} · vocabulary ${info.vocabSize} · context ${info.contextLength}${kvText(info)} · n-gram store ${store}`;
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
