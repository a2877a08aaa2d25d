// The settings form: prompt, strategy, seed, max tokens and every parameter, generated from one
// table of fields so that reading, writing and labelling cannot drift apart. Values the current
// strategy ignores stay editable but are marked, with a sentence saying which and why.
import {
  type EarlyStopping,
  NGRAM_ORDERS,
  randomSeed,
  STAGE_HELP,
  STRATEGIES,
  STRATEGY_HELP,
  strategyOf,
  type Settings,
  type StrategyKind,
  type StrategySettings,
} from "./settings";

type Group = "sampling" | "penalties" | "mirostat" | "superposed" | "beam";

interface Field {
  /** Path into StrategySettings, e.g. "topK" (a toggle), "penalties.repetition", "ngramWeights.2". */
  path: string;
  label: string;
  group: Group;
  /** The crate's config name, to match `ignoredSettings`. */
  setting: string;
  step: number;
  min?: number;
  max?: number;
  toggle?: boolean;
  integer?: boolean;
  help?: string;
}

const FIELDS: Field[] = [
  { path: "temperature", label: "Temperature", group: "sampling", setting: "temperature", step: 0.05, min: 0, help: STAGE_HELP.temperature },
  { path: "topK", label: "Top-k", group: "sampling", setting: "topK", step: 1, min: 1, toggle: true, integer: true, help: STAGE_HELP.topK },
  { path: "topP", label: "Top-p", group: "sampling", setting: "topP", step: 0.01, min: 0, max: 1, toggle: true, help: STAGE_HELP.topP },
  { path: "minP", label: "Min-p", group: "sampling", setting: "minP", step: 0.01, min: 0, max: 1, toggle: true, help: STAGE_HELP.minP },
  { path: "typicalP", label: "Typical", group: "sampling", setting: "typicalP", step: 0.01, min: 0, max: 1, toggle: true, help: STAGE_HELP.typicalP },
  { path: "topNSigma", label: "Top-nσ", group: "sampling", setting: "topNSigma", step: 0.1, min: 0, toggle: true, help: STAGE_HELP.topNSigma },
  { path: "epsilonCutoff", label: "Epsilon ε", group: "sampling", setting: "epsilonCutoff", step: 1e-4, min: 0, max: 1, toggle: true, help: STAGE_HELP.epsilonCutoff },
  { path: "etaCutoff", label: "Eta ε", group: "sampling", setting: "etaCutoff", step: 1e-4, min: 0, max: 1, toggle: true, help: STAGE_HELP.etaCutoff },
  { path: "xtc", label: "XTC chance", group: "sampling", setting: "xtc", step: 0.05, min: 0, max: 1, toggle: true, help: STAGE_HELP.xtc },
  { path: "xtcThreshold", label: "XTC threshold", group: "sampling", setting: "xtc", step: 0.01, min: 0, max: 0.5 },
  { path: "dynamicTemperature", label: "Dynamic T range", group: "sampling", setting: "dynamicTemperature", step: 0.05, min: 0, toggle: true, help: STAGE_HELP.dynamicTemperature },
  { path: "dynamicExponent", label: "Dynamic T exponent", group: "sampling", setting: "dynamicTemperature", step: 0.1, min: 0 },
  { path: "adaptiveP", label: "Adaptive-p target", group: "sampling", setting: "adaptiveP", step: 0.05, min: 0, max: 1, toggle: true, help: STAGE_HELP.adaptiveP },
  { path: "adaptiveDecay", label: "Adaptive-p decay", group: "sampling", setting: "adaptiveP", step: 0.01, min: 0, max: 0.99 },
  { path: "penalties.repetition", label: "Repetition", group: "penalties", setting: "penalties", step: 0.05, min: 0, help: "1 = off" },
  { path: "penalties.presence", label: "Presence", group: "penalties", setting: "penalties", step: 0.1 },
  { path: "penalties.frequency", label: "Frequency", group: "penalties", setting: "penalties", step: 0.1 },
  { path: "penalties.lastN", label: "Last n tokens", group: "penalties", setting: "penalties", step: 1, min: 0, integer: true },
  { path: "dry", label: "DRY multiplier", group: "penalties", setting: "dry", step: 0.05, min: 0, toggle: true, help: STAGE_HELP.dry },
  { path: "dryBase", label: "DRY base", group: "penalties", setting: "dry", step: 0.05, min: 1 },
  { path: "dryAllowedLength", label: "DRY allowed length", group: "penalties", setting: "dry", step: 1, min: 0, integer: true },
  { path: "dryLastN", label: "DRY last n tokens", group: "penalties", setting: "dry", step: 1, min: 0, integer: true },
  { path: "tau", label: "τ target surprise (bits)", group: "mirostat", setting: "mirostat.tau", step: 0.5, min: 0 },
  { path: "eta", label: "η learning rate", group: "mirostat", setting: "mirostat.eta", step: 0.05, min: 0 },
  { path: "drafts", label: "k drafts", group: "superposed", setting: "superposed.drafts", step: 1, min: 1, max: 16, integer: true },
  { path: "alpha", label: "α n-gram weight", group: "superposed", setting: "superposed.alpha", step: 0.02, min: 0, max: 1, help: "0 = model only" },
  ...NGRAM_ORDERS.map((order, i): Field => ({
    path: `ngramWeights.${i}`,
    label: `${order}-gram weight`,
    group: "superposed",
    setting: "superposed.ngramWeights",
    step: 0.01,
    min: 0,
  })),
  { path: "beams", label: "k beams", group: "beam", setting: "beams", step: 1, min: 1, max: 16, integer: true },
  { path: "lengthPenalty", label: "Length penalty", group: "beam", setting: "lengthPenalty", step: 0.1, help: "above 0 favours longer hypotheses" },
];

/** Samplers and penalties shape one token's distribution; superposed decoding and beam search
 *  replace them. */
const samples = (s: StrategyKind) => s !== "superposed" && s !== "beam";

const GROUPS: { group: Group; legend: string; help?: string; shown: (s: StrategyKind) => boolean }[] = [
  { group: "sampling", legend: "Sampling chain", shown: samples },
  { group: "penalties", legend: "Penalties", help: STAGE_HELP.penalties, shown: samples },
  { group: "mirostat", legend: "Mirostat", shown: (s) => s === "mirostat1" || s === "mirostat2" },
  { group: "superposed", legend: "Superposed decoding", shown: (s) => s === "superposed" },
  { group: "beam", legend: "Beam search", shown: (s) => s === "beam" },
];

const NAMES: Record<string, string> = {
  temperature: "temperature",
  topK: "top-k",
  topP: "top-p",
  minP: "min-p",
  typicalP: "typical",
  topNSigma: "top-nσ",
  xtc: "XTC",
  epsilonCutoff: "epsilon",
  etaCutoff: "eta",
  dynamicTemperature: "dynamic temperature",
  adaptiveP: "adaptive-p",
  dry: "DRY",
  order: "the stage order",
  penalties: "penalties",
  stopStrings: "stop strings",
};

/** The form field of a crate error's setting, where the form names it otherwise. */
const ERROR_PATHS: Record<string, string> = {
  "xtc.probability": "xtc",
  "xtc.threshold": "xtcThreshold",
  "dynamicTemperature.range": "dynamicTemperature",
  "dynamicTemperature.exponent": "dynamicExponent",
  "adaptiveP.target": "adaptiveP",
  "adaptiveP.decay": "adaptiveDecay",
  "dry.multiplier": "dry",
  "dry.base": "dryBase",
  "dry.allowedLength": "dryAllowedLength",
};

/** Reads `path` of a strategy: a number, or a {on, value} toggle. */
function get(s: StrategySettings, path: string): unknown {
  return path.split(".").reduce<unknown>((v, key) => (v as Record<string, unknown>)[key], s);
}

function set(s: StrategySettings, path: string, value: unknown): void {
  const keys = path.split(".");
  const last = keys.pop() as string;
  const parent = keys.reduce<unknown>((v, key) => (v as Record<string, unknown>)[key], s) as Record<string, unknown>;
  parent[last] = value;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text = ""): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

const idOf = (path: string) => `f-${path.replace(/\./g, "-")}`;

export class Controls {
  readonly prompt: HTMLTextAreaElement;
  readonly strategy: HTMLSelectElement;
  readonly seed: HTMLInputElement;
  readonly maxTokens: HTMLInputElement;
  readonly stopText: HTMLInputElement;
  private readonly reseed: HTMLInputElement;
  readonly chat: HTMLInputElement;
  private readonly strategyHelp: HTMLElement;
  private readonly order: HTMLSelectElement;
  private readonly earlyStopping: HTMLSelectElement;
  private readonly note: HTMLElement;
  private readonly error: HTMLElement;
  private compare: StrategySettings[] = [];

  constructor(private readonly form: HTMLFormElement, private readonly onChange: () => void) {
    this.prompt = form.querySelector("#prompt") as HTMLTextAreaElement;
    this.seed = form.querySelector("#seed") as HTMLInputElement;
    this.reseed = form.querySelector("#reseed") as HTMLInputElement;
    this.chat = form.querySelector("#chat") as HTMLInputElement;
    this.strategyHelp = form.querySelector("#strategy-help") as HTMLElement;
    (form.querySelector("#new-seed") as HTMLButtonElement).addEventListener("click", () => this.newSeed());
    this.maxTokens = form.querySelector("#maxTokens") as HTMLInputElement;
    this.stopText = form.querySelector("#stopText") as HTMLInputElement;
    this.strategy = form.querySelector("#strategy") as HTMLSelectElement;
    for (const { kind, label } of STRATEGIES) this.strategy.append(element("option", { value: kind }, label));
    const groups = form.querySelector("#parameter-groups") as HTMLElement;
    this.order = element("select", { id: "f-order" });
    this.order.append(element("option", { value: "llama" }, "llama.cpp: truncate, then temperature"), element("option", { value: "hf" }, "Hugging Face: temperature first"));
    this.earlyStopping = element("select", { id: "f-earlyStopping" });
    this.earlyStopping.append(
      element("option", { value: "false" }, "when no beam can do better (false)"),
      element("option", { value: "true" }, "once k hypotheses have finished (true)"),
      element("option", { value: "never" }, "judged at the longest length (never)"),
    );
    for (const { group, legend, help } of GROUPS) {
      const fieldset = element("fieldset", { "data-group": group });
      fieldset.append(element("legend", {}, legend));
      if (help) fieldset.append(element("p", { class: "help" }, help));
      for (const field of FIELDS.filter((f) => f.group === group)) fieldset.append(this.fieldRow(field));
      if (group === "sampling") {
        const row = element("div", { class: "field", "data-setting": "order" });
        row.append(element("label", { for: "f-order" }, "Stage order"), this.order);
        fieldset.append(row);
      }
      if (group === "beam") {
        const row = element("div", { class: "field", "data-setting": "earlyStopping" });
        row.append(element("label", { for: "f-earlyStopping" }, "Early stopping"), this.earlyStopping);
        fieldset.append(row);
      }
      groups.append(fieldset);
    }
    this.note = form.querySelector("#ignored-note") as HTMLElement;
    this.error = form.querySelector("#param-error") as HTMLElement;
    form.addEventListener("input", onChange);
    form.addEventListener("change", onChange);
  }

  private fieldRow(field: Field): HTMLElement {
    const row = element("div", { class: "field", "data-setting": field.setting });
    const input = element("input", { id: idOf(field.path), type: "number", step: String(field.step), inputmode: "decimal" });
    if (field.min !== undefined) input.min = String(field.min);
    if (field.max !== undefined) input.max = String(field.max);
    if (field.toggle) {
      const box = element("input", { id: `${idOf(field.path)}-on`, type: "checkbox" });
      const label = element("label", { for: box.id }, field.label);
      input.setAttribute("aria-label", `${field.label} value`);
      // The value is only editable while its stage is on.
      box.addEventListener("change", () => (input.disabled = !box.checked));
      row.append(box, label, input);
    } else {
      row.append(element("label", { for: input.id }, field.label), input);
    }
    if (field.help) row.append(element("span", { class: "help" }, field.help));
    return row;
  }

  private input(path: string): HTMLInputElement {
    return this.form.querySelector(`#${idOf(path)}`) as HTMLInputElement;
  }

  read(): Settings {
    const s = strategyOf({ ...this.emptyStrategy(), strategy: this.strategy.value as StrategyKind });
    for (const field of FIELDS) {
      const input = this.input(field.path);
      // An empty or malformed box gives NaN, which the crate refuses with a message naming
      // the field: that message is the error shown.
      const value = input.value.trim() === "" ? Number.NaN : Number(input.value);
      if (field.toggle) {
        const on = (this.form.querySelector(`#${idOf(field.path)}-on`) as HTMLInputElement).checked;
        set(s, field.path, { on, value });
      } else {
        set(s, field.path, value);
      }
    }
    s.order = this.order.value === "hf" ? "hf" : "llama";
    s.earlyStopping = this.earlyStopping.value as EarlyStopping;
    return {
      ...s,
      prompt: this.prompt.value,
      seed: Number(this.seed.value),
      reseed: this.reseed.checked,
      chat: this.chat.checked,
      maxTokens: Number(this.maxTokens.value),
      stopText: this.stopText.value,
      compare: this.compare.map(strategyOf),
    };
  }

  write(settings: Settings): void {
    this.prompt.value = settings.prompt;
    this.seed.value = String(settings.seed);
    this.reseed.checked = settings.reseed;
    this.chat.checked = settings.chat;
    this.maxTokens.value = String(settings.maxTokens);
    this.stopText.value = settings.stopText;
    this.strategy.value = settings.strategy;
    this.order.value = settings.order;
    this.earlyStopping.value = settings.earlyStopping;
    for (const field of FIELDS) {
      const value = get(settings, field.path);
      const input = this.input(field.path);
      if (field.toggle) {
        const toggle = value as { on: boolean; value: number };
        (this.form.querySelector(`#${idOf(field.path)}-on`) as HTMLInputElement).checked = toggle.on;
        input.value = String(toggle.value);
        input.disabled = !toggle.on;
      } else {
        input.value = String(value);
      }
    }
    this.compare = settings.compare.map(strategyOf);
    this.showGroups(settings.strategy);
  }

  setCompare(entries: StrategySettings[]): void {
    this.compare = entries.map(strategyOf);
  }

  /** A fresh random seed in the form, as if typed (the URL follows). */
  newSeed(): void {
    this.seed.value = String(randomSeed(Number(this.seed.value)));
    this.onChange();
  }

  /** Shows the strategy's parameter groups and its one-line description. */
  showGroups(strategy: StrategyKind): void {
    this.strategyHelp.textContent = STRATEGY_HELP[strategy];
    for (const { group, shown } of GROUPS) {
      const fieldset = this.form.querySelector(`fieldset[data-group="${group}"]`) as HTMLFieldSetElement;
      fieldset.hidden = !shown(strategy);
    }
  }

  /** Marks the settings `ignored` (crate names) and says who ignores them. */
  showIgnored(ignored: readonly string[], strategy: StrategyKind): void {
    for (const row of this.form.querySelectorAll<HTMLElement>("[data-setting]")) {
      row.classList.toggle("ignored", ignored.includes(row.dataset.setting ?? ""));
    }
    const names = [...new Set(ignored.map((name) => NAMES[name] ?? name))];
    const who = { greedy: "Greedy always takes the most likely token", mirostat1: "Mirostat v1 chooses its own truncation", mirostat2: "Mirostat v2 chooses its own truncation", superposed: "Superposed decoding replaces the sampler chain", beam: "Beam search replaces the sampler chain", sample: "This chain" }[strategy];
    this.note.textContent = names.length ? `${who}: it ignores ${names.join(", ")}.` : "";
    this.note.hidden = names.length === 0;
  }

  /** Shows a message; when it names a setting (the crate's messages start with its path,
   *  e.g. "topP must be in (0, 1]"), that input is marked invalid too. */
  showError(message: string | null): void {
    this.error.textContent = message ?? "";
    this.error.hidden = message === null;
    for (const input of this.form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    const input = message === null ? null : this.inputNamed(message);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-errormessage", this.error.id);
    }
  }

  private inputNamed(message: string): HTMLElement | null {
    const name = /(?:^|: )([A-Za-z.]+) /.exec(message.replace(/^Invalid parameter: (invalid config: )?/, ": "))?.[1];
    if (!name) return null;
    if (name === "maxTokens" || name === "seed") return this.form.querySelector(`#${name}`);
    if (name === "stopStrings") return this.stopText;
    const path = ERROR_PATHS[name] ?? name.replace(/^(superposed|mirostat)\./, "").replace(/^ngramWeights$/, "ngramWeights.0");
    return this.form.querySelector(`#${idOf(path)}`);
  }

  private emptyStrategy(): StrategySettings {
    return {
      strategy: "sample",
      temperature: 0,
      topK: { on: false, value: 0 },
      topP: { on: false, value: 0 },
      minP: { on: false, value: 0 },
      typicalP: { on: false, value: 0 },
      topNSigma: { on: false, value: 0 },
      xtc: { on: false, value: 0 },
      xtcThreshold: 0,
      epsilonCutoff: { on: false, value: 0 },
      etaCutoff: { on: false, value: 0 },
      dynamicTemperature: { on: false, value: 0 },
      dynamicExponent: 0,
      adaptiveP: { on: false, value: 0 },
      adaptiveDecay: 0,
      dry: { on: false, value: 0 },
      dryBase: 0,
      dryAllowedLength: 0,
      dryLastN: 0,
      order: "llama",
      penalties: { lastN: 0, repetition: 1, presence: 0, frequency: 0 },
      tau: 0,
      eta: 0,
      drafts: 0,
      alpha: 0,
      ngramWeights: NGRAM_ORDERS.map(() => 0),
      beams: 0,
      lengthPenalty: 0,
      earlyStopping: "false",
    };
  }
}
