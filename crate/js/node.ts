// The package's Node entry (the "node" condition of package.json's exports). The wasm-bindgen
// "web" build next to it fetches its .wasm in init(); Node reads the file and instantiates it
// synchronously on import instead, so that `await init()` can stay in code shared with browsers.
import { readFileSync } from "node:fs";
import { initSync, type InitOutput } from "./decoding_playground.js";

const exports = initSync({ module: readFileSync(new URL("./decoding_playground_bg.wasm", import.meta.url)) });

export * from "./index.js";

/** Already done on import in Node: resolves to the wasm exports, as the browser `init()` does. */
export default async function init(): Promise<InitOutput> {
  return exports;
}
