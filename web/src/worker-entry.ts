// The Web Worker: the wasm package runs here so that the page never freezes, not even while
// tract compiles the model (a blocking call of seconds).
import init, { Model, Sampler, __panicForTesting, fetchWithCache } from "decoding-playground";
import type { FromWorker, ToWorker } from "./protocol";
import { createWorker, errorMessage, type ModelLike } from "./worker";

// The DOM typings describe a window; this is the part of a worker scope used here.
const scope = self as unknown as {
  postMessage(message: FromWorker): void;
  addEventListener(type: "message", listener: (event: MessageEvent<ToWorker>) => void): void;
  addEventListener(type: "unhandledrejection", listener: (event: PromiseRejectionEvent) => void): void;
};

const post = (message: FromWorker) => scope.postMessage(message);

const handle = createWorker(
  {
    init: async () => {
      await init();
    },
    createModel: async (files, backend, contextLength): Promise<ModelLike> =>
      files.format === "gguf" ? await Model.fromGguf(files.gguf, { backend, contextLength }) : new Model(files.onnx, files.tokenizer, files.config),
    inspect: (config) => {
      const sampler = new Sampler(config);
      try {
        return { stages: sampler.stages, ignored: sampler.ignoredSettings };
      } finally {
        sampler.free();
      }
    },
  },
  post,
  fetchWithCache,
);

scope.addEventListener("message", (event) => void handle(event.data));
// For the end-to-end test of a trap: Playwright calls it in this worker's scope.
(self as unknown as { __panicForTesting: typeof __panicForTesting }).__panicForTesting = __panicForTesting;
scope.addEventListener("unhandledrejection", (event) =>
  post({ type: "error", kind: "crash", message: errorMessage(event.reason) }),
);
