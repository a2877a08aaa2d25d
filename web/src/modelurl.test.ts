// Models named by a URL (modelurl.ts) and split GGUFs' part names (the package's split.js, which
// the page sizes and loads them with).
import { describe, expect, it } from "vitest";
import { MAX_MODEL_BYTES, modelFiles, orderSplitFiles, splitPartNames, splitPartUrls, SUPPORTED_ARCHITECTURES, SUPPORTED_WEIGHT_TYPES } from "decoding-playground";
import { modelParam, refusal, urlSource } from "./modelurl";
import { describeModel, dropzoneHelp, formatCount } from "./modelpanel";
import { modelUrls } from "./protocol";

const PAGE = "http://127.0.0.1:4173/?model=x";
const HF = "https://huggingface.co/org/Model-GGUF/resolve/main";
const file = (name: string) => new File(["GGUF"], name);

describe("?model=", () => {
  it("names SmolLM2 by default, the tiny model, or a URL", () => {
    expect(modelParam(null)).toEqual({ kind: "server", which: "smollm2" });
    expect(modelParam("")).toEqual({ kind: "server", which: "smollm2" });
    expect(modelParam("tiny")).toEqual({ kind: "server", which: "tiny" });
    expect(modelParam(`${HF}/m.gguf`)).toEqual({ kind: "url", url: `${HF}/m.gguf` });
  });
});

describe("a model URL", () => {
  it("is a GGUF named by its file and origin, which the link then carries", () => {
    expect(urlSource(`${HF}/smollm2-360m-q8_0.gguf?download=true`, PAGE)).toEqual({
      kind: "url",
      format: "gguf",
      name: "smollm2-360m-q8_0.gguf (https://huggingface.co)",
      gguf: `${HF}/smollm2-360m-q8_0.gguf?download=true`,
      ngrams: null,
      param: `${HF}/smollm2-360m-q8_0.gguf?download=true`,
    });
  });

  it("may be a path on the page's own server", () => {
    expect(urlSource("models/tiny/model.gguf", PAGE)).toMatchObject({ gguf: "http://127.0.0.1:4173/models/tiny/model.gguf", name: "model.gguf (http://127.0.0.1:4173)" });
  });

  it("is an ONNX export's graph, with its tokenizer and config beside it or above its onnx/ folder", () => {
    expect(urlSource("https://host/m/onnx/model_q4.onnx", PAGE)).toMatchObject({
      format: "onnx",
      onnx: "https://host/m/onnx/model_q4.onnx",
      tokenizer: "https://host/m/tokenizer.json",
      config: "https://host/m/config.json",
    });
    expect(urlSource("https://host/m/", PAGE)).toMatchObject({ format: "onnx", onnx: "https://host/m/model.onnx", tokenizer: "https://host/m/tokenizer.json" });
  });

  it("is refused, saying why, when it cannot be fetched or is a Hugging Face page", () => {
    expect(() => urlSource("javascript:alert(1)", PAGE)).toThrow("javascript: URLs cannot be fetched: give an http(s) URL");
    expect(() => urlSource("http://[bad", PAGE)).toThrow("“http://[bad” is not a URL");
    expect(() => urlSource("https://huggingface.co/org/M-GGUF/blob/main/m.gguf", PAGE)).toThrow(
      "this is Hugging Face's page of the file, not the file: use its download link, https://huggingface.co/org/M-GGUF/resolve/main/m.gguf",
    );
  });

  it("of a split GGUF's first part brings every part, its query kept", () => {
    const source = urlSource(`${HF}/big-00001-of-00003.gguf?download=true`, PAGE);
    expect(modelUrls(source)).toEqual([1, 2, 3].map((n) => ({ file: `big-0000${n}-of-00003.gguf`, url: `${HF}/big-0000${n}-of-00003.gguf?download=true` })));
  });
});

describe("split GGUF part names", () => {
  it("lists every part from any part's name, as gguf-split numbers them", () => {
    const all = ["m-00001-of-00003.gguf", "m-00002-of-00003.gguf", "m-00003-of-00003.gguf"];
    expect(splitPartNames("m-00001-of-00003.gguf")).toEqual(all);
    expect(splitPartNames("m-00003-of-00003.gguf")).toEqual(all);
    expect(splitPartNames("Q.Q4_K-00001-of-00002.GGUF")).toEqual(["Q.Q4_K-00001-of-00002.GGUF", "Q.Q4_K-00002-of-00002.GGUF"]);
    for (const other of ["m.gguf", "m-00004-of-00003.gguf", "m-00000-of-00003.gguf", "m-1-of-3.gguf", "m-00001-of-00003.bin"]) expect(splitPartNames(other)).toBeNull();
    expect(splitPartUrls("https://host/a%20b-00002-of-00002.gguf")).toEqual(["https://host/a%20b-00001-of-00002.gguf", "https://host/a%20b-00002-of-00002.gguf"]);
    expect(splitPartUrls("https://host/one.gguf")).toEqual(["https://host/one.gguf"]);
  });

  it("orders a drop's parts, and names the parts that are missing", () => {
    const parts = ["m-00003-of-00003.gguf", "m-00001-of-00003.gguf", "m-00002-of-00003.gguf"].map(file);
    expect(orderSplitFiles(parts).map((f) => f.name)).toEqual(["m-00001-of-00003.gguf", "m-00002-of-00003.gguf", "m-00003-of-00003.gguf"]);
    expect(() => orderSplitFiles([parts[1]!])).toThrow("the model is split into 3 parts: m-00002-of-00003.gguf, m-00003-of-00003.gguf are missing; give them all together");
    expect(() => orderSplitFiles([parts[1]!, parts[0]!])).toThrow("m-00002-of-00003.gguf is missing");
    expect(() => orderSplitFiles([parts[1]!, file("other-00002-of-00003.gguf")])).toThrow("2 .gguf files: give one (it holds the whole model), or every part of one split model");
    expect(() => orderSplitFiles([parts[1]!, parts[1]!])).toThrow("2 .gguf files: give one");
    // A drop picks them so, with the other files left aside.
    const picked = modelFiles([...parts, new File(["{}"], "README.md")]);
    expect(picked.format === "gguf" && picked.parts.map((f) => f.name)).toEqual(["m-00001-of-00003.gguf", "m-00002-of-00003.gguf", "m-00003-of-00003.gguf"]);
  });
});

describe("before a download", () => {
  const source = urlSource(`${HF}/m.gguf`, PAGE);
  const sized = (bytes: number | null, error: string | null = null) => [{ file: "m.gguf", bytes, error }];

  it("refuses what the engine cannot hold, saying how big it is and why", () => {
    expect(MAX_MODEL_BYTES).toBe(3 * 2 ** 30);
    expect(refusal(source, sized(MAX_MODEL_BYTES))).toBeNull();
    expect(refusal(source, sized(4.4e9))).toBe(
      "m.gguf (https://huggingface.co) is 4.4 GB, more than the 3.2 GB this engine can hold (WebAssembly's memory ends at 4 GiB, and the model needs room beside its weights)",
    );
    // The parts of a split model count together.
    expect(refusal(source, [...sized(2e9), ...sized(2e9)])).toMatch(/^m\.gguf \(https:\/\/huggingface\.co\) is 4\.0 GB, more than/);
  });

  it("refuses a file that cannot be reached, but not one whose size the server does not say", () => {
    expect(refusal(source, sized(null, "HTTP 404 Not Found"))).toBe("m.gguf cannot be fetched: HTTP 404 Not Found");
    expect(refusal(source, sized(null))).toBeNull();
    // An ONNX export's config.json is optional.
    const onnx = urlSource("https://host/m/model.onnx", PAGE);
    expect(refusal(onnx, [{ file: "model.onnx", bytes: 10, error: null }, { file: "config.json", bytes: null, error: "HTTP 404" }])).toBeNull();
  });
});

describe("the model panel's description of a model", () => {
  it("gives the architecture, the parameter count and the tokenizer kind that the files say", () => {
    expect(formatCount(106_816)).toBe("107k");
    expect(formatCount(134_515_008)).toBe("135M");
    expect(formatCount(1_235_814_400)).toBe("1.2B");
    expect(formatCount(512)).toBe("512");
    expect(describeModel({ architecture: "llama", parameterCount: 134_515_008, tokenizerKind: "byte-level BPE (smollm)" })).toBe("llama · 135M parameters · byte-level BPE (smollm) tokenizer");
    expect(describeModel({ architecture: "llama", parameterCount: null, tokenizerKind: null })).toBe("llama");
    expect(describeModel({ architecture: null, parameterCount: null, tokenizerKind: null })).toBe("");
  });

  it("the drop zone names every architecture and weight type the engine reads", () => {
    for (const name of [...SUPPORTED_ARCHITECTURES, ...SUPPORTED_WEIGHT_TYPES]) expect(dropzoneHelp()).toMatch(new RegExp(`\\b${name}\\b`));
    expect(dropzoneHelp()).toContain("llama (incl. Llama 3, SmolLM2, TinyLlama)");
  });
});
