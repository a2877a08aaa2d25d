// The shapes the page's client (client.ts) hands the views. The config and step record types come
// from the wasm package itself (tsify derives them from the crate's serde shapes), so they
// cannot drift from the Rust definitions; only what the page adds is declared here.
import type * as pkg from "decoding-playground";
import { splitPartUrls } from "decoding-playground";

// ---- generation config: the package's types with every field present ----
// The package accepts partial configs (missing fields take defaults); the page always sends
// complete ones, so that an export or a link states every setting.

export type Stage = pkg.Stage;
export type PenaltyConfig = Required<pkg.PenaltyConfig>;
export type MirostatConfig = Required<pkg.MirostatConfig>;
export type SamplerConfig = Required<Omit<pkg.SamplerConfig, "penalties" | "mirostat">> & {
  penalties: PenaltyConfig;
  mirostat: MirostatConfig | null;
};
export type SuperposedConfig = Required<pkg.SuperposedConfig>;
export type GenerateConfig = Required<Omit<pkg.GenerateConfig, "sampler" | "superposed">> & {
  sampler: SamplerConfig;
  superposed: SuperposedConfig | null;
};

/** Beam search's config, every field present. */
export type BeamConfig = Required<pkg.BeamConfig>;

// ---- step records ----

export type FinishReason = pkg.FinishReason;
export type DraftNode = pkg.DraftNode;
export type FinalDraft = pkg.FinalDraft;

export type Alternative = pkg.Alternative;

export type TokenStep = Omit<Extract<pkg.Step, { kind: "token" }>, "top"> & {
  top: Alternative[];
  /** The token decoded on its own (added by the client): `text` is empty while a character
   *  is incomplete and for a stop token. */
  tokenText?: string;
};

export type DraftsStep = Extract<pkg.Step, { kind: "drafts" }>;

/** A token of a scored text, in the shape the token view shows (a step record without
 *  truncation: `kept` is the whole vocabulary), with the rank of the actual token. */
export type ScoredStep = TokenStep & { rank: number };

/** A scored text: its first token when nothing predicts it (no context), then every scored one. */
export interface ScoredText {
  lead: string;
  steps: ScoredStep[];
  perplexity: number;
  meanSurpriseBits: number;
  contextTokens: number;
  ms: number;
}

export type Step = TokenStep | DraftsStep;

/** A beam search's step: the candidates kept, finished and pruned; on the last, the hypotheses. */
export type BeamStep = pkg.BeamStep;
export type BeamNode = pkg.BeamNode;
export type Hypothesis = pkg.Hypothesis;

// ---- messages ----

/** The two file formats the crate reads: one GGUF file (weights in their quantised blocks, the
 *  tokenizer and the dimensions in its metadata), or an ONNX graph with its tokenizer.json and
 *  config.json. */
export type ModelFormat = "gguf" | "onnx";

/** Where the model comes from: files on the server (fetched and cached) or the user's disk. */
export type ModelSource =
  | {
      kind: "url";
      format: "gguf";
      name: string;
      /** The .gguf, or any part of a split one (its siblings are fetched with it). */
      gguf: string;
      /** The n-gram store superposed decoding uses by default, if the model has one. */
      ngrams: string | null;
      /** What the page link's `?model=` says to load this model: "tiny", a URL, or null for
       *  SmolLM2 (the default). */
      param: string | null;
    }
  | {
      kind: "url";
      format: "onnx";
      name: string;
      onnx: string;
      tokenizer: string;
      config: string;
      ngrams: string | null;
      param: string | null;
    }
  /** Dropped or picked files, which the package's `modelFiles` picks the model from. */
  | { kind: "files"; format: ModelFormat; name: string; files: File[] };

/** The last segment of a URL's path, decoded ("" for a folder). */
export function fileName(url: string): string {
  const path = new URL(url).pathname;
  return decodeURIComponent(path.slice(path.lastIndexOf("/") + 1));
}

/** A source's model files as URLs (every part of a split GGUF), with the names the progress
 *  messages use: the files' own. */
export function modelUrls(source: Extract<ModelSource, { kind: "url" }>): { file: string; url: string }[] {
  return source.format === "gguf"
    ? splitPartUrls(source.gguf).map((url) => ({ file: fileName(url), url }))
    : [
        { file: "model.onnx", url: source.onnx },
        { file: "tokenizer.json", url: source.tokenizer },
        { file: "config.json", url: source.config },
      ];
}

export type LoadPhase = "download" | "cache" | "compile" | "ngrams";

/** Which backend the worker asks for: WebGPU when an adapter takes the model ("auto"), the GPU
 *  or an error ("webgpu"), or tract on the CPU ("cpu"). ONNX models always run on the CPU. */
export type BackendChoice = pkg.Backend;

/** Which backend runs the model, on which adapter, and why not the GPU if it was wanted. */
export type BackendInfo = pkg.BackendInfo;
/** Which build the engine worker runs, and on how many threads. */
export type EngineThreads = pkg.EngineThreads;

export interface ModelInfo {
  name: string;
  format: ModelFormat;
  /** The backend the package reports (null for a package without the getter). */
  backend: BackendInfo | null;
  /** The engine's build and threads (null for a package without them). */
  threads: EngineThreads | null;
  /** The weights' storage types (e.g. ["Q4_1", "Q8_0"]), when the package reports them. */
  weightTypes: string[] | null;
  vocabSize: number;
  contextLength: number;
  /** What each position of the KV cache takes, when the package reports it. */
  kvCacheBytesPerToken: number | null;
  loadMs: number;
  /** Whether the bytes came from the browser's cache rather than the network. */
  fromCache: boolean;
  /** The model files' size (without the n-gram store). */
  bytes: number;
  ngramTokens: number;
  /** Whether the model has a chat template (a GGUF's `tokenizer.chat_template`). */
  chatTemplate: boolean;
  /** What the files say (null where they do not): "llama", …; every tensor's elements (a
   *  GGUF's); the tokenizer's kind in words ("byte-level BPE (smollm)", "SentencePiece"). */
  architecture: string | null;
  parameterCount: number | null;
  tokenizerKind: string | null;
}

export interface RunStats {
  steps: number;
  /** Generated tokens (draft steps count once each). */
  tokens: number;
  /** Prompt encoding + prefill. */
  prefillMs: number;
  /** From the end of the prefill to the last step. */
  decodeMs: number;
  wallMs: number;
  tokensPerSecond: number;
}

export type ErrorKind = "load" | "config" | "run" | "ngrams" | "cancelled" | "crash";
