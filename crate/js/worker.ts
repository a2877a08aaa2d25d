// The engine's side of the engine worker: `serveModelWorker()` runs in a Web Worker (or a Node
// worker thread) and answers the page's `WorkerModel` (worker-model.ts). Building a model blocks
// its thread for seconds and a generation keeps it busy, so a page should not run them itself.
// One worker holds one model. The messages are protocol.ts's.
import init, { Sampler, ignoredSettings, onEngineFailure, type Model } from "./decoding_playground.js";
import { abortError, codedError } from "./fetcher.js";
import { loadModel, type LoadProgress } from "./load.js";
import {
  CALLS, PROPERTIES, serializeError,
  type AnsweredRequest, type ModelProperties, type PostedSource, type ResultOf, type WorkerReply, type WorkerRequest,
} from "./protocol.js";

/** What `serveModelWorker` talks through: the worker's global scope, or in a Node worker thread
 * `parentPort` (worker_threads). */
export interface WorkerScope {
  postMessage(message: WorkerReply): void;
  addEventListener(type: "message", listener: (event: { data: WorkerRequest }) => void): void;
  addEventListener(type: "unhandledrejection", listener: (event: { reason: unknown }) => void): void;
}

/** The model's properties; one that cannot be read (an engine that has failed) is left out,
 * so that a reply never fails on them. */
function snapshot(model: Model): ModelProperties {
  const properties: Record<string, unknown> = {};
  for (const name of PROPERTIES) {
    try {
      properties[name] = model[name];
    } catch {}
  }
  return properties as ModelProperties;
}

/** Serves one model to the page that started this worker. Call it once, in the worker; in a
 * Node worker thread, as `serveModelWorker(parentPort)`. */
export function serveModelWorker(scope: WorkerScope = globalThis as unknown as WorkerScope): void {
  const post = (message: WorkerReply) => scope.postMessage(message);
  // A panic ends the model whatever was running, even when nothing was: say so at once.
  const ready = init().then(() => onEngineFailure((error) => post({ type: "failed", error: serializeError(error) })));
  let model: Model | null = null;
  // Only the latest load may install its model; an earlier one still fetching is superseded.
  let latestLoad = 0;
  const runs = new Map<number, AbortController>();
  const reply = <R extends AnsweredRequest>(request: R, value: ResultOf<R>) =>
    post({ type: "result", id: request.id, value, properties: model && snapshot(model) });

  async function load(id: number, source: PostedSource, options: Extract<WorkerRequest, { type: "load" }>["options"]): Promise<void> {
    latestLoad = id;
    // A load cancels the running generation, as a new page would.
    for (const run of runs.values()) run.abort();
    const controller = new AbortController();
    runs.set(id, controller);
    const superseded = () => codedError("Superseded", "replaced by a later load");
    try {
      const onProgress = (progress: LoadProgress) => post({ type: "progress", id, progress });
      const loaded = await loadModel(source, { ...options, onProgress, signal: controller.signal }).catch((error: unknown) => {
        throw id !== latestLoad ? superseded() : error;
      });
      if (id !== latestLoad || controller.signal.aborted) {
        loaded.free();
        throw id !== latestLoad ? superseded() : abortError();
      }
      // The old model served until now, so a bad file leaves a working one.
      model?.free();
      model = loaded;
    } finally {
      runs.delete(id);
    }
  }

  async function handle(message: WorkerRequest): Promise<void> {
    const id = message.type === "abort" ? undefined : message.id;
    try {
      await ready;
      switch (message.type) {
        case "load":
          await load(message.id, message.source, message.options);
          return reply(message, null);
        case "generate": {
          const controller = new AbortController();
          runs.set(message.id, controller);
          try {
            await requireModel().generate(message.prompt, message.config, (step) => post({ type: "step", id: message.id, step }), controller.signal);
          } finally {
            runs.delete(message.id);
          }
          return reply(message, null);
        }
        case "abort":
          return runs.get(message.target)?.abort();
        case "set":
          requireModel().reusePrefix = message.value;
          return reply(message, null);
        case "call": {
          // Checked here too: a message may come from anything that holds the worker.
          if (!CALLS.includes(message.method)) throw codedError("InvalidInput", `the worker does not offer ${message.method}`);
          const target = requireModel();
          // TypeScript cannot pair a union's method with its own args; the request type does.
          const method = target[message.method] as (...args: unknown[]) => unknown;
          return reply(message, (await method.apply(target, message.args)) as ResultOf<typeof message>);
        }
        case "describeSampler": {
          const sampler = new Sampler(message.config);
          try {
            return reply(message, { stages: sampler.stages, ignoredSettings: sampler.ignoredSettings });
          } finally {
            sampler.free();
          }
        }
        case "ignoredSettings":
          return reply(message, ignoredSettings(message.config ?? {}));
      }
    } catch (error) {
      post({ type: "error", id, error: serializeError(error) });
    }
  }

  function requireModel(): Model {
    if (!model) throw codedError("InvalidInput", "no model is loaded in this worker");
    return model;
  }

  scope.addEventListener("message", (event) => void handle(event.data));
  // A trap outside any request (the engine's own tasks) still ends the model, visibly.
  scope.addEventListener("unhandledrejection", (event) => post({ type: "failed", error: serializeError(event.reason) }));
}
