// The Autocomplete view, superposed decoding's use case: as the user types, one superposed run
// proposes k short drafts, shown as suggestions; Tab or a click inserts one. A keystroke cancels
// the work in flight. Each set shows its latency and what k nucleus runs of the same length
// cost on the same text. Unless switched off, the model's cache keeps the typed prefix
// (reusePrefix), so a keystroke feeds its new tokens, not the whole text again.
import { DEFAULT_SUPERPOSED_CONFIG } from "decoding-playground";
import type { EngineClient, RunResult } from "./client";
import type { FinalDraft, GenerateConfig } from "./protocol";
import { AUTOCOMPLETE_LIMITS, clampCount, defaultStrategy, toConfig, type AutocompleteSettings } from "./settings";

const DEBOUNCE_MS = 250;

/** The superposed config of a suggestion set, and the nucleus (top-p 0.9) run it is timed against. */
export function suggestionConfigs(drafts: number, tokens: number, alpha: number): { superposed: GenerateConfig; nucleus: (seed: number) => GenerateConfig } {
  const superposed = toConfig({ ...defaultStrategy(), strategy: "superposed", drafts, alpha }, 0, tokens);
  const sample = toConfig(defaultStrategy(), 0, tokens);
  const nucleus = (seed: number): GenerateConfig => ({
    ...sample,
    sampler: { ...sample.sampler, seed, temperature: 1, topK: null, topP: 0.9, minP: null, typicalP: null },
  });
  return { superposed, nucleus };
}

export class AutocompleteView {
  private readonly box: HTMLTextAreaElement;
  private readonly list: HTMLElement;
  private readonly status: HTMLElement;
  private readonly drafts: HTMLInputElement;
  private readonly tokens: HTMLInputElement;
  private readonly reuse: HTMLInputElement;
  private suggestions: FinalDraft[] = [];
  private timer = 0;
  /** Bumped by every keystroke: work for an older text stops at its next await. */
  private seq = 0;
  private inflight: Promise<RunResult> | null = null;
  /** Whether a model is loaded and no other run is going (the page says). */
  ready = false;
  /** Whether the model has an n-gram store: without one, α is 0 (the model alone). */
  hasNgrams = () => true;
  /** Called when a setting the URL keeps changes. */
  onChange: () => void = () => {};

  constructor(root: HTMLElement, private readonly client: EngineClient) {
    this.box = root.querySelector("#autocomplete-text") as HTMLTextAreaElement;
    this.list = root.querySelector("#autocomplete-suggestions") as HTMLElement;
    this.status = root.querySelector("#autocomplete-status") as HTMLElement;
    this.drafts = root.querySelector("#autocomplete-drafts") as HTMLInputElement;
    this.tokens = root.querySelector("#autocomplete-tokens") as HTMLInputElement;
    this.reuse = root.querySelector("#autocomplete-reuse") as HTMLInputElement;
    for (const input of [this.drafts, this.tokens, this.reuse]) {
      input.addEventListener("change", () => {
        this.settings = this.settings; // clamps what was typed
        this.onChange();
        if (this.box.value.trim() !== "") this.schedule();
      });
    }
    this.box.addEventListener("input", () => this.schedule());
    this.box.addEventListener("keydown", (e) => {
      if (e.key === "Tab" && !e.shiftKey && this.suggestions.length > 0) {
        e.preventDefault();
        this.accept(0);
      }
    });
  }

  get settings(): AutocompleteSettings {
    const count = (input: HTMLInputElement, limits: readonly [number, number]) => clampCount(Number(input.value), limits, limits[0]);
    return { drafts: count(this.drafts, AUTOCOMPLETE_LIMITS.drafts), tokens: count(this.tokens, AUTOCOMPLETE_LIMITS.tokens), reuse: this.reuse.checked };
  }

  set settings(s: AutocompleteSettings) {
    this.drafts.value = String(s.drafts);
    this.tokens.value = String(s.tokens);
    this.reuse.checked = s.reuse;
  }

  /** Stops any suggestion run and waits for it, so that another run can start. */
  async idle(): Promise<void> {
    this.seq += 1;
    window.clearTimeout(this.timer);
    if (this.inflight) {
      this.client.stop();
      await this.inflight.catch(() => undefined);
    }
  }

  private schedule(): void {
    this.seq += 1;
    window.clearTimeout(this.timer);
    if (this.inflight) this.client.stop();
    this.status.dataset.state = "waiting";
    this.timer = window.setTimeout(() => void this.suggest(), DEBOUNCE_MS);
  }

  private accept(i: number): void {
    const draft = this.suggestions[i];
    if (!draft) return;
    this.box.value += draft.text;
    this.box.focus();
    this.show([]);
    this.schedule();
  }

  private async run(prompt: string, config: GenerateConfig, reuse: boolean): Promise<RunResult> {
    this.inflight = this.client.run(prompt, config, () => {}, { reusePrefix: reuse });
    try {
      return await this.inflight;
    } finally {
      this.inflight = null;
    }
  }

  private async suggest(): Promise<void> {
    const seq = this.seq;
    const text = this.box.value;
    if (!this.ready || text.trim() === "") {
      this.show([]);
      this.status.dataset.state = "idle";
      this.status.textContent = this.ready ? "Type to get suggestions." : "Load a model to get suggestions.";
      return;
    }
    await this.inflight?.catch(() => undefined);
    if (seq !== this.seq) return;
    const { drafts, tokens, reuse } = this.settings;
    const { superposed, nucleus } = suggestionConfigs(drafts, tokens, this.hasNgrams() ? DEFAULT_SUPERPOSED_CONFIG.alpha : 0);
    this.status.dataset.state = "running";
    try {
      const t0 = performance.now();
      const result = await this.run(text, superposed, reuse);
      if (result.cancelled || seq !== this.seq) return;
      const superposedMs = performance.now() - t0;
      const last = result.steps.at(-1);
      this.show(last?.kind === "drafts" ? (last.drafts ?? []) : []);
      this.status.dataset.state = "timing";
      this.status.textContent = `${this.suggestions.length} suggestions in ${superposedMs.toFixed(0)} ms (one superposed run); timing ${drafts} nucleus runs…`;
      // As many suggestions from separate nucleus runs, for comparison.
      const t1 = performance.now();
      for (let seed = 0; seed < drafts; seed++) {
        const run = await this.run(text, nucleus(seed), reuse);
        if (run.cancelled || seq !== this.seq) return;
      }
      const nucleusMs = performance.now() - t1;
      this.status.dataset.state = "done";
      this.status.textContent = `${this.suggestions.length} suggestions in ${superposedMs.toFixed(0)} ms (one superposed run); ${drafts} nucleus runs took ${nucleusMs.toFixed(0)} ms (${(nucleusMs / superposedMs).toFixed(1)}×)`;
    } catch (error) {
      if (seq !== this.seq) return;
      this.status.dataset.state = "error";
      this.status.textContent = `No suggestions: ${(error as Error).message}`;
    }
  }

  private show(drafts: FinalDraft[]): void {
    this.suggestions = drafts;
    this.list.replaceChildren(
      ...drafts.map((draft, i) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "suggestion";
        button.textContent = draft.text;
        button.title = i === 0 ? "Tab or click to insert" : "Click to insert";
        button.addEventListener("click", () => this.accept(i));
        return button;
      }),
    );
    this.list.dataset.count = String(drafts.length);
  }
}
