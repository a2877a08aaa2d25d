// Compare mode: 2–4 strategies run one after another in the one worker, on the same prompt and
// seed (one uniform draw per step whatever the strategy, so they share their randomness). Side
// by side columns, the running perplexities overlaid, wall time and tok/s for each.
import { Chart, compareChartData } from "./charts";
import type { BeamResult, EngineClient, RunResult } from "./client";
import type { TokenStep } from "./protocol";
import { beamConfig, defaultStrategy, describe, MAX_COMPARE, toConfig, type StrategySettings } from "./settings";
import { TokenView } from "./tokens";
import { renderFinals, renderHypotheses } from "./tree";

export interface CompareRun {
  label: string;
  entry: StrategySettings;
  result: RunResult | null;
  /** A beam search's, in place of `result`. */
  beams: BeamResult | null;
  error: string | null;
}

/** The demonstration the page is for: Mirostat holding surprise near τ next to greedy and
 *  top-k 5. τ is 2 bits because Mirostat can only truncate: SmolLM2 at T = 1 averages ~2.7 bits
 *  on stories unaided, and with llama.cpp's τ = 5 μ just climbs (10 → 24 bits in 64 tokens)
 *  while nothing is cut; at τ = 2 the realised surprise averages ~1.9 bits. */
export function presetEntries(): StrategySettings[] {
  const base = defaultStrategy();
  const off = { on: false, value: 0 };
  return [
    { ...base, strategy: "greedy" },
    { ...base, strategy: "sample", temperature: 1, topK: { on: true, value: 5 }, topP: { ...base.topP, on: false } },
    { ...base, strategy: "mirostat2", temperature: 1, tau: 2, eta: 0.1, topK: { ...off, value: 40 }, topP: { ...off, value: 0.95 } },
  ];
}

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, className = "", text = "") => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
};

export class CompareView {
  private readonly list: HTMLElement;
  private readonly columns: HTMLElement;
  private readonly note: HTMLElement;
  readonly chart: Chart;
  runs: CompareRun[] = [];
  entries: StrategySettings[] = [];
  onEntriesChange: (entries: StrategySettings[]) => void = () => {};

  constructor(root: HTMLElement) {
    this.list = root.querySelector("#compare-list") as HTMLElement;
    this.columns = root.querySelector("#compare-columns") as HTMLElement;
    this.note = root.querySelector("#compare-note") as HTMLElement;
    this.chart = new Chart(root.querySelector("#compare-chart") as HTMLElement, 240);
  }

  setEntries(entries: StrategySettings[]): void {
    this.entries = entries.slice(0, MAX_COMPARE);
    this.list.replaceChildren(
      ...this.entries.map((entry, i) => {
        const item = el("li", "chip");
        item.append(el("span", "", describe(entry)));
        const remove = el("button", "small", "×");
        remove.type = "button";
        remove.setAttribute("aria-label", `Remove ${describe(entry)} from the comparison`);
        remove.addEventListener("click", () => {
          this.setEntries(this.entries.filter((_, j) => j !== i));
          this.onEntriesChange(this.entries);
        });
        item.append(remove);
        return item;
      }),
    );
    if (this.entries.length === 0) this.list.append(el("li", "muted", "No strategies yet: add the current one, or use the preset."));
  }

  /** Runs every entry in turn; `shouldStop` is checked between runs (Stop ends them all). */
  async run(client: EngineClient, prompt: string, seed: number, maxTokens: number, shouldStop: () => boolean, chat = false, stops: string[] = []): Promise<CompareRun[]> {
    this.runs = this.entries.map((entry) => ({ label: describe(entry), entry, result: null, beams: null, error: null }));
    this.columns.replaceChildren();
    this.columns.style.setProperty("--columns", String(this.runs.length));
    this.chart.clear();
    const live: TokenStep[][] = this.runs.map(() => []);
    const redraw = () => this.chart.set(compareChartData(this.runs.map((r, i) => ({ label: r.label, steps: live[i] ?? [] }))));
    for (const [i, run] of this.runs.entries()) {
      const column = el("section", "compare-column");
      column.dataset.column = String(i);
      const head = el("h3", "", run.label);
      const stats = el("p", "compare-stats", "waiting…");
      const body = el("div", "stream-wrap");
      const stream = el("div");
      body.append(stream);
      column.append(head, stats, body);
      this.columns.append(column);
      if (shouldStop()) {
        stats.textContent = "not run (stopped)";
        continue;
      }
      const tokens = new TokenView(stream);
      tokens.clear();
      stats.textContent = "running…";
      const steps = live[i] ?? [];
      try {
        if (run.entry.strategy === "beam") {
          const beams = await client.beamSearch(prompt, beamConfig(run.entry, maxTokens), () => {}, { chat });
          run.beams = beams;
          const best = beams.hypotheses[0];
          stats.textContent = beams.cancelled ? `stopped after ${beams.steps.length} steps` : `${beams.hypotheses.length} hypotheses · wall ${(beams.wallMs / 1000).toFixed(2)} s · best score ${best?.score.toFixed(4) ?? "–"}`;
          const finals = el("ol", "finals");
          renderHypotheses(finals, beams.hypotheses);
          body.replaceChildren(finals);
          column.dataset.state = beams.cancelled ? "stopped" : "done";
          continue;
        }
        run.result = await client.run(prompt, toConfig(run.entry, seed, maxTokens, stops), (step) => {
          if (step.kind !== "token") return;
          steps.push(step);
          tokens.push(step);
          redraw();
        }, { chat });
        stats.textContent = this.statsText(run.result);
        const last = run.result.steps.at(-1);
        if (last?.kind === "drafts" && last.drafts) {
          const finals = el("ol", "finals");
          renderFinals(finals, last.drafts);
          body.replaceChildren(finals);
        }
      } catch (error) {
        run.error = (error as Error).message;
        stats.textContent = `error: ${run.error}`;
        stats.classList.add("error");
      }
      column.dataset.state = run.error ? "error" : run.result?.cancelled ? "stopped" : "done";
    }
    redraw();
    this.note.hidden = !this.runs.some((r) => r.entry.strategy === "superposed" || r.entry.strategy === "beam");
    return this.runs;
  }

  private statsText(result: RunResult): string {
    const steps = result.steps;
    const tokens = steps.filter((s): s is TokenStep => s.kind === "token");
    const ppl = tokens.at(-1)?.perplexity;
    if (result.cancelled || !result.stats) return `stopped after ${steps.length} steps`;
    const { wallMs, tokensPerSecond } = result.stats;
    const unit = tokens.length ? "tok/s" : "steps/s";
    return `${steps.length} ${tokens.length ? "tokens" : "steps"} · wall ${(wallMs / 1000).toFixed(2)} s · ${tokensPerSecond.toFixed(1)} ${unit}${ppl ? ` · perplexity ${ppl.toFixed(2)}` : ""}`;
  }
}
