// The engine's side of the engine worker: `serveModelWorker()` runs in a Web Worker (or a Node
// worker thread) and answers the page's `WorkerModel` (worker-model.ts). Building a model blocks
// its thread for seconds and a generation keeps it busy, so a page should not run them itself.
// One worker holds one model. The messages are protocol.ts's.
//
// The worker runs one of two builds of the engine: the threaded one (threads/, rayon's pool on
// Web Workers) when more than one thread is asked for and the page allows it (threads.ts), else
// the single-threaded one. The first request decides: a "start" names the threads.
import type { BeamStep, Model, Step } from "./decoding_playground.js";
import { abortError, codedError } from "./fetcher.js";
import { loadModel, type EngineBuild, type LoadProgress } from "./load.js";
import {
  CALLS, PROPERTIES, serializeError,
  type AnsweredRequest, type ModelProperties, type PostedSource, type ResultOf, type WorkerReply, type WorkerRequest,
} from "./protocol.js";
import { defaultThreads, threadsUnavailable, type EngineThreads } from "./threads.js";

/** A build of the engine: wasm-bindgen's bindings, with the threaded build's pool starter. */
type Build = EngineBuild
  & Pick<typeof import("./decoding_playground.js"), "Sampler" | "ignoredSettings" | "onEngineFailure">
  & { default(): Promise<unknown>; startThreads?: (threads: number) => Promise<number> };

/** The threaded build on `asked` threads where it can run, else the single-threaded one; the
 * note says why it runs on fewer threads than were asked. */
async function startBuild(asked: number | null): Promise<{ build: Build; threads: EngineThreads }> {
  // The pool's threads spin while a pass runs: more of them than cores would take turns.
  const cores = globalThis.navigator?.hardwareConcurrency ?? Infinity;
  const wanted = Math.min(asked ?? defaultThreads(), cores);
  const capped = asked !== null && asked > wanted ? `at most the ${cores} cores this browser reports` : null;
  let unavailable = wanted > 1 ? threadsUnavailable() : null;
  if (wanted > 1 && unavailable === null) {
    try {
      const build: Build = await import("./threads/decoding_playground.js");
      await build.default();
      // Before anything else runs: rayon's first use fixes its pool (tokenizers uses it too).
      const threads = await build.startThreads!(wanted);
      return { build, threads: { threaded: true, threads, note: capped } };
    } catch (error) {
      unavailable = `the threads could not start: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  const build: Build = await import("./decoding_playground.js");
  await build.default();
  return { build, threads: { threaded: false, threads: 1, note: unavailable ?? capped } };
}

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
  // Started by the first request, on the threads a "start" asks for (others take the default).
  let engine: ReturnType<typeof startBuild> | null = null;
  const start = (threads: number | null) =>
    startBuild(threads).then((started) => {
      // A panic ends the model whatever was running, even when nothing was: say so at once.
      started.build.onEngineFailure((error) => post({ type: "failed", error: serializeError(error) }));
      return started;
    });
  let model: Model | null = null;
  // Only the latest load may install its model; an earlier one still fetching is superseded.
  let latestLoad = 0;
  const runs = new Map<number, AbortController>();
  const reply = <R extends AnsweredRequest>(request: R, value: ResultOf<R>) =>
    post({ type: "result", id: request.id, value, properties: model && snapshot(model) });

  async function load(build: Build, id: number, source: PostedSource, options: Extract<WorkerRequest, { type: "load" }>["options"]): Promise<void> {
    latestLoad = id;
    // A load cancels the running generation, as a new page would.
    for (const run of runs.values()) run.abort();
    const controller = new AbortController();
    runs.set(id, controller);
    const superseded = () => codedError("Superseded", "replaced by a later load");
    try {
      const onProgress = (progress: LoadProgress) => post({ type: "progress", id, progress });
      const loaded = await loadModel(source, { ...options, onProgress, signal: controller.signal }, build).catch((error: unknown) => {
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
    engine ??= start(message.type === "start" ? message.threads : null);
    try {
      const { build, threads } = await engine;
      switch (message.type) {
        case "start":
          return reply(message, threads);
        case "load":
          await load(build, message.id, message.source, message.options);
          return reply(message, null);
        case "generate": {
          const controller = new AbortController();
          runs.set(message.id, controller);
          try {
            const onStep = (step: Step) => post({ type: "step", id: message.id, step });
            const model = requireModel();
            await (message.tokens
              ? model.fork(message.prompt, Uint32Array.from(message.tokens), message.config, onStep, controller.signal)
              : model.generate(message.prompt, message.config, onStep, controller.signal));
          } finally {
            runs.delete(message.id);
          }
          return reply(message, null);
        }
        case "beamSearch": {
          const controller = new AbortController();
          runs.set(message.id, controller);
          try {
            const onStep = (step: BeamStep) => post({ type: "step", id: message.id, step });
            return reply(message, await requireModel().beamSearch(message.prompt, message.config, onStep, controller.signal));
          } finally {
            runs.delete(message.id);
          }
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
          const sampler = new build.Sampler(message.config);
          try {
            return reply(message, { stages: sampler.stages, ignoredSettings: sampler.ignoredSettings });
          } finally {
            sampler.free();
          }
        }
        case "ignoredSettings":
          return reply(message, build.ignoredSettings(message.config ?? {}));
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
