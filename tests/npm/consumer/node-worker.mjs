// The engine in a Node worker thread, for node.test.mjs: the package's worker helper served
// through worker_threads' parentPort.
import { parentPort } from "node:worker_threads";
import { __panicForTesting, serveModelWorker } from "decoding-playground";

serveModelWorker(parentPort);
// A test message that traps the engine while it is idle: the page side must hear of it.
parentPort.on("message", (message) => {
  if (message?.type === "panic-for-testing") __panicForTesting("forced in the worker thread");
});
