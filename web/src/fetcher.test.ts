// The package's fetcher (crate/js/fetcher.js), which the page's worker loads models with.
import { afterEach, describe, expect, it, vi } from "vitest";
import { cachedFetcher, partKey } from "decoding-playground";

// The Cache API's matching on URLs, with or without the query string.
class MemoryCache {
  entries = new Map<string, Uint8Array>();
  private strip = (url: string) => url.split("?")[0];
  async match(key: string, options?: { ignoreSearch?: boolean }) {
    for (const [url, body] of this.entries) {
      if (url === key || (options?.ignoreSearch && this.strip(url) === this.strip(key))) return new Response(body.slice());
    }
    return undefined;
  }
  async keys(key: string, options?: { ignoreSearch?: boolean }) {
    return [...this.entries.keys()].filter((url) => (options?.ignoreSearch ? this.strip(url) === this.strip(key) : url === key)).map((url) => new Request(url));
  }
  async put(key: string, response: Response) {
    this.entries.set(key, new Uint8Array(await response.arrayBuffer()));
  }
  async delete(key: Request | string) {
    return this.entries.delete(typeof key === "string" ? key : key.url);
  }
}

const URL_ = "http://localhost/models/m.onnx";

function serve(cache: MemoryCache) {
  const server = { body: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), etag: '"v1"', gets: 0, up: true };
  vi.stubGlobal("caches", { open: async () => cache });
  vi.stubGlobal("fetch", async (url: string, init?: RequestInit) => {
    if (!server.up) throw new TypeError("Failed to fetch");
    if (url !== URL_) return new Response("nope", { status: 404, statusText: "Not Found" });
    const headers = { ETag: server.etag, "Content-Length": String(server.body.length) };
    if (init?.method === "HEAD") return new Response(null, { headers });
    server.gets += 1;
    return new Response(server.body.slice(), { headers });
  });
  return server;
}

afterEach(() => vi.unstubAllGlobals());

describe("fetch with the Cache API", () => {
  it("stores a file in parts and reads it back without downloading", async () => {
    const cache = new MemoryCache();
    const server = serve(cache);
    const fetchBytes = cachedFetcher(4);
    const progress: [number, boolean][] = [];
    const first = await fetchBytes(URL_, (loaded, _total, cached) => progress.push([loaded, cached]));
    expect(first.fromCache).toBe(false);
    expect([...first.bytes]).toEqual([...server.body]);
    expect(cache.entries.has(partKey(URL_, '"v1"', "manifest"))).toBe(true);
    expect(cache.entries.get(partKey(URL_, '"v1"', 2))).toEqual(new Uint8Array([9, 10]));
    const second = await fetchBytes(URL_, (loaded, _total, cached) => progress.push([loaded, cached]));
    expect(second.fromCache).toBe(true);
    expect([...second.bytes]).toEqual([...server.body]);
    expect(server.gets).toBe(1);
    expect(progress.at(-1)).toEqual([10, true]);
  });

  it("downloads a new version and drops the old one", async () => {
    const cache = new MemoryCache();
    const server = serve(cache);
    const fetchBytes = cachedFetcher(4);
    await fetchBytes(URL_, () => {});
    server.etag = '"v2"';
    server.body = new Uint8Array([7, 7, 7]);
    const got = await fetchBytes(URL_, () => {});
    expect(got.fromCache).toBe(false);
    expect([...got.bytes]).toEqual([7, 7, 7]);
    expect([...cache.entries.keys()].every((key) => key.includes("v2"))).toBe(true);
  });

  it("fetches again when a part is missing, and uses the cache when the server is gone", async () => {
    const cache = new MemoryCache();
    const server = serve(cache);
    const fetchBytes = cachedFetcher(4);
    await fetchBytes(URL_, () => {});
    cache.entries.delete(partKey(URL_, '"v1"', 1));
    expect((await fetchBytes(URL_, () => {})).fromCache).toBe(false);
    server.up = false;
    const offline = await fetchBytes(URL_, () => {});
    expect(offline.fromCache).toBe(true);
    expect(offline.bytes.length).toBe(10);
  });

  it("reports an HTTP error with the URL and code Network", async () => {
    serve(new MemoryCache());
    const error = await cachedFetcher()("http://localhost/models/none.onnx", () => {}).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "Network", message: "cannot fetch http://localhost/models/none.onnx: HTTP 404 Not Found" });
  });

  it("stops mid-download when its signal aborts: an AbortError, and nothing cached", async () => {
    const cache = new MemoryCache();
    serve(cache);
    const controller = new AbortController();
    const error = await cachedFetcher(4)(URL_, () => controller.abort(), { signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DOMException);
    expect(error).toMatchObject({ name: "AbortError", code: "Cancelled" });
    expect(cache.entries.size).toBe(0);
  });
});
