// Whether the engine worker can run the threaded build, and on how many threads by default.
// The threaded build shares its memory with its pool's Web Workers: that needs a cross-origin
// isolated page (COOP and COEP headers), where SharedArrayBuffer can be posted, and a browser that
// compiles shared memory and atomics. The checks are onnxruntime-web's.

/** Which build the worker runs, and on how many threads. */
export interface EngineThreads {
  /** The threaded build (wasm threads, rayon's pool on Web Workers), or the single-threaded one. */
  threaded: boolean;
  /** The threads the CPU engine computes on. */
  threads: number;
  /** Why it runs on fewer threads than were asked, or null. */
  note: string | null;
}

// The smallest module with a shared memory and an atomic instruction (from wasm-feature-detect).
const THREADS_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5, 4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0, 254, 16, 2, 0, 26, 11,
]);

/** Null when this scope can start the threaded build, else why not, as a visitor would read it. */
export function threadsUnavailable(): string | null {
  if (typeof process !== "undefined" && process.versions?.node) {
    return "in Node the engine runs single-threaded (wasm-bindgen-rayon starts Web Workers, not worker_threads)";
  }
  if (!globalThis.crossOriginIsolated) {
    return "the page is not cross-origin isolated (it needs the COOP and COEP headers)";
  }
  try {
    // Firefox defines SharedArrayBuffer but can refuse to post one.
    new MessageChannel().port1.postMessage(new SharedArrayBuffer(1));
    if (WebAssembly.validate(THREADS_PROBE)) return null;
  } catch {}
  return "this browser cannot share WebAssembly memory between workers";
}

/** Half the logical cores, as wllama and onnxruntime-web default to: the other half are mostly
 * the same physical cores' second hyper-threads, and the page needs one for itself. */
export function defaultThreads(): number {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.floor(cores / 2));
}
