// A TypeScript consumer of the installed package, compiled with `tsc --strict --noEmit` (no
// skipLibCheck, so the package's .d.ts is checked too). The @ts-expect-error lines prove that the
// types are precise: each would be an unused directive (an error) if the type were `any`.
import init, { DEFAULT_SAMPLER_CONFIG, DEFAULT_SUPERPOSED_CONFIG, MAX_MODEL_BYTES, Model, STAGE_ORDERS, SUPPORTED_ARCHITECTURES, Sampler, checkModelSize, createWorkerModel, defaultSamplerConfig, loadModel, locationFiles, modelFiles, onEngineFailure, splitPartUrls, type WorkerModel, type WorkerReply, type WorkerRequest } from "decoding-playground";
import type {
  Alternative,
  BeamStep,
  ChatMessage,
  LoadProgress,
  BackendInfo,
  ScoreResult,
  ScoredToken,
  DraftNode,
  FinalDraft,
  FinishReason,
  GenerateConfig,
  GeneratedStep,
  MirostatConfig,
  PenaltyConfig,
  SamplerConfig,
  Stage,
  Step,
  StepRecord,
  SuperposedConfig,
  SuperposedStep,
  TokenBias,
} from "decoding-playground";

onEngineFailure((error) => {
  const code: "EngineFailed" = error.code;
  // @ts-expect-error: the listener is given an Error, not a string
  const text: string = error;
  return [code, text, error.message];
});

const mirostat: MirostatConfig = { version: 2, tau: 5, eta: 0.1 };
const penalties: PenaltyConfig = { lastN: 64, repetition: 1.1, presence: 0, frequency: 0 };
const ban: TokenBias = { token: 0, bias: "-Infinity" };
const order: Stage[] = ["temperature", "topK", "topP"];
const sampler: SamplerConfig = { seed: 42, temperature: 1, topK: null, mirostat, penalties, logitBias: [ban, { token: 1, bias: -2 }], order, topAlternatives: 5 };
const superposed: SuperposedConfig = { drafts: 3, alpha: 0.54, ngramOrders: [2, 3], ngramWeights: [0.1, 0.2] };
const config: GenerateConfig = { maxTokens: 16, stopTokens: null, sampler };
const drafting: GenerateConfig = { maxTokens: 8, superposed };
const defaults: SamplerConfig = defaultSamplerConfig();
// The same defaults as constants (no init() needed), typed from the functions, every field present.
const hfOrder: readonly Stage[] = STAGE_ORDERS.huggingFace;
const alpha: number = DEFAULT_SUPERPOSED_CONFIG.alpha;
const temperature: number = DEFAULT_SAMPLER_CONFIG.temperature;
const architectures: readonly string[] = SUPPORTED_ARCHITECTURES;
// @ts-expect-error: the constants are frozen, nested objects too
DEFAULT_SAMPLER_CONFIG.penalties.lastN = 1;

/** The worker protocol: one union each way, narrowed on `type`. */
function requestLabel(request: WorkerRequest): string {
  return request.type === "call" ? request.method : request.type === "abort" ? `abort ${request.target}` : `${request.type} ${request.id}`;
}
function replyStep(reply: WorkerReply): Step | BeamStep | null {
  return reply.type === "step" ? reply.step : null;
}
// @ts-expect-error: the worker offers Model's calls only, each with its own arguments
const notOffered: WorkerRequest = { type: "call", id: 1, method: "free", args: [] };
// @ts-expect-error: decode takes ids
const wrongArgs: WorkerRequest = { type: "call", id: 1, method: "decode", args: ["text"] };

// @ts-expect-error: a misspelt field is refused at compile time too (excess property check)
const misspelt: GenerateConfig = { maxtokens: 3 };
// @ts-expect-error: topK is a number or null
const wrongType: SamplerConfig = { topK: "40" };
// @ts-expect-error: not a stage
const wrongStage: Stage = "topN";
// @ts-expect-error: bias is a number or the string "-Infinity"
const wrongBias: TokenBias = { token: 1, bias: "-inf" };

/** What a chart needs from a token step. */
function point(record: StepRecord): { surprise: number; entropy: number; mu: number | undefined; top: Alternative[] } {
  return { surprise: record.surpriseBits, entropy: record.entropyBits, mu: record.mu, top: record.top };
}

/** Narrowing on `kind`: a token step has `text`; a drafts step has the tree's new nodes. */
function describe(step: Step): string {
  // @ts-expect-error: `text` exists only once `kind` is narrowed to "token"
  step.text;
  switch (step.kind) {
    case "token": {
      const token: GeneratedStep = step;
      const finish: FinishReason | undefined = token.finish;
      return `${token.token} ${JSON.stringify(token.text)} ${point(token).surprise.toFixed(2)} bits ${finish ?? ""}`;
    }
    case "drafts": {
      const drafts: SuperposedStep = step;
      // @ts-expect-error: a drafts step has no single token
      drafts.token;
      const nodes: DraftNode[] = [...drafts.live, ...drafts.finished, ...drafts.pruned];
      const parents: (number | null)[] = nodes.map((n) => n.parent);
      const final: FinalDraft[] = drafts.drafts ?? [];
      return `${drafts.step}: ${nodes.length} nodes, ${parents.length} parents, ${final.map((d) => d.text).join(" | ")}`;
    }
    default: {
      const never: never = step;
      return never;
    }
  }
}

export async function run(gguf: Uint8Array, onnx: Uint8Array, tokenizerJson: Uint8Array, configJson: string): Promise<string[]> {
  await init();
  const lines: string[] = [];
  const fromGguf: Model = await Model.fromGguf(gguf);
  const onCpu: Model = await Model.fromGguf(gguf, { backend: "cpu", contextLength: 256 });
  const info: BackendInfo = onCpu.backend;
  const where: "webgpu" | "cpu" = info.backend === "webgpu" ? "webgpu" : "cpu";
  lines.push(`${where}: ${info.adapter?.name ?? "no adapter"}, ${info.fallbackReason ?? "as asked"}`);
  // @ts-expect-error: fromGguf takes the file's bytes, not its path
  void Model.fromGguf("model.gguf");
  // A split GGUF: every part's bytes; what the file says the model is.
  const split: Model = await Model.fromGguf([gguf, gguf]);
  const facts: [string | undefined, number | undefined, string | undefined] = [split.architecture, split.parameterCount, split.tokenizerKind];
  const parts: string[] = splitPartUrls("https://example.com/m-00001-of-00002.gguf");
  const located = locationFiles("https://example.com/m.gguf");
  const firstFile: string | undefined = located.format === "gguf" ? located.gguf[0] : located.tokenizer;
  checkModelSize(MAX_MODEL_BYTES, "m.gguf");
  lines.push(...parts, String(facts), String(firstFile));
  // @ts-expect-error: the backends are "auto", "webgpu" and "cpu"
  void Model.fromGguf(gguf, { backend: "gpu" });
  // @ts-expect-error: a GGUF holds its tokenizer and dimensions: there is nothing more to pass
  void Model.fromGguf(gguf, tokenizerJson);
  const phases: LoadProgress["phase"][] = [];
  const loaded: Model = await Model.load("https://example.com/model.gguf", { onProgress: (p) => phases.push(p.phase), cache: false, backend: "cpu" });
  const fromBlob: Model = await loadModel(new Blob([new Uint8Array(gguf)]), { signal: new AbortController().signal });
  // @ts-expect-error: a progress event's loaded is a number
  void Model.load("x.gguf", { onProgress: (p) => p.loaded.toUpperCase() });
  // @ts-expect-error: a source is a URL, a Blob, a Response or bytes
  void Model.load(42);
  // The worker helper: the Model's API as promises. (A Worker value without the DOM lib's type.)
  const worker = null as unknown as Parameters<typeof createWorkerModel>[0];
  // Node's worker_threads Worker is an EventEmitter, and is taken too.
  const nodeWorker = { postMessage: (_message: unknown) => {}, on: (_event: "message" | "error", _listener: (value: unknown) => void) => nodeWorker, terminate: async () => 0 };
  lines.push(String((await createWorkerModel(nodeWorker, null)).failure));
  const inWorker: WorkerModel = await createWorkerModel(worker, "model.gguf", { onProgress: (p) => phases.push(p.phase), onFailure: (e) => lines.push(e.code) });
  const workerSteps: Step[] = await inWorker.generate("hi", { maxTokens: 2 }, (step) => lines.push(describe(step)), new AbortController().signal);
  for await (const step of inWorker.stream("hi", { maxTokens: 2 })) lines.push(describe(step));
  const forked: Step[] = await inWorker.fork("hi", [1, 2], { maxTokens: 2 }, null, null);
  lines.push(String(forked.length + inWorker.prefixCachePositions));
  const workerText: string = await inWorker.decode([1, 2]);
  const workerStages: string[] = (await inWorker.describeSampler({ topK: 5 })).stages;
  const workerIgnored: string[] = await inWorker.ignoredSettings({ maxTokens: 4 });
  await inWorker.load("other.gguf", { backend: "cpu" });
  lines.push(String(workerSteps.length), workerText, ...workerStages, ...workerIgnored, String(inWorker.vocabSize), String(inWorker.failure?.message));
  const workerFacts: (string | number | undefined)[] = [inWorker.architecture, inWorker.parameterCount, inWorker.tokenizerKind];
  lines.push(String(workerFacts));
  // @ts-expect-error: a worker model's calls are asynchronous
  const notYet: string = inWorker.decode([1]);
  lines.push(modelFiles([]).format, notYet);
  inWorker.terminate();
  const chat: ChatMessage[] = [{ role: "user", content: "hi" }];
  const prompt: string = loaded.applyChatTemplate(chat, { addGenerationPrompt: true });
  const template: string | undefined = loaded.chatTemplate;
  for await (const step of loaded.stream(prompt, { maxTokens: 4, stopStrings: ["\n"] }, { signal: new AbortController().signal })) lines.push(describe(step));
  // @ts-expect-error: a message has a role and a content
  void loaded.applyChatTemplate([{ role: "user" }]);
  lines.push(template ?? "", String(fromBlob.vocabSize));
  // @ts-expect-error: fromGguf resolves to a Model, it is not one
  Model.fromGguf(gguf).free();
  fromGguf.free();
  onCpu.free();
  const model = new Model(onnx, tokenizerJson, configJson);
  const controller = new AbortController();
  const steps: Step[] = await model.generate("Once upon a time", config, (step) => lines.push(describe(step)), controller.signal);
  const branch: Step[] = await model.fork("Once upon a time", Uint32Array.from([1, 2]), config);
  model.prefixCacheBytes = 64 << 20;
  lines.push(`${branch.length} ${model.prefixCacheHeldBytes} ${model.prefixCachePositions}`);
  await model.start("Once upon a time", drafting);
  for (let step = await model.next(); step !== undefined; step = await model.next()) lines.push(describe(step));
  const logProbs: Float64Array = await model.logProbs(model.encode("Once upon a time"));
  const scored: ScoreResult = await model.score("upon a time", { context: "Once", topAlternatives: 5 });
  const first: ScoredToken | undefined = scored.tokens[0];
  lines.push(`${scored.perplexity} ${first?.rank ?? "unscored"} ${first?.surpriseBits ?? 0}`);
  // @ts-expect-error: the config's fields are context and topAlternatives
  void model.score("x", { top: 3 });
  const ids: Uint32Array = model.encode("hello");
  const text: string = model.decode(ids);
  const store: Uint8Array = model.buildNgramStore(text, false);
  model.setNgramStore(store);
  model.setNgramStore(null);
  // @ts-expect-error: generate() resolves to steps, not a string
  const wrong: string = await model.generate("x", config);

  const chain = new Sampler(sampler);
  const record: StepRecord = chain.sample(new Float32Array([0, 1, 2]));
  const stages: string[] = chain.stages;
  const ignored: string[] = chain.ignoredSettings;
  chain.free();
  model.free();
  return [...lines, String(steps.length), String(record.token), stages.join(), ignored.join(), String(defaults.topK), String(wrong), String(logProbs.length)];
}
