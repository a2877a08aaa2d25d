// Serves the model files under /models/ from the repository's models/ folder, in `vite dev`
// and in `vite preview` alike. SmolLM2's files are 98 MB (GGUF) and 383 MB (ONNX): they must
// never be copied into dist/, and preview otherwise serves dist/ only.
import { createReadStream, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join, resolve, sep } from "node:path";
import type { Plugin } from "vite";

const TYPES: Record<string, string> = {
  ".gguf": "application/octet-stream",
  ".onnx": "application/octet-stream",
  // An ONNX export's external data (models/tiny/variants/external-data/).
  ".onnx_data": "application/octet-stream",
  ".ngram": "application/octet-stream",
  ".bin": "application/octet-stream",
  ".json": "application/json",
  // A chat template beside an export (chat_template.jinja): a missing one must be a 404, not the page.
  ".jinja": "text/plain; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

type Next = (error?: unknown) => void;

export function modelsMiddleware(modelsDir: string) {
  const root = resolve(modelsDir);
  return (req: IncomingMessage, res: ServerResponse, next: Next): void => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (!url.pathname.startsWith("/models/") || (req.method !== "GET" && req.method !== "HEAD")) {
      return next();
    }
    const file = resolve(join(root, decodeURIComponent(url.pathname.slice("/models/".length))));
    const type = TYPES[extname(file)];
    // Only model artefacts, and never outside models/ (no "..").
    if (!file.startsWith(root + sep) || type === undefined) return next();
    let size: number;
    let etag: string;
    try {
      const stat = statSync(file);
      if (!stat.isFile()) return next();
      size = stat.size;
      etag = `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
    } catch {
      res.statusCode = 404;
      res.end("not found");
      return;
    }
    res.setHeader("Content-Type", type);
    res.setHeader("Content-Length", String(size));
    // The page keys its Cache API copy by this ETag, so a rebuilt model is fetched again.
    res.setHeader("ETag", etag);
    res.setHeader("Cache-Control", "no-cache");
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    createReadStream(file).on("error", next).pipe(res);
  };
}

export function serveModels(modelsDir: string): Plugin {
  return {
    name: "decoding-playground:serve-models",
    configureServer(server) {
      server.middlewares.use(modelsMiddleware(modelsDir));
    },
    configurePreviewServer(server) {
      server.middlewares.use(modelsMiddleware(modelsDir));
    },
  };
}
