// The Web Worker: the package's engine worker, so that the page never freezes, not even while
// tract compiles the model (a blocking call of seconds).
import { __panicForTesting, serveModelWorker } from "decoding-playground";

serveModelWorker();
// For the end-to-end test of a trap: Playwright calls it in this worker's scope.
(self as unknown as { __panicForTesting: typeof __panicForTesting }).__panicForTesting = __panicForTesting;
