// The page's side of the worker: promises for loads, inspections and runs, matched to the
// worker's replies by id. Should the worker die (a wasm trap leaves its instance unusable), a
// fresh one is started and every pending promise is rejected with the reason.
import type { BackendChoice, FromWorker, GenerateConfig, ScoredText, LoadPhase, ModelInfo, ModelSource, RunStats, Step, ToWorker } from "./protocol";

export interface RunOptions {
  reusePrefix?: boolean;
  chat?: boolean;
}

export class WorkerError extends Error {
  constructor(readonly kind: string, message: string) {
    super(message);
  }
}

export interface RunResult {
  steps: Step[];
  stats: RunStats | null;
  prefillMs: number;
  cancelled: boolean;
}

interface PendingRun {
  steps: Step[];
  prefillMs: number;
  onStep: (step: Step, elapsedMs: number) => void;
  resolve: (result: RunResult) => void;
  reject: (error: Error) => void;
}

type Progress = (phase: LoadPhase, loaded: number, total: number | null, file: string) => void;

export class EngineClient {
  private worker: Worker;
  private nextId = 1;
  private runs = new Map<number, PendingRun>();
  private inspections = new Map<number, (reply: { stages: string[]; ignored: string[]; error: string | null }) => void>();
  private scorings = new Map<number, { resolve: (result: ScoredText) => void; reject: (e: Error) => void }>();
  private loading: { resolve: (info: ModelInfo) => void; reject: (e: Error) => void; progress: Progress } | null = null;
  /** Errors not tied to a request (n-gram store, crash) and n-gram store changes. */
  onNotice: (message: FromWorker) => void = () => {};
  onRestart: (reason: string) => void = () => {};
  /** The backend every load asks for (`?backend=cpu|webgpu` on the page). */
  backend: BackendChoice = "auto";
  /** The context every GGUF load is capped at (`?ctx=N` on the page), to bound KV memory. */
  contextLength: number | null = null;

  constructor(private readonly spawn: () => Worker) {
    this.worker = this.start();
  }

  private start(): Worker {
    const worker = this.spawn();
    worker.addEventListener("message", (e: MessageEvent<FromWorker>) => this.receive(e.data));
    worker.addEventListener("error", (e) => {
      e.preventDefault();
      this.crash(e.message || "the worker failed");
    });
    return worker;
  }

  private crash(reason: string): void {
    this.worker.terminate();
    const error = new WorkerError("crash", `the engine stopped (${reason}); it was restarted: load a model again`);
    for (const run of this.runs.values()) run.reject(error);
    this.runs.clear();
    for (const reply of this.inspections.values()) reply({ stages: [], ignored: [], error: error.message });
    this.inspections.clear();
    for (const scoring of this.scorings.values()) scoring.reject(error);
    this.scorings.clear();
    this.loading?.reject(error);
    this.loading = null;
    this.worker = this.start();
    this.onRestart(reason);
  }

  private send(message: ToWorker, transfer: Transferable[] = []): void {
    this.worker.postMessage(message, transfer);
  }

  private receive(message: FromWorker): void {
    switch (message.type) {
      case "progress":
        this.loading?.progress(message.phase, message.loaded, message.total, message.file);
        return;
      case "loaded":
        this.loading?.resolve(message.info);
        this.loading = null;
        return;
      case "inspected":
        this.inspections.get(message.requestId)?.(message);
        this.inspections.delete(message.requestId);
        return;
      case "started": {
        const run = this.runs.get(message.runId);
        if (run) run.prefillMs = message.prefillMs;
        return;
      }
      case "step": {
        const run = this.runs.get(message.runId);
        run?.steps.push(message.step);
        run?.onStep(message.step, message.elapsedMs);
        return;
      }
      case "done": {
        const run = this.runs.get(message.runId);
        this.runs.delete(message.runId);
        run?.resolve({ steps: run.steps, stats: message.stats, prefillMs: run.prefillMs, cancelled: false });
        return;
      }
      case "scored":
        this.scorings.get(message.requestId)?.resolve(message.result);
        this.scorings.delete(message.requestId);
        return;
      case "error": {
        if (message.kind === "crash") return this.crash(message.message);
        const scoring = message.requestId === undefined ? undefined : this.scorings.get(message.requestId);
        if (scoring && message.requestId !== undefined) {
          this.scorings.delete(message.requestId);
          scoring.reject(new WorkerError(message.kind, message.message));
          return;
        }
        const run = message.runId === undefined ? undefined : this.runs.get(message.runId);
        if (run && message.runId !== undefined) {
          this.runs.delete(message.runId);
          if (message.kind === "cancelled") run.resolve({ steps: run.steps, stats: null, prefillMs: run.prefillMs, cancelled: true });
          else run.reject(new WorkerError(message.kind, message.message));
          return;
        }
        if (message.kind === "load" && this.loading) {
          this.loading.reject(new WorkerError("load", message.message));
          this.loading = null;
          return;
        }
        this.onNotice(message);
        return;
      }
      case "ready":
      case "ngrams":
        this.onNotice(message);
        return;
    }
  }

  load(source: ModelSource, progress: Progress): Promise<ModelInfo> {
    this.loading?.reject(new WorkerError("superseded", "replaced by another load"));
    return new Promise((resolve, reject) => {
      this.loading = { resolve, reject, progress };
      // The user's files move to the worker rather than being copied.
      const transfer = source.kind === "url" ? [] : source.format === "gguf" ? [source.gguf] : [source.onnx, source.tokenizer];
      this.send({ type: "load", source, backend: this.backend, contextLength: this.contextLength }, transfer);
    });
  }

  inspect(config: GenerateConfig): Promise<{ stages: string[]; ignored: string[]; error: string | null }> {
    const requestId = this.nextId++;
    return new Promise((resolve) => {
      this.inspections.set(requestId, resolve);
      this.send({ type: "inspect", requestId, config });
    });
  }

  /** Scores `text` after `context`, teacher-forced; with `chat`, after the context as a user
   *  message in the model's chat template. */
  score(text: string, context: string, chat = false): Promise<ScoredText> {
    const requestId = this.nextId++;
    return new Promise((resolve, reject) => {
      this.scorings.set(requestId, { resolve, reject });
      this.send({ type: "score", requestId, text, context, chat });
    });
  }

  /** `reusePrefix`: feed only what follows the prefix shared with the previous call; `chat`:
   *  the prompt is a user message, laid out by the model's chat template. */
  run(prompt: string, config: GenerateConfig, onStep: (step: Step, elapsedMs: number) => void, options: RunOptions = {}): Promise<RunResult> {
    const runId = this.nextId++;
    return new Promise((resolve, reject) => {
      this.runs.set(runId, { steps: [], prefillMs: 0, onStep, resolve, reject });
      this.send({ type: "generate", runId, prompt, config, reusePrefix: options.reusePrefix ?? false, chat: options.chat ?? false });
    });
  }

  stop(): void {
    this.send({ type: "stop" });
  }

  buildNgrams(text: string, extend: boolean): void {
    this.send({ type: "ngrams", text, extend });
  }

  resetNgrams(): void {
    this.send({ type: "resetNgrams" });
  }
}
