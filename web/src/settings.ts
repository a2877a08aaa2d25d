// What the form edits, and how it becomes the crate's GenerateConfig. The form keeps values the
// current strategy does not use (a switched-off top-k keeps its k), so switching back and forth
// loses nothing; only `toConfig` decides what the crate sees.
import { DEFAULT_DRY_CONFIG, DEFAULT_MIROSTAT_CONFIG, DEFAULT_SAMPLER_CONFIG, DEFAULT_SUPERPOSED_CONFIG, STAGE_ORDERS } from "decoding-playground";
import type { BeamConfig, GenerateConfig, PenaltyConfig, SamplerConfig, Stage } from "./protocol";

export type StrategyKind = "greedy" | "sample" | "mirostat1" | "mirostat2" | "superposed" | "beam";

export const STRATEGIES: { kind: StrategyKind; label: string }[] = [
  { kind: "greedy", label: "Greedy" },
  { kind: "sample", label: "Sampling chain" },
  { kind: "mirostat1", label: "Mirostat v1" },
  { kind: "mirostat2", label: "Mirostat v2" },
  { kind: "superposed", label: "Superposed decoding (k drafts)" },
  { kind: "beam", label: "Beam search" },
];

/** One line per strategy, shown under the selector: what it does, in a newcomer's words. */
export const STRATEGY_HELP: Record<StrategyKind, string> = {
  greedy: "Greedy: always takes the most likely token, so a prompt always gives the same text (the seed plays no part).",
  sample:
    "Sampling chain: the penalties, then the stages switched on below, cut the candidates; a token is drawn at random, weighted by its probability.",
  mirostat1:
    "Mirostat v1: estimates how fast the probabilities fall off and picks each step's top-k so that the text's average surprise stays near τ bits (Basu et al. 2020).",
  mirostat2: "Mirostat v2: adjusts a surprise cap μ each step so that the text's average surprise stays near τ bits (Basu et al. 2020).",
  superposed:
    "Superposed decoding: k drafts from one forward pass, fed the weighted sum of their embeddings; an n-gram model keeps them coherent (Shen et al. 2024).",
  beam:
    "Beam search: keeps the k most likely sequences at each step and ends with the best finished ones, scored by log probability over length^penalty (as Hugging Face does it).",
};

/** When beam search's finished hypotheses are final (Hugging Face's `early_stopping`). */
export type EarlyStopping = "false" | "true" | "never";

/** One line per stage of the sampling chain, shown with its field. */
export const STAGE_HELP = {
  temperature: "Divides the logits by T: below 1 sharpens the distribution, above 1 flattens it; 0 is greedy.",
  topK: "Keeps the k most likely tokens.",
  topP: "Keeps the fewest most likely tokens whose probabilities add up to p (nucleus sampling).",
  minP: "Keeps the tokens at least p times as likely as the most likely one.",
  typicalP: "Keeps the tokens whose surprise is closest to the entropy, up to probability p (locally typical sampling).",
  topNSigma: "Keeps the tokens whose logit is within n standard deviations of the best one (top-n-σ).",
  xtc: "Exclude top choices: with this chance per step, drops every token above the threshold but the least likely of them.",
  epsilonCutoff: "Drops the tokens less likely than ε (epsilon sampling, as in Hugging Face).",
  etaCutoff: "Drops the tokens less likely than min(ε, √ε·e^−entropy): a flatter distribution is cut less (eta sampling).",
  dynamicTemperature: "Moves the temperature within T ± range with each step's entropy: confident steps cool, uncertain ones heat up.",
  adaptiveP:
    "Steers the chosen tokens' probability toward the target: reshapes what is kept around 2·target − the recent chosen tokens' average (llama.cpp's adaptive-p); runs after every other stage.",
  dry: "Don't repeat yourself: a token that would extend a repeated sequence longer than the allowed length loses multiplier·base^(extra length).",
  penalties:
    "Make the tokens of the last n less likely: repetition scales their logits (1 = off), presence subtracts a fixed amount, frequency one per occurrence.",
} as const;

/** Seeds stay below a million: short enough to read and type, and any u64 would do no better. */
export const SEED_RANGE = 1_000_000;

/** A fresh seed for the dice button and "new seed on every run": never the current one, so
 *  that the next run differs. */
export function randomSeed(current: number, random: () => number = Math.random): number {
  // A step of 1 to SEED_RANGE - 1 from the current seed, wrapped: uniform over the others.
  const from = Number.isSafeInteger(current) && current >= 0 ? current % SEED_RANGE : 0;
  return (from + 1 + Math.floor(random() * (SEED_RANGE - 1))) % SEED_RANGE;
}

/** A truncation setting that can be switched off without forgetting its value. */
export interface Toggle {
  on: boolean;
  value: number;
}

/** N-gram orders of superposed decoding (the crate's); the form edits one weight per order. */
export const NGRAM_ORDERS: readonly number[] = DEFAULT_SUPERPOSED_CONFIG.ngramOrders;

/** The crate's stage orders, by the name a link gives them. */
const STAGE_ORDER = { llama: STAGE_ORDERS.llamaCpp, hf: STAGE_ORDERS.huggingFace } as const;

/** One strategy with all its parameters: what a compare column runs. */
export interface StrategySettings {
  strategy: StrategyKind;
  temperature: number;
  topK: Toggle;
  topP: Toggle;
  minP: Toggle;
  typicalP: Toggle;
  topNSigma: Toggle;
  /** XTC's chance per step; its threshold is `xtcThreshold`. */
  xtc: Toggle;
  xtcThreshold: number;
  epsilonCutoff: Toggle;
  etaCutoff: Toggle;
  /** Dynamic temperature's range; its exponent is `dynamicExponent`. */
  dynamicTemperature: Toggle;
  dynamicExponent: number;
  /** Adaptive-p's target; its decay is `adaptiveDecay`. */
  adaptiveP: Toggle;
  adaptiveDecay: number;
  /** DRY's multiplier; base, allowed length and window below. */
  dry: Toggle;
  dryBase: number;
  dryAllowedLength: number;
  dryLastN: number;
  /** Stage order: llama.cpp's (temperature last) or Hugging Face's (temperature first). */
  order: keyof typeof STAGE_ORDER;
  penalties: PenaltyConfig;
  tau: number;
  eta: number;
  drafts: number;
  alpha: number;
  ngramWeights: number[];
  beams: number;
  lengthPenalty: number;
  earlyStopping: EarlyStopping;
}

export interface Settings extends StrategySettings {
  prompt: string;
  seed: number;
  /** "New seed on every run": each run first gets a fresh seed, written into the form. */
  reseed: boolean;
  /** The prompt is a user message, laid out by the model's chat template (Instruct models). */
  chat: boolean;
  maxTokens: number;
  /** Stop strings as the form shows them: quoted, comma-separated (`"\n\n", "User:"`). */
  stopText: string;
  /** Strategies of compare mode (2–4 run side by side on this prompt and seed). */
  compare: StrategySettings[];
}

export const MAX_COMPARE = 4;

/** A stage the crate's config leaves out is off here, at the value it takes when switched on. */
const toggle = (value: number | null, whenOn: number): Toggle => (value === null ? { on: false, value: whenOn } : { on: true, value });

// Defaults are the crate's (its sampler chain, and superposed decoding's k = 3 configuration), with
// what the page adds: values for the stages the crate leaves off, and Mirostat's τ. The crate's τ
// is llama.cpp's 5 bits, right for a program that calls it with its own model; the page starts
// from 2 bits because the model it loads first, SmolLM2 at T 0.8, averages about 2.5 bits, and
// at τ 5 μ would only climb and truncate nothing. The chart says so when a τ is out of reach.
export function defaultStrategy(): StrategySettings {
  const sampler = DEFAULT_SAMPLER_CONFIG;
  const dry = DEFAULT_DRY_CONFIG;
  return {
    strategy: "sample",
    temperature: sampler.temperature,
    topK: toggle(sampler.topK, 40),
    topP: toggle(sampler.topP, 0.95),
    minP: toggle(sampler.minP, 0.05),
    typicalP: toggle(sampler.typicalP, 0.9),
    // llama.cpp's defaults where it has them; HF's suggested ε for epsilon and eta.
    topNSigma: { on: false, value: 1 },
    xtc: { on: false, value: 0.5 },
    xtcThreshold: 0.1,
    epsilonCutoff: { on: false, value: 3e-4 },
    etaCutoff: { on: false, value: 3e-4 },
    dynamicTemperature: { on: false, value: 0.5 },
    dynamicExponent: 1,
    adaptiveP: { on: false, value: 0.5 },
    adaptiveDecay: 0.9,
    dry: { on: false, value: dry.multiplier },
    dryBase: dry.base,
    dryAllowedLength: dry.allowedLength,
    dryLastN: dry.lastN,
    order: "llama",
    penalties: { ...sampler.penalties },
    tau: 2,
    eta: DEFAULT_MIROSTAT_CONFIG.eta,
    drafts: DEFAULT_SUPERPOSED_CONFIG.drafts,
    alpha: DEFAULT_SUPERPOSED_CONFIG.alpha,
    ngramWeights: [...DEFAULT_SUPERPOSED_CONFIG.ngramWeights],
    beams: 4,
    lengthPenalty: 1,
    earlyStopping: "false",
  };
}

export function defaultSettings(): Settings {
  return {
    ...defaultStrategy(),
    prompt: "Once upon a time, there was a little",
    seed: 0,
    reseed: false,
    chat: false,
    maxTokens: 48,
    stopText: "",
    compare: [],
  };
}

/** What the Score view keeps in the URL: its two texts, their shared context, the colouring. */
export interface ScoreSettings {
  text: string;
  textB: string;
  context: string;
  mode: "surprise" | "rank";
}

/** What the Autocomplete view keeps in the URL. */
export interface AutocompleteSettings {
  /** Suggestions per set: superposed decoding's k. */
  drafts: number;
  /** Tokens per suggestion. */
  tokens: number;
  /** Whether a keystroke reuses the model's cache of the typed prefix. */
  reuse: boolean;
}

export interface ViewSettings {
  score: ScoreSettings;
  autocomplete: AutocompleteSettings;
}

export const AUTOCOMPLETE_LIMITS = { drafts: [2, 6], tokens: [1, 12] } as const;

/** `value` as a whole number within `[min, max]`; `fallback` when it is not a number. */
export function clampCount(value: number, [min, max]: readonly [number, number], fallback: number): number {
  return Number.isFinite(value) ? Math.min(max, Math.max(min, Math.round(value))) : fallback;
}

export function defaultViewSettings(): ViewSettings {
  return {
    score: { text: "The whale surfaced beside the boat, and the old sailor smiled at the sea.", textB: "", context: "", mode: "surprise" },
    autocomplete: { drafts: 3, tokens: 4, reuse: true },
  };
}

export function strategyOf(settings: StrategySettings): StrategySettings {
  const strategy = {} as Record<string, unknown>;
  for (const key of Object.keys(defaultStrategy())) strategy[key] = settings[key as keyof StrategySettings];
  return structuredClone(strategy as unknown as StrategySettings);
}

const on = (t: Toggle): number | null => (t.on ? t.value : null);

export function toConfig(s: StrategySettings, seed: number, maxTokens: number, stops: string[] = []): GenerateConfig {
  const sampler: SamplerConfig = {
    seed,
    temperature: s.temperature,
    topK: on(s.topK),
    topP: on(s.topP),
    minP: on(s.minP),
    typicalP: on(s.typicalP),
    topNSigma: on(s.topNSigma),
    xtc: s.xtc.on ? { probability: s.xtc.value, threshold: s.xtcThreshold } : null,
    epsilonCutoff: on(s.epsilonCutoff),
    etaCutoff: on(s.etaCutoff),
    dynamicTemperature: s.dynamicTemperature.on ? { range: s.dynamicTemperature.value, exponent: s.dynamicExponent } : null,
    mirostat: null,
    adaptiveP: s.adaptiveP.on ? { target: s.adaptiveP.value, decay: s.adaptiveDecay } : null,
    penalties: { ...s.penalties },
    dry: s.dry.on
      ? { multiplier: s.dry.value, base: s.dryBase, allowedLength: s.dryAllowedLength, lastN: s.dryLastN, sequenceBreakers: [...DEFAULT_DRY_CONFIG.sequenceBreakers] }
      : null,
    logitBias: [],
    order: [...STAGE_ORDER[s.order]],
    topAlternatives: 10,
  };
  switch (s.strategy) {
    case "greedy":
      // Truncation cannot change an argmax; leaving it out keeps `kept` honest (1).
      Object.assign(sampler, {
        temperature: 0,
        ...Object.fromEntries(TRUNCATIONS.map((key) => [key, null])),
        dynamicTemperature: null,
        adaptiveP: null,
      });
      break;
    case "mirostat1":
    case "mirostat2":
      // Truncation settings stay in, so that the crate's `ignoredSettings` names them.
      sampler.mirostat = { version: s.strategy === "mirostat1" ? 1 : 2, tau: s.tau, eta: s.eta };
      break;
    case "sample":
    case "superposed":
    case "beam":
      break;
  }
  const superposed =
    s.strategy === "superposed"
      ? { ...DEFAULT_SUPERPOSED_CONFIG, drafts: s.drafts, alpha: s.alpha, ngramOrders: [...NGRAM_ORDERS], ngramWeights: [...s.ngramWeights] }
      : null;
  return { maxTokens, stopTokens: null, stopStrings: [...stops], sampler, superposed };
}

/** Beam search's config: its own settings and the run's length; the sampler's play no part. */
export function beamConfig(s: StrategySettings, maxTokens: number): BeamConfig {
  const earlyStopping = s.earlyStopping === "never" ? "never" : s.earlyStopping === "true";
  return { beams: s.beams, maxTokens, lengthPenalty: s.lengthPenalty, earlyStopping, stopTokens: null };
}

/** The config's truncation settings: greedy leaves them out, and ignores them. */
const TRUNCATIONS = ["topK", "topP", "minP", "typicalP", "topNSigma", "xtc", "epsilonCutoff", "etaCutoff"] as const;

/** Settings a strategy ignores that the crate's Sampler does not report (it only knows
 *  Mirostat's): the form marks them. Names are the crate's config field names. */
export function ignoredByStrategy(s: StrategySettings): string[] {
  switch (s.strategy) {
    case "greedy":
      return ["temperature", ...TRUNCATIONS, "dynamicTemperature", "adaptiveP", "order"];
    case "superposed":
    case "beam":
      return ["temperature", ...TRUNCATIONS, "dynamicTemperature", "adaptiveP", "order", "penalties", "dry"];
    default:
      return [];
  }
}

const num = (x: number) => String(+x.toPrecision(4));

/** A short human label, e.g. "top-k 40 → top-p 0.95 → T 0.8". */
export function describe(s: StrategySettings): string {
  const pen = s.penalties;
  const penalties = [
    pen.repetition !== 1 ? `rep ${num(pen.repetition)}` : "",
    pen.presence !== 0 ? `pres ${num(pen.presence)}` : "",
    pen.frequency !== 0 ? `freq ${num(pen.frequency)}` : "",
    s.dry.on ? `DRY ${num(s.dry.value)}` : "",
  ].filter(Boolean);
  const withPenalties = (label: string) => (penalties.length ? `${label} + ${penalties.join(", ")}` : label);
  switch (s.strategy) {
    case "greedy":
      return withPenalties("greedy");
    case "mirostat1":
    case "mirostat2":
      return withPenalties(`Mirostat v${s.strategy === "mirostat1" ? 1 : 2} τ ${num(s.tau)} η ${num(s.eta)} T ${num(s.temperature)}`);
    case "superposed":
      return `superposed k ${s.drafts} α ${num(s.alpha)}`;
    case "beam":
      return `beam search k ${s.beams} length penalty ${num(s.lengthPenalty)}${s.earlyStopping === "false" ? "" : ` early stopping ${s.earlyStopping}`}`;
    case "sample": {
      // A stage the form has no field for is never set, so it is not named either.
      const names: Partial<Record<Stage, [string, Toggle]>> = {
        topK: ["top-k", s.topK],
        topP: ["top-p", s.topP],
        minP: ["min-p", s.minP],
        typical: ["typical", s.typicalP],
        topNSigma: ["top-nσ", s.topNSigma],
        xtc: ["XTC", s.xtc],
        epsilon: ["ε", s.epsilonCutoff],
        eta: ["η-cut", s.etaCutoff],
      };
      const parts = STAGE_ORDER[s.order].flatMap((stage) => {
        if (stage === "temperature") {
          const range = s.dynamicTemperature;
          return [range.on ? `T ${num(s.temperature)}±${num(range.value)}` : `T ${num(s.temperature)}`];
        }
        const [name, toggle] = names[stage] ?? [];
        return toggle?.on ? [`${name} ${num(toggle.value)}`] : [];
      });
      if (s.adaptiveP.on) parts.push(`adaptive-p ${num(s.adaptiveP.value)}`);
      return withPenalties(parts.join(" → "));
    }
  }
}

/** What the crate's sampler check cannot see before a run: the seed and the token count. */
/** The stop strings of the form's text: JSON strings separated by commas, so that a newline
 *  (`"\n"`), a comma or a leading space can be written. Null when the text is not that. */
export function stopStrings(text: string): string[] | null {
  if (text.trim() === "") return [];
  try {
    const list: unknown = JSON.parse(`[${text}]`);
    return Array.isArray(list) && list.every((x) => typeof x === "string") ? list : null;
  } catch {
    return null;
  }
}

/** The stop strings a run of `s` sends: none while the field is invalid (`checkBasics` refuses
 *  such a run). */
export function runStops(s: Settings): string[] {
  return stopStrings(s.stopText) ?? [];
}

export function checkBasics(s: Settings): string | null {
  if (!Number.isSafeInteger(s.seed) || s.seed < 0) return "Seed must be a whole number of at least 0.";
  if (!Number.isSafeInteger(s.maxTokens) || s.maxTokens < 1) return "Max tokens must be a whole number of at least 1.";
  if (s.prompt === "") return "Type a prompt first.";
  if (stopStrings(s.stopText) === null) return 'Stop strings must be quoted and separated by commas, e.g. "\\n\\n", "User:".';
  return null;
}
