// Fetches model files with progress and keeps them in the Cache API, so that a reload does not
// download the model (98 MB for SmolLM2's GGUF) again. Entries are keyed by the server's ETag: a
// rebuilt model has a new one, is fetched again, and its old copy is deleted.
//
// A file is stored in parts of 64 MB plus a small manifest written last: Chromium refuses a
// single Cache entry of a few hundred MB in private windows (it keeps those in memory), and a
// manifest-last write means a half-written copy is never taken for a whole one.

export type Progress = (loaded: number, total: number | null, fromCache: boolean) => void;

export interface Fetched {
  bytes: Uint8Array<ArrayBuffer>;
  fromCache: boolean;
}

export type FetchBytes = (url: string, onProgress: Progress) => Promise<Fetched>;

const CACHE_NAME = "decoding-playground-models-v2";
export const PART_BYTES = 64 << 20;

async function readBody(response: Response, onProgress: (loaded: number, total: number | null) => void): Promise<Uint8Array<ArrayBuffer>> {
  const header = Number(response.headers.get("Content-Length"));
  const total = Number.isFinite(header) && header > 0 ? header : null;
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  // With a known size, write straight into one buffer: no second copy of the model at the end.
  let buffer = new Uint8Array(total ?? 1 << 20);
  let loaded = 0;
  for (;;) {
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
}

/** The cache key of one part ("manifest" or its index) of one version of a file. */
export function partKey(url: string, version: string, part: number | "manifest"): string {
  const key = new URL(url);
  key.searchParams.set("dp-version", version);
  key.searchParams.set("dp-part", String(part));
  return key.href;
}

interface Manifest {
  size: number;
  parts: number;
}

async function readCached(cache: Cache, url: string, version: string, onProgress: (loaded: number, total: number) => void) {
  const manifest = await cache.match(partKey(url, version, "manifest"));
  if (!manifest) return null;
  const { size, parts } = (await manifest.json()) as Manifest;
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
  const manifest: Manifest = { size: bytes.length, parts };
  await cache.put(partKey(url, version, "manifest"), new Response(JSON.stringify(manifest)));
}

async function openCache(): Promise<Cache | null> {
  // The Cache API exists only in secure contexts (https, localhost); elsewhere just fetch.
  if (typeof caches === "undefined") return null;
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
}

async function serverVersion(url: string): Promise<string | null> {
  try {
    const head = await fetch(url, { method: "HEAD", cache: "no-store" });
    if (!head.ok) return null;
    return head.headers.get("ETag") ?? head.headers.get("Last-Modified") ?? head.headers.get("Content-Length");
  } catch {
    return null;
  }
}

/** Without the server (offline), whichever version the cache holds. */
async function cachedVersion(cache: Cache, url: string): Promise<string | null> {
  for (const request of await cache.keys(url, { ignoreSearch: true })) {
    const key = new URL(request.url);
    if (key.searchParams.get("dp-part") === "manifest") return key.searchParams.get("dp-version");
  }
  return null;
}

export const cachedFetcher = (partBytes = PART_BYTES): FetchBytes => async (url, onProgress) => {
  const cache = await openCache();
  const version = cache ? ((await serverVersion(url)) ?? (await cachedVersion(cache, url))) : null;
  if (cache && version) {
    const bytes = await readCached(cache, url, version, (loaded, total) => onProgress(loaded, total, true)).catch(() => null);
    if (bytes) return { bytes, fromCache: true };
  }
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status} ${response.statusText}`);
  const bytes = await readBody(response, (loaded, total) => onProgress(loaded, total, false));
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
