// The engine in a Web Worker, behind the Model's async API: `serveModelWorker()` runs in the
// worker, `createWorkerModel(worker, source, options)` on the page. Building a model blocks its
// thread for seconds and a generation keeps it busy, so a page should not run them itself.
// Types: worker.d.ts.
//
// One worker holds one model. Requests carry ids; steps stream back as they are made. Errors
// cross as { name, message, code, field } and are rebuilt on the page, so they keep their code.
import init, { Sampler, ignoredSettings, onEngineFailure } from "./decoding_playground.js";
import { loadModel } from "./load.js";
import { abortError, codedError, readBody, throwIfAborted } from "./fetcher.js";

/** The Model methods the page may call through the worker, all answered with their result. */
const CALLS = new Set(["encode", "decode", "score", "logProbs", "applyChatTemplate", "setChatTemplate", "setNgramStore", "buildNgramStore"]);

/** What the page keeps of the model, sent after the load and after every call that may change it. */
const PROPERTIES = ["vocabSize", "contextLength", "backend", "weightTypes", "kvCacheBytesPerToken", "ngramStoreTokens", "chatTemplate", "reusePrefix", "architecture", "parameterCount", "tokenizerKind"];

/** The model's properties; one that cannot be read (an engine that has failed) is left out,
 * so that a reply never fails on them. */
function snapshot(model) {
  const properties = {};
  for (const name of PROPERTIES) {
    try {
      properties[name] = model[name];
    } catch {}
  }
  return properties;
}

function serializeError(error) {
  if (typeof WebAssembly !== "undefined" && error instanceof WebAssembly.RuntimeError) {
    return { name: "EngineFailedError", message: `the engine failed (${error.message}) and cannot be used any more: start a new worker`, code: "EngineFailed" };
  }
  if (error && typeof error === "object") return { name: error.name ?? "Error", message: error.message ?? String(error), code: error.code, field: error.field };
  return { name: "Error", message: String(error), code: undefined };
}

function reviveError(data, steps) {
  if (data.name === "AbortError") {
    const error = abortError(data.message);
    if (steps) error.steps = steps;
    return error;
  }
  const error = codedError(data.code, data.message);
  error.name = data.name;
  if (data.field !== undefined) error.field = data.field;
  return error;
}

/** Serves one model to the page that started this worker. Call it once, in the worker; in a
 * Node worker thread, as `serveModelWorker(parentPort)`. */
export function serveModelWorker(scope = globalThis) {
  const post = (message) => scope.postMessage(message);
  // A panic ends the model whatever was running, even when nothing was: say so at once.
  const ready = init().then(() => onEngineFailure((error) => post({ type: "failed", error: serializeError(error) })));
  let model = null;
  // Only the latest load may install its model; an earlier one still fetching is superseded.
  let latestLoad = 0;
  const runs = new Map();
  const reply = (id, value = null) => post({ type: "result", id, value, properties: model && snapshot(model) });

  async function load(id, source, options) {
    latestLoad = id;
    // A load cancels the running generation, as a new page would.
    for (const run of runs.values()) run.abort();
    const controller = new AbortController();
    runs.set(id, controller);
    const superseded = () => codedError("Superseded", "replaced by a later load");
    try {
      const onProgress = (progress) => post({ type: "progress", id, progress });
      const loaded = await loadModel(source, { ...options, onProgress, signal: controller.signal }).catch((error) => {
        throw id !== latestLoad ? superseded() : error;
      });
      if (id !== latestLoad || controller.signal.aborted) {
        loaded.free();
        throw id !== latestLoad ? superseded() : abortError();
      }
      // The old model served until now, so a bad file leaves a working one.
      model?.free();
      model = loaded;
      reply(id);
    } finally {
      runs.delete(id);
    }
  }

  async function handle(message) {
    const { id } = message;
    try {
      await ready;
      switch (message.type) {
        case "load":
          return await load(id, message.source, message.options);
        case "generate": {
          const controller = new AbortController();
          runs.set(id, controller);
          try {
            await requireModel().generate(message.prompt, message.config, (step) => post({ type: "step", id, step }), controller.signal);
          } finally {
            runs.delete(id);
          }
          return reply(id);
        }
        case "abort":
          return runs.get(message.target)?.abort();
        case "set":
          requireModel().reusePrefix = message.value;
          return reply(id);
        case "call": {
          if (!CALLS.has(message.method)) throw codedError("InvalidInput", `the worker does not offer ${message.method}`);
          return reply(id, await requireModel()[message.method](...message.args));
        }
        case "describeSampler": {
          const sampler = new Sampler(message.config);
          try {
            return reply(id, { stages: sampler.stages, ignoredSettings: sampler.ignoredSettings });
          } finally {
            sampler.free();
          }
        }
        case "ignoredSettings":
          return reply(id, ignoredSettings(message.config));
      }
    } catch (error) {
      post({ type: "error", id, error: serializeError(error) });
    }
  }

  function requireModel() {
    if (!model) throw codedError("InvalidInput", "no model is loaded in this worker");
    return model;
  }

  scope.addEventListener("message", (event) => void handle(event.data));
  // A trap outside any request (the engine's own tasks) still ends the model, visibly.
  scope.addEventListener("unhandledrejection", (event) => post({ type: "failed", error: serializeError(event.reason) }));
}

/** The resolved URL of a location, so that the worker (whose base URL differs) fetches the same file. */
function absolute(source) {
  return new URL(source, globalThis.location?.href).href;
}

/** What can cross to the worker: URLs as absolute strings, Blobs and bytes as they are, a
 * Response read here (it cannot be posted). */
async function postable(source, onProgress, signal) {
  if (typeof source === "string" || source instanceof URL) return { source: absolute(source), transfer: [] };
  if (typeof Response !== "undefined" && source instanceof Response) {
    if (!source.ok) throw codedError("Network", `the response is HTTP ${source.status} ${source.statusText}`);
    const bytes = await readBody(source, (loaded, total) => onProgress({ phase: "read", file: null, loaded, total }), signal);
    return { source: bytes, transfer: [bytes.buffer] };
  }
  return { source, transfer: [] };
}

/** Listens to a Web Worker, or to Node's worker_threads `Worker`: an EventEmitter, whose
 * "message" listeners get the data itself and "error" listeners the Error. */
function listen(worker, type, listener) {
  if (typeof worker.addEventListener === "function") worker.addEventListener(type, listener);
  else worker.on(type, type === "message" ? (data) => listener({ data }) : listener);
}

/** A model loaded in `worker` (running `serveModelWorker()`), with the Model's async API. Without
 * a source, the worker holds no model until `load()`; `describeSampler` works meanwhile. */
export async function createWorkerModel(worker, source, options = {}) {
  const { onFailure = () => {}, ...loadOptions } = options;
  const model = new WorkerModel(worker, onFailure);
  if (source === undefined || source === null) return model;
  try {
    await model.load(source, loadOptions);
    return model;
  } catch (error) {
    model.terminate();
    throw error;
  }
}

/** The page's handle on a model in a worker. Its properties are kept from the worker's replies. */
export class WorkerModel {
  #worker;
  #nextId = 1;
  #pending = new Map();
  #properties = {};
  #failure = null;
  #onFailure;

  constructor(worker, onFailure) {
    this.#worker = worker;
    this.#onFailure = onFailure;
    listen(worker, "message", (event) => this.#receive(event.data));
    listen(worker, "error", (event) => {
      event.preventDefault?.();
      this.fail(codedError("EngineFailed", `the worker failed: ${event.message || "it could not start or run"}`));
    });
  }

  get vocabSize() { return this.#properties.vocabSize; }
  get contextLength() { return this.#properties.contextLength; }
  get backend() { return this.#properties.backend; }
  get weightTypes() { return this.#properties.weightTypes; }
  get kvCacheBytesPerToken() { return this.#properties.kvCacheBytesPerToken; }
  get ngramStoreTokens() { return this.#properties.ngramStoreTokens; }
  get chatTemplate() { return this.#properties.chatTemplate; }
  get reusePrefix() { return this.#properties.reusePrefix; }
  get architecture() { return this.#properties.architecture; }
  get parameterCount() { return this.#properties.parameterCount; }
  get tokenizerKind() { return this.#properties.tokenizerKind; }
  /** The failure that ended this model (a trap, a dead worker, terminate()), or null. */
  get failure() { return this.#failure; }

  /** Loads `source` in the worker (options as `Model.load`'s). It cancels the running
   * generation; the old model serves until the new one is built, and stays if the load fails,
   * is aborted, or is superseded by a later one (`code` "Superseded"). */
  async load(source, options = {}) {
    const { onProgress = () => {}, signal, ...loadOptions } = options;
    throwIfAborted(signal);
    const { source: sent, transfer } = await postable(source, onProgress, signal);
    await this.request({ type: "load", source: sent, options: loadOptions }, transfer, { onProgress, signal });
  }

  /** Takes effect for the next generation; the worker receives messages in order. */
  set reusePrefix(value) {
    this.#properties.reusePrefix = Boolean(value);
    void this.request({ type: "set", value: Boolean(value) }).catch(() => {});
  }

  encode(text) { return this.#call("encode", text); }
  decode(ids) { return this.#call("decode", Array.from(ids)); }
  score(text, config) { return this.#call("score", text, config); }
  logProbs(ids) { return this.#call("logProbs", Array.from(ids)); }
  applyChatTemplate(messages, options) { return this.#call("applyChatTemplate", messages, options); }
  setChatTemplate(source) { return this.#call("setChatTemplate", source); }
  setNgramStore(bytes) { return this.#call("setNgramStore", bytes); }
  buildNgramStore(text, extend) { return this.#call("buildNgramStore", text, extend); }
  /** The sampler `config` builds: its stage names and the settings it ignores, or its config error. */
  describeSampler(config) { return this.request({ type: "describeSampler", config }); }
  /** What a generation with `config` would not use, as paths ("sampler.topK", "stopStrings"). */
  ignoredSettings(config) { return this.request({ type: "ignoredSettings", config }); }

  /** Resolves to the steps; `onStep` sees each as it arrives. An abort (signal or `cancel()`)
   * rejects with a DOMException named AbortError whose `steps` holds the steps made. */
  generate(prompt, config, onStep, signal) {
    const steps = [];
    const request = this.request({ type: "generate", prompt, config }, [], {
      steps,
      onStep: (step) => {
        steps.push(step);
        onStep?.(step);
      },
      signal,
    });
    return request.then(() => steps);
  }

  /** An async iterator of one generation's steps; `break` cancels it. */
  stream(prompt, config, { signal } = {}) {
    const queue = [];
    let wake = null;
    let ended = null;
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal?.addEventListener("abort", onAbort);
    let started = null;
    const start = () => {
      started ??= this.generate(prompt, config, (step) => {
        queue.push(step);
        wake?.();
      }, controller.signal).then(
        () => (ended = { done: true }),
        (error) => (ended = { error }),
      ).finally(() => {
        signal?.removeEventListener("abort", onAbort);
        wake?.();
      });
      if (signal?.aborted) controller.abort();
    };
    return {
      [Symbol.asyncIterator]() { return this; },
      async next() {
        start();
        for (;;) {
          if (queue.length > 0) return { value: queue.shift(), done: false };
          if (ended?.error) throw ended.error;
          if (ended) return { value: undefined, done: true };
          await new Promise((resolve) => (wake = resolve));
          wake = null;
        }
      },
      async return() {
        if (started && !ended) {
          controller.abort();
          await started;
        }
        ended ??= { done: true };
        return { value: undefined, done: true };
      },
    };
  }

  /** Cancels the running generation, if any: it rejects with an AbortError. */
  cancel() {
    for (const [id, pending] of this.#pending) if (pending.steps) this.#post({ type: "abort", target: id });
  }

  /** Ends the worker. Pending calls reject; the model cannot be used afterwards. */
  terminate() {
    this.fail(codedError("EngineFailed", "the worker was terminated"), false);
  }

  free() {
    this.terminate();
  }

  /** Ends the model: every pending and later call rejects with `error`. */
  fail(error, report = true) {
    if (this.#failure) return;
    this.#failure = error;
    this.#worker.terminate();
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    if (report && error.code === "EngineFailed") this.#onFailure(error);
  }

  #call(method, ...args) {
    // postMessage copies bytes (nothing is transferred): the caller keeps its own.
    return this.request({ type: "call", method, args });
  }

  /** Sends one request; `handlers` may take its progress or steps, and abort it with a signal. */
  request(message, transfer = [], handlers = {}) {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const { signal } = handlers;
      const onAbort = () => this.#post({ type: "abort", target: id });
      const settle = (finish) => (value) => {
        signal?.removeEventListener("abort", onAbort);
        finish(value);
      };
      this.#pending.set(id, { ...handlers, resolve: settle(resolve), reject: settle(reject) });
      this.#post({ ...message, id }, transfer);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort);
    });
  }

  #post(message, transfer = []) {
    if (!this.#failure) this.#worker.postMessage(message, transfer);
  }

  #receive(message) {
    if (message.type === "failed") return this.fail(reviveError(message.error));
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    if (message.type === "progress") return pending.onProgress?.(message.progress);
    if (message.type === "step") return pending.onStep?.(message.step);
    this.#pending.delete(message.id);
    if (message.properties) this.#properties = { ...this.#properties, ...message.properties };
    if (message.type === "result") return pending.resolve(message.value);
    const error = reviveError(message.error, pending.steps);
    pending.reject(error);
    if (error.code === "EngineFailed") this.fail(error);
  }
}
