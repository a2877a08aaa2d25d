// A ready worker script, for pages without a bundler:
//   new Worker(new URL("./node_modules/decoding-playground/model-worker.js", import.meta.url), { type: "module" })
import { serveModelWorker } from "./worker.js";

serveModelWorker();
