// Settings ⇄ URL query, so that a link reproduces a run (same prompt, strategy and seed).
// Only values that differ from the defaults are written, to keep links short. Compare-mode
// strategies go in repeated `cmp` parameters, each one encoded with the same keys.
import {
  AUTOCOMPLETE_LIMITS,
  clampCount,
  defaultSettings,
  defaultViewSettings,
  defaultStrategy,
  MAX_COMPARE,
  NGRAM_ORDERS,
  STRATEGIES,
  type Settings,
  type StrategyKind,
  type StrategySettings,
  type Toggle,
  type ViewSettings,
} from "./settings";

type NumberKey =
  | "temperature"
  | "tau"
  | "eta"
  | "drafts"
  | "alpha"
  | "xtcThreshold"
  | "dynamicExponent"
  | "dryBase"
  | "dryAllowedLength"
  | "dryLastN"
  | "beams"
  | "lengthPenalty"
  | "adaptiveDecay";
type ToggleKey = "topK" | "topP" | "minP" | "typicalP" | "topNSigma" | "xtc" | "epsilonCutoff" | "etaCutoff" | "dynamicTemperature" | "adaptiveP" | "dry";
type PenaltyKey = keyof StrategySettings["penalties"];

const NUMBER_KEYS: [NumberKey, string][] = [
  ["temperature", "t"],
  ["tau", "tau"],
  ["eta", "eta"],
  ["drafts", "kd"],
  ["alpha", "a"],
  ["xtcThreshold", "xtct"],
  ["dynamicExponent", "dte"],
  ["dryBase", "dryb"],
  ["dryAllowedLength", "drya"],
  ["dryLastN", "dryn"],
  ["beams", "kb"],
  ["lengthPenalty", "lp"],
  ["adaptiveDecay", "apd"],
];
const TOGGLE_KEYS: [ToggleKey, string][] = [
  ["topK", "k"],
  ["topP", "tp"],
  ["minP", "mp"],
  ["typicalP", "ty"],
  ["topNSigma", "ns"],
  ["xtc", "xtc"],
  ["epsilonCutoff", "eps"],
  ["etaCutoff", "etac"],
  ["dynamicTemperature", "dt"],
  ["adaptiveP", "ap"],
  ["dry", "dry"],
];
const PENALTY_KEYS: [PenaltyKey, string][] = [
  ["repetition", "rep"],
  ["presence", "pres"],
  ["frequency", "freq"],
  ["lastN", "lastN"],
];

// A switched-off toggle keeps its value after a "!", e.g. k=!40.
const writeToggle = (t: Toggle) => (t.on ? String(t.value) : `!${t.value}`);
function readToggle(text: string, fallback: Toggle): Toggle {
  const on = !text.startsWith("!");
  const value = Number(on ? text : text.slice(1));
  return Number.isFinite(value) && text !== "" && text !== "!" ? { on, value } : fallback;
}

function readNumber(text: string | null, fallback: number): number {
  if (text === null || text.trim() === "") return fallback;
  const value = Number(text);
  return Number.isFinite(value) ? value : fallback;
}

function writeStrategy(s: StrategySettings, params: URLSearchParams): void {
  const d = defaultStrategy();
  if (s.strategy !== d.strategy) params.set("s", s.strategy);
  for (const [key, name] of NUMBER_KEYS) if (s[key] !== d[key]) params.set(name, String(s[key]));
  for (const [key, name] of TOGGLE_KEYS) {
    if (s[key].on !== d[key].on || s[key].value !== d[key].value) params.set(name, writeToggle(s[key]));
  }
  for (const [key, name] of PENALTY_KEYS) {
    if (s.penalties[key] !== d.penalties[key]) params.set(name, String(s.penalties[key]));
  }
  if (s.order !== d.order) params.set("o", s.order);
  if (s.earlyStopping !== d.earlyStopping) params.set("es", s.earlyStopping);
  if (s.ngramWeights.join() !== d.ngramWeights.join()) params.set("w", s.ngramWeights.join(","));
}

function readStrategy(params: URLSearchParams): StrategySettings {
  const s = defaultStrategy();
  const kind = params.get("s");
  if (STRATEGIES.some((x) => x.kind === kind)) s.strategy = kind as StrategyKind;
  for (const [key, name] of NUMBER_KEYS) s[key] = readNumber(params.get(name), s[key]);
  for (const [key, name] of TOGGLE_KEYS) {
    const text = params.get(name);
    if (text !== null) s[key] = readToggle(text, s[key]);
  }
  for (const [key, name] of PENALTY_KEYS) s.penalties[key] = readNumber(params.get(name), s.penalties[key]);
  if (params.get("o") === "hf") s.order = "hf";
  const earlyStopping = params.get("es");
  if (earlyStopping === "true" || earlyStopping === "never") s.earlyStopping = earlyStopping;
  const weights = params.get("w")?.split(",").map(Number);
  if (weights && weights.length === NGRAM_ORDERS.length && weights.every(Number.isFinite)) s.ngramWeights = weights;
  return s;
}

// The Score and Autocomplete views' keys.
function writeViews(v: ViewSettings, params: URLSearchParams): void {
  const d = defaultViewSettings();
  if (v.score.text !== d.score.text) params.set("st", v.score.text);
  if (v.score.textB !== d.score.textB) params.set("st2", v.score.textB);
  if (v.score.context !== d.score.context) params.set("sc", v.score.context);
  if (v.score.mode !== d.score.mode) params.set("sm", v.score.mode);
  if (v.autocomplete.drafts !== d.autocomplete.drafts) params.set("ak", String(v.autocomplete.drafts));
  if (v.autocomplete.tokens !== d.autocomplete.tokens) params.set("an", String(v.autocomplete.tokens));
  if (v.autocomplete.reuse !== d.autocomplete.reuse) params.set("ar", v.autocomplete.reuse ? "1" : "0");
}

/** A whole number from `text`, clamped to `limits`. */
function readCount(text: string | null, limits: readonly [number, number], fallback: number): number {
  return clampCount(readNumber(text, fallback), limits, fallback);
}

export function viewsFromQuery(query: string): ViewSettings {
  const params = new URLSearchParams(query);
  const d = defaultViewSettings();
  return {
    score: {
      text: params.get("st") ?? d.score.text,
      textB: params.get("st2") ?? d.score.textB,
      context: params.get("sc") ?? d.score.context,
      mode: params.get("sm") === "rank" ? "rank" : d.score.mode,
    },
    autocomplete: {
      drafts: readCount(params.get("ak"), AUTOCOMPLETE_LIMITS.drafts, d.autocomplete.drafts),
      tokens: readCount(params.get("an"), AUTOCOMPLETE_LIMITS.tokens, d.autocomplete.tokens),
      reuse: params.get("ar") !== "0",
    },
  };
}

/** The query string for `settings` and the views' (without "?"); `extra` (e.g. model=tiny) goes first. */
export function toQuery(settings: Settings, extra: Record<string, string> = {}, views = defaultViewSettings()): string {
  const d = defaultSettings();
  const params = new URLSearchParams(extra);
  if (settings.prompt !== d.prompt) params.set("p", settings.prompt);
  if (settings.seed !== d.seed) params.set("seed", String(settings.seed));
  if (settings.reseed !== d.reseed) params.set("rs", settings.reseed ? "1" : "0");
  if (settings.chat !== d.chat) params.set("ch", settings.chat ? "1" : "0");
  if (settings.maxTokens !== d.maxTokens) params.set("n", String(settings.maxTokens));
  if (settings.stopText !== d.stopText) params.set("stop", settings.stopText);
  writeStrategy(settings, params);
  for (const entry of settings.compare) {
    const inner = new URLSearchParams();
    writeStrategy(entry, inner);
    // "s=sample" marks an all-default entry, which would otherwise be an empty string.
    params.append("cmp", inner.toString() || `s=${entry.strategy}`);
  }
  writeViews(views, params);
  return params.toString();
}

export function fromQuery(query: string): Settings {
  const params = new URLSearchParams(query);
  const d = defaultSettings();
  const seed = readNumber(params.get("seed"), d.seed);
  return {
    ...readStrategy(params),
    prompt: params.get("p") ?? d.prompt,
    // The crate takes a u64 seed and a usize count: keep them non-negative integers.
    seed: Number.isSafeInteger(seed) && seed >= 0 ? seed : d.seed,
    reseed: params.get("rs") === "1",
    chat: params.get("ch") === "1",
    maxTokens: Math.max(1, Math.round(readNumber(params.get("n"), d.maxTokens))),
    stopText: params.get("stop") ?? d.stopText,
    compare: params
      .getAll("cmp")
      .slice(0, MAX_COMPARE)
      .map((entry) => readStrategy(new URLSearchParams(entry))),
  };
}
