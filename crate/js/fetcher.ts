// Fetches model files with progress and keeps them in the Cache API, so that a reload does not
// download the model (98 MB for SmolLM2's GGUF) again. Entries are keyed by the server's ETag: a
// rebuilt model has a new one, is fetched again, and its old copy is deleted.
//
// A file is stored in parts of 64 MB plus a small manifest written last: Chromium refuses a
// single Cache entry of a few hundred MB in private windows (it keeps those in memory), and a
// manifest-last write means a half-written copy is never taken for a whole one.

/** Called as bytes arrive: `total` is null when the server sends no Content-Length. */
export type Progress = (loaded: number, total: number | null, fromCache: boolean) => void;

export interface Fetched {
  bytes: Uint8Array<ArrayBuffer>;
  fromCache: boolean;
}

export type FetchBytes = (url: string, onProgress: Progress, options?: { signal?: AbortSignal | undefined }) => Promise<Fetched>;

/** An Error with the stable `code` the wasm errors carry (and `field`, for a setting out of range). */
export type CodedError = Error & { code: string; field?: string };

const CACHE_NAME = "decoding-playground-models-v2";
/** The size of one Cache API entry: larger files are stored in parts. */
export const PART_BYTES = 64 << 20;

/** An Error with a `code`, as the wasm errors have. */
export function codedError(code: string, message: string, options?: ErrorOptions): CodedError {
  return Object.assign(new Error(message, options), { code });
}

/** What an aborted load or fetch rejects with: a DOMException named AbortError, code "Cancelled". */
export function abortError(message = "loading was cancelled"): DOMException & { code: "Cancelled" } {
  const error = new DOMException(message, "AbortError");
  Object.defineProperty(error, "code", { value: "Cancelled", enumerable: true });
  return error as DOMException & { code: "Cancelled" };
}

export function throwIfAborted(signal: AbortSignal | null | undefined): void {
  if (signal?.aborted) throw abortError();
}

/** Reads a stream into one buffer; with a known size, straight into it (no second copy). An
 * `onProgress` that throws (a size past a limit) stops the stream: the rest is not downloaded. */
export async function readStream(
  stream: ReadableStream<Uint8Array>,
  total: number | null,
  onProgress: (loaded: number, total: number | null) => void,
  signal: AbortSignal | undefined,
): Promise<Uint8Array<ArrayBuffer>> {
  const reader = stream.getReader();
  try {
    onProgress(0, total);
    let buffer = new Uint8Array(total ?? 1 << 20);
    let loaded = 0;
    for (;;) {
      throwIfAborted(signal);
      const { done, value } = await reader.read();
      if (done) break;
      if (loaded + value.length > buffer.length) {
        const grown = new Uint8Array(Math.max(buffer.length * 2, loaded + value.length));
        grown.set(buffer.subarray(0, loaded));
        buffer = grown;
      }
      buffer.set(value, loaded);
      loaded += value.length;
      onProgress(loaded, total);
    }
    return loaded === buffer.length ? buffer : buffer.slice(0, loaded);
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  }
}

/** Whether `value` is a Response, where there are Responses. */
export function isResponse(value: unknown): value is Response {
  return typeof Response !== "undefined" && value instanceof Response;
}

export async function readBody(response: Response, onProgress: (loaded: number, total: number | null) => void, signal: AbortSignal | undefined): Promise<Uint8Array<ArrayBuffer>> {
  const header = Number(response.headers.get("Content-Length"));
  const total = Number.isFinite(header) && header > 0 ? header : null;
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  return readStream(response.body, total, onProgress, signal);
}

/** The cache key of one part ("manifest" or its index) of one version of a file. */
export function partKey(url: string, version: string, part: number | "manifest"): string {
  const key = new URL(url);
  key.searchParams.set("dp-version", version);
  key.searchParams.set("dp-part", String(part));
  return key.href;
}

async function readCached(cache: Cache, url: string, version: string, onProgress: (loaded: number, total: number) => void): Promise<Uint8Array<ArrayBuffer> | null> {
  const manifest = await cache.match(partKey(url, version, "manifest"));
  if (!manifest) return null;
  const { size, parts } = (await manifest.json()) as { size: number; parts: number };
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (let i = 0; i < parts; i++) {
    const part = await cache.match(partKey(url, version, i));
    if (!part) return null;
    const chunk = new Uint8Array(await part.arrayBuffer());
    if (offset + chunk.length > size) return null;
    bytes.set(chunk, offset);
    offset += chunk.length;
    onProgress(offset, size);
  }
  return offset === size ? bytes : null;
}

async function writeCached(cache: Cache, url: string, version: string, bytes: Uint8Array<ArrayBuffer>, partBytes: number): Promise<void> {
  for (const old of await cache.keys(url, { ignoreSearch: true })) await cache.delete(old);
  const parts = Math.ceil(bytes.length / partBytes);
  for (let i = 0; i < parts; i++) {
    await cache.put(partKey(url, version, i), new Response(bytes.subarray(i * partBytes, (i + 1) * partBytes)));
  }
  await cache.put(partKey(url, version, "manifest"), new Response(JSON.stringify({ size: bytes.length, parts })));
}

/** The models' cache, or null where there is no Cache API (Node, http:// pages). */
export async function openModelCache(): Promise<Cache | null> {
  // The Cache API exists only in secure contexts (https, localhost); elsewhere just fetch.
  if (typeof caches === "undefined") return null;
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
}

/** The version a file's copy is cached under, from a HEAD reply's headers. */
function versionOf(head: Response): string | null {
  return head.headers.get("ETag") ?? head.headers.get("Last-Modified") ?? head.headers.get("Content-Length");
}

async function serverVersion(url: string, signal: AbortSignal | undefined): Promise<string | null> {
  try {
    const head = await fetch(url, { method: "HEAD", cache: "no-store", signal });
    return head.ok ? versionOf(head) : null;
  } catch {
    return null;
  }
}

/** Whether the cache holds a whole copy of `url` in the version of this HEAD reply (a page can
 * then say that loading it costs no download). */
export async function isCached(url: string, head: Response): Promise<boolean> {
  const version = versionOf(head);
  if (!version || typeof caches === "undefined") return false;
  // `caches.match` looks in every cache of the page; a manifest marks a whole copy.
  return (await caches.match(partKey(url, version, "manifest")).catch(() => undefined)) !== undefined;
}

/** Without the server (offline), whichever version the cache holds. */
async function cachedVersion(cache: Cache, url: string): Promise<string | null> {
  for (const request of await cache.keys(url, { ignoreSearch: true })) {
    const key = new URL(request.url);
    if (key.searchParams.get("dp-part") === "manifest") return key.searchParams.get("dp-version");
  }
  return null;
}

/** Why a fetch of another origin's file may fail where the browser says only "Failed to fetch":
 * the server must allow it with CORS, and a cross-origin isolated page (the threaded engine's)
 * refuses a response without it. */
function crossOriginHint(url: string): string {
  const here = globalThis.location?.origin;
  const there = here ? new URL(url, globalThis.location.href).origin : here;
  if (!here || here === "null" || there === here) return "";
  return ` (the file is on another origin, ${there}: its server must send CORS headers (Access-Control-Allow-Origin) for this page to read it${globalThis.crossOriginIsolated ? ", and this cross-origin isolated page needs them for every file" : ""})`;
}

async function download(url: string, onProgress: Progress, signal: AbortSignal | undefined): Promise<Uint8Array<ArrayBuffer>> {
  let response: Response;
  try {
    response = await fetch(url, { cache: "no-store", signal });
  } catch (error) {
    throwIfAborted(signal);
    throw codedError("Network", `cannot fetch ${url}: ${error instanceof Error ? error.message : String(error)}${crossOriginHint(url)}`, { cause: error });
  }
  if (!response.ok) throw Object.assign(codedError("Network", `cannot fetch ${url}: HTTP ${response.status} ${response.statusText}`), { status: response.status });
  try {
    return await readBody(response, (loaded, total) => onProgress(loaded, total, false), signal);
  } catch (error) {
    throwIfAborted(signal);
    throw error;
  }
}

/** Fetches without the Cache API. */
export const plainFetcher: FetchBytes = async (url, onProgress, options = {}) => {
  throwIfAborted(options.signal);
  return { bytes: await download(url, onProgress, options.signal), fromCache: false };
};

/** Fetches through the Cache API (parts of `partBytes`), keyed by the server's ETag. */
export const cachedFetcher = (partBytes = PART_BYTES): FetchBytes => async (url, onProgress, options = {}) => {
  const { signal } = options;
  throwIfAborted(signal);
  const cache = await openModelCache();
  const version = cache ? ((await serverVersion(url, signal)) ?? (await cachedVersion(cache, url))) : null;
  if (cache && version) {
    const bytes = await readCached(cache, url, version, (loaded, total) => onProgress(loaded, total, true)).catch(() => null);
    throwIfAborted(signal);
    if (bytes) return { bytes, fromCache: true };
  }
  const bytes = await download(url, onProgress, signal);
  if (cache && version) {
    try {
      await writeCached(cache, url, version, bytes, partBytes);
    } catch (error) {
      // A full quota only costs the next reload a download.
      console.warn(`not cached: ${url}`, error);
      await Promise.all((await cache.keys(url, { ignoreSearch: true })).map((key) => cache.delete(key))).catch(() => {});
    }
  }
  return { bytes, fromCache: false };
};

export const fetchWithCache = cachedFetcher();
