import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { serveModels } from "./web/models-plugin.ts";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// Cross-origin isolation: the threaded engine shares its memory with its Web Workers, which a
// browser allows only on an isolated page. Every file a page then reads from another origin
// must come with CORS (docs/deploying.md).
const crossOriginIsolation = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

export default defineConfig({
  // The repository root is Vite's root: index.html lives there, next to models/.
  plugins: [serveModels(here("./models"))],
  resolve: {
    // The page imports the wasm package by its npm name, as a user of the package would.
    alias: { "decoding-playground": here("./crate/pkg-web/index.js") },
  },
  worker: { format: "es" },
  build: {
    target: "es2022",
    // The .wasm is ~18 MB: Vite's size warning says nothing useful here.
    chunkSizeWarningLimit: 30_000,
  },
  server: { headers: crossOriginIsolation, watch: { ignored: ["**/target/**", "**/models/**"] } },
  preview: { headers: crossOriginIsolation },
  test: {
    include: ["web/src/**/*.test.ts"],
    environment: "node",
  },
});
