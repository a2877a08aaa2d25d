import { afterEach, describe, expect, it, vi } from "vitest";
import { AUTO_LOAD_BYTES, autoLoads, backendLabel, bytesToFetch, fallbackCopyText, filesToSource, formatBytes, formatLabel, kvText, probeFiles, serverModel, storeCorpus, sumBytes } from "./modelpanel";

const file = (name: string, text = name) => new File([text], name);
const at = (path: string) => new URL(path, "http://localhost:4173/").href;

afterEach(() => vi.unstubAllGlobals());

describe("the backend label", () => {
  it("names the adapter, flags a software one, and says why the CPU runs when WebGPU was wanted", () => {
    expect(backendLabel({ backend: "webgpu", adapter: { name: "NVIDIA H200", backend: "browser webgpu", fallback: false }, fallbackReason: undefined, fallbackWeightBytes: undefined })).toBe("WebGPU · NVIDIA H200");
    expect(backendLabel({ backend: "webgpu", adapter: { name: "", backend: "browser webgpu", fallback: true }, fallbackReason: undefined, fallbackWeightBytes: undefined })).toBe(
      "WebGPU · browser adapter (fallback adapter: software, slow)",
    );
    expect(backendLabel({ backend: "cpu", adapter: undefined, fallbackReason: "WebGPU: no WebGPU adapter is available", fallbackWeightBytes: undefined })).toBe(
      "CPU · wasm SIMD128 (not WebGPU: WebGPU: no WebGPU adapter is available)",
    );
    expect(backendLabel(null)).toBe("CPU · wasm SIMD128");
  });

  it("says how many threads the CPU engine runs on, and why fewer than were asked", () => {
    const cpu = { backend: "cpu", adapter: undefined, fallbackReason: undefined, fallbackWeightBytes: undefined } as const;
    expect(backendLabel(cpu, { threaded: true, threads: 4, note: null })).toBe("CPU · wasm SIMD128 · 4 threads");
    expect(backendLabel(cpu, { threaded: false, threads: 1, note: "the page is not cross-origin isolated" })).toBe(
      "CPU · wasm SIMD128 · 1 thread (the page is not cross-origin isolated)",
    );
    expect(backendLabel(null, { threaded: false, threads: 1, note: null })).toBe("CPU · wasm SIMD128 · 1 thread");
  });

  it("says what the CPU copy kept for a fallback costs, under auto on WebGPU only", () => {
    const gpu = { backend: "webgpu", adapter: { name: "NVIDIA H200", backend: "browser webgpu", fallback: false }, fallbackReason: undefined } as const;
    expect(fallbackCopyText({ ...gpu, fallbackWeightBytes: 98_123_456 })).toBe(" (+ 98 MB of memory: a CPU copy of the weights, for a fallback)");
    expect(fallbackCopyText({ ...gpu, fallbackWeightBytes: undefined })).toBe("");
    expect(fallbackCopyText(null)).toBe("");
  });
});

describe("the model panel's sources", () => {
  it("SmolLM2 comes with the default n-gram store, or the public-domain one, each named by its corpus", () => {
    vi.stubGlobal("location", new URL("http://localhost:4173/"));
    const standard = serverModel("smollm2");
    const publicDomain = serverModel("smollm2", "gguf", "public-domain");
    expect(publicDomain.ngrams).toBe("http://localhost:4173/models/ngrams/public-domain.ngram");
    expect(storeCorpus(standard)).toMatch(/^Brown, non-commercial use only/);
    expect(storeCorpus(publicDomain)).toBe("Shakespeare + Milton, public domain");
    expect(storeCorpus(serverModel("tiny"))).toBeNull();
    expect(storeCorpus(null)).toBeNull();
  });

  it("the server models are GGUF files by default, ONNX on request", () => {
    vi.stubGlobal("location", new URL("http://localhost:4173/?model=tiny"));
    expect(serverModel("smollm2")).toEqual({
      kind: "url",
      format: "gguf",
      name: "SmolLM2-135M-Instruct",
      gguf: "http://localhost:4173/models/smollm2-135m/model.gguf",
      ngrams: "http://localhost:4173/models/ngrams/default.ngram",
      param: null,
    });
    expect(serverModel("tiny")).toMatchObject({ format: "gguf", gguf: "http://localhost:4173/models/tiny/model.gguf", ngrams: "http://localhost:4173/models/tiny/ngrams.bin" });
    expect(serverModel("tiny", "onnx")).toMatchObject({
      format: "onnx",
      onnx: "http://localhost:4173/models/tiny/model.onnx",
      tokenizer: "http://localhost:4173/models/tiny/tokenizer.json",
      config: "http://localhost:4173/models/tiny/config.json",
    });
  });

  it("a dropped .gguf is the whole model; an ONNX export needs its .onnx and tokenizer.json", () => {
    const files = [file("tokenizer.json"), file("SmolLM2.Q4_1.GGUF", "GGUF…")];
    // Files dropped along with a GGUF go too: the package takes the GGUF alone.
    expect(filesToSource(files)).toEqual({ kind: "files", format: "gguf", name: "SmolLM2.Q4_1.GGUF", files });
    expect(() => filesToSource([file("a.gguf"), file("b.gguf")])).toThrow("2 .gguf files: give one");
    expect(filesToSource([file("model_q4.onnx"), file("tokenizer.json"), file("model_q4.onnx_data")])).toMatchObject({ kind: "files", format: "onnx", name: "model_q4.onnx" });
    expect(() => filesToSource([file("model.onnx"), file("config.json")])).toThrow(
      "missing tokenizer.json: give one .gguf file, or a .onnx model with its tokenizer.json (and config.json, and its data files)",
    );
    expect(() => filesToSource([])).toThrow("missing a .onnx model and tokenizer.json");
  });

  it("sizes a server model's files, its n-gram store included, with HEAD requests before downloading them", async () => {
    const heads: string[] = [];
    const sizes: Record<string, number> = { "/m.gguf": 98_362_432, "/n.bin": 23_753_336, "/m.onnx": 1000, "/t.json": 20, "/c.json": 3 };
    const fakeFetch = (async (url: string, init?: RequestInit) => {
      heads.push(`${init?.method} ${url}`);
      const size = sizes[new URL(url).pathname];
      return size === undefined ? new Response(null, { status: 404, statusText: "Not Found" }) : new Response(null, { headers: { "Content-Length": String(size), ETag: `"${url}"` } });
    }) as typeof fetch;
    const cachedOnes = (urls: string[]) => async (url: string, head: Response) => urls.map(at).includes(url) && head.headers.get("ETag") === `"${url}"`;
    const gguf = { kind: "url", format: "gguf", name: "m", gguf: at("/m.gguf"), ngrams: at("/n.bin"), param: null } as const;
    const files = await probeFiles(gguf, fakeFetch, cachedOnes([]));
    expect(heads).toEqual([`HEAD ${at("/m.gguf")}`, `HEAD ${at("/n.bin")}`]);
    expect(files).toEqual([
      { file: "m.gguf", bytes: 98_362_432, cached: false, error: null },
      { file: "n-gram store", bytes: 23_753_336, cached: false, error: null },
    ]);
    expect(sumBytes(files)).toBe(122_115_768);
    expect(bytesToFetch(files)).toBe(122_115_768);
    // The cached files cost nothing to fetch, though the model still weighs as much.
    const partly = await probeFiles(gguf, fakeFetch, cachedOnes(["/m.gguf"]));
    expect([sumBytes(partly), bytesToFetch(partly)]).toEqual([122_115_768, 23_753_336]);
    const onnx = { kind: "url", format: "onnx", name: "m", onnx: at("/m.onnx"), tokenizer: at("/t.json"), config: at("/c.json"), ngrams: null, param: null } as const;
    expect(sumBytes(await probeFiles(onnx, fakeFetch, cachedOnes([])))).toBe(1023);
    const missing = await probeFiles({ ...onnx, config: at("/none.json") }, fakeFetch, cachedOnes([]));
    expect(missing[2]).toEqual({ file: "config.json", bytes: null, cached: false, error: "HTTP 404 Not Found" });
    expect(sumBytes(missing)).toBeNull();
    const offline = (async () => {
      throw new TypeError("Failed to fetch");
    }) as typeof fetch;
    const unreachable = await probeFiles(onnx, offline, cachedOnes([]));
    expect(bytesToFetch(unreachable)).toBeNull();
    expect(unreachable[0]!.error).toMatch(/does not allow other sites to fetch its files \(CORS\)$/);
  });

  it("loads at once only what costs under 20 MB to fetch: a tiny model, or a cached one", () => {
    const file = (bytes: number | null, cached = false) => ({ file: "model.gguf", bytes, cached, error: null });
    expect(AUTO_LOAD_BYTES).toBe(20e6);
    expect(autoLoads([file(95_968), file(5_088)])).toBe(true);
    expect(autoLoads([file(98_362_432), file(23_753_336)])).toBe(false);
    expect(autoLoads([file(19_999_999)])).toBe(true);
    expect(autoLoads([file(20_000_000)])).toBe(false);
    expect(autoLoads([file(98_362_432, true), file(23_753_336, true)])).toBe(true);
    expect(autoLoads([file(98_362_432, true), file(23_753_336)])).toBe(false);
    // An unknown size waits for the click, unless that file is cached.
    expect(autoLoads([file(null)])).toBe(false);
    expect(autoLoads([file(null, true)])).toBe(true);
  });

  it("says what the KV cache takes a token and at the full context, when the package reports it", () => {
    expect(kvText({ kvCacheBytesPerToken: 46_080, contextLength: 8192 })).toBe(" (KV cache 46 kB a token, 377 MB full)");
    expect(kvText({ kvCacheBytesPerToken: null, contextLength: 8192 })).toBe("");
  });

  it("says sizes in decimal units, and the format with the weight types", () => {
    expect(formatBytes(98_362_432)).toBe("98 MB");
    expect(formatBytes(5_088)).toBe("5 kB");
    expect(formatBytes(95_968)).toBe("96 kB");
    expect(formatBytes(3_522_762)).toBe("3.5 MB");
    expect(formatBytes(0)).toBe("0 B");
    expect(formatLabel({ format: "gguf", weightTypes: ["Q4_1", "Q8_0"] })).toBe("GGUF · Q4_1 / Q8_0 blocks");
    expect(formatLabel({ format: "gguf", weightTypes: null })).toBe("GGUF");
    expect(formatLabel({ format: "onnx", weightTypes: null })).toBe("ONNX");
    // What an ONNX export costs against the GGUF is said where the model shows.
    expect(formatLabel({ format: "onnx", weightTypes: ["F32"] })).toBe("ONNX · F32 (widened to f32: decode ~2× slower than the GGUF, in 4× its memory)");
    expect(formatLabel({ format: "onnx", weightTypes: ["INT8"] })).toBe("ONNX · INT8 (decode ~4× slower than the GGUF in wasm, in 2× its memory)");
    expect(formatLabel({ format: "onnx", weightTypes: ["Q4_0"] })).toMatch(/^ONNX · Q4_0 \(decode ~4× slower/);
    expect(formatLabel({ format: "onnx", weightTypes: ["BF16"] })).toBe("ONNX · BF16");
  });
});
