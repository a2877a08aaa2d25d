// The model section: load the default model (progress: bytes fetched, then compiling), or the
// user's own model.onnx + tokenizer.json + config.json by drag and drop or file picker. The
// files are read here and handed to the worker; nothing is uploaded anywhere.
import { WorkerError, type EngineClient } from "./client";
import type { LoadPhase, ModelInfo, ModelSource } from "./protocol";

const MB = 1024 * 1024;
const mb = (bytes: number) => `${(bytes / MB).toFixed(bytes < 10 * MB ? 1 : 0)} MB`;

export function serverModel(which: "smollm2" | "tiny"): ModelSource {
  const base = new URL(import.meta.env.BASE_URL, location.href);
  const url = (path: string) => new URL(path, base).href;
  return which === "tiny"
    ? {
        kind: "url",
        name: "tiny test model (random weights)",
        onnx: url("models/tiny/model.onnx"),
        tokenizer: url("models/tiny/tokenizer.json"),
        config: url("models/tiny/config.json"),
        ngrams: url("models/tiny/ngrams.bin"),
      }
    : {
        kind: "url",
        name: "SmolLM2-135M-Instruct",
        onnx: url("models/smollm2-135m/model.onnx"),
        tokenizer: url("models/smollm2-135m/tokenizer.json"),
        config: url("models/smollm2-135m/config.json"),
        ngrams: url("models/ngrams/default.ngram"),
      };
}

/** Picks model.onnx, tokenizer.json and config.json out of what was dropped. */
export async function filesToSource(files: readonly File[]): Promise<ModelSource> {
  const onnx = files.find((f) => f.name.toLowerCase().endsWith(".onnx"));
  const json = files.filter((f) => f.name.toLowerCase().endsWith(".json"));
  const tokenizer = json.find((f) => f.name.toLowerCase().includes("tokenizer"));
  const config = json.find((f) => f.name.toLowerCase().includes("config") && !f.name.toLowerCase().includes("tokenizer"));
  const missing = [!onnx && "a .onnx model", !tokenizer && "tokenizer.json", !config && "config.json"].filter(Boolean);
  if (!onnx || !tokenizer || !config) {
    // The wasm API takes the dimensions and context length from config.json: it is required.
    throw new Error(`missing ${missing.join(" and ")}: drop model.onnx, tokenizer.json and config.json together`);
  }
  return {
    kind: "files",
    name: onnx.name,
    onnx: await onnx.arrayBuffer(),
    tokenizer: await tokenizer.arrayBuffer(),
    config: await config.text(),
  };
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
      button.addEventListener("click", () => void this.load(serverModel(button.dataset.load === "tiny" ? "tiny" : "smollm2")));
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
    this.showError(null);
    this.fileSizes.clear();
    this.progress.hidden = false;
    this.progress.removeAttribute("value");
    this.progressText.textContent = `Loading ${source.name}…`;
    this.status.dataset.state = "loading";
    this.status.textContent = this.info ? `${this.info.name} is loaded; loading ${source.name}…` : `Loading ${source.name}…`;
    this.onLoading();
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
    return `${info.name}: ready in ${(info.loadMs / 1000).toFixed(1)} s (${mb(info.bytes)}${info.fromCache ? ", from the browser cache" : ""}) · vocabulary ${info.vocabSize} · context ${info.contextLength} · n-gram store ${store}`;
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
    this.progressText.textContent = `${verb}: ${mb(done)}${all ? ` of ${mb(all)}` : ""}`;
    this.progressText.dataset.phase = phase;
  }
}
