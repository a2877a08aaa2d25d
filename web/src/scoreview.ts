// The Score view: the model reads a given text (pasted, or a run's output) and each token is
// coloured by its surprise or, as GLTR does, by the rank of the actual token among the model's
// predictions; hover or focus a token for its numbers and alternatives. Below, the text's
// perplexity and how many tokens fall in each rank bucket. A second, optional text is scored
// after the same context and shown beside the first, with a line comparing the two.
import type { EngineClient } from "./client";
import type { ScoredText } from "./protocol";
import type { ScoreSettings } from "./settings";
import { TokenView, surpriseColor } from "./tokens";

export const RANK_BUCKETS = [
  { max: 10, label: "top 10", color: "hsl(120 55% 82%)" },
  { max: 100, label: "top 100", color: "hsl(52 95% 80%)" },
  { max: 1000, label: "top 1000", color: "hsl(8 90% 80%)" },
  { max: Infinity, label: "beyond 1000", color: "hsl(275 60% 84%)" },
] as const;

/** The index of the rank bucket `rank` (1 = the model's first choice) falls in. */
export function rankBucket(rank: number): number {
  return RANK_BUCKETS.findIndex((b) => rank <= b.max);
}

/** Tokens per rank bucket. */
export function bucketCounts(ranks: number[]): number[] {
  const counts = RANK_BUCKETS.map(() => 0);
  for (const rank of ranks) counts[rankBucket(rank)]! += 1;
  return counts;
}

export type ColorMode = ScoreSettings["mode"];

/** Share of tokens the model had in its top 10, in percent. */
const top10Share = (r: ScoredText) => (100 * r.steps.filter((s) => s.rank <= 10).length) / Math.max(1, r.steps.length);

/** The line that compares two scored texts. */
export function compareScores(a: ScoredText, b: ScoredText): string {
  const ratio = b.perplexity / a.perplexity;
  const which = ratio >= 1 ? `${ratio.toFixed(2)}× the first's` : `${(1 / ratio).toFixed(2)}× lower than the first's`;
  return `The second text's perplexity is ${which} (${b.perplexity.toFixed(2)} vs ${a.perplexity.toFixed(2)}); top-10 tokens: ${top10Share(b).toFixed(0)} % vs ${top10Share(a).toFixed(0)} %.`;
}

/** One text: its box, its coloured tokens, its status line and its rank histogram. */
class ScoreColumn {
  readonly text: HTMLTextAreaElement;
  private readonly status: HTMLElement;
  private readonly histogram: HTMLElement;
  private readonly tokens: TokenView;
  last: ScoredText | null = null;

  constructor(root: HTMLElement) {
    const $ = <T extends HTMLElement>(selector: string) => root.querySelector(selector) as T;
    this.text = $(".score-text");
    this.status = $(".score-status");
    this.histogram = $(".score-histogram");
    this.tokens = new TokenView($(".score-tokens"));
  }

  setStatus(state: string, text: string): void {
    this.status.dataset.state = state;
    this.status.textContent = text;
  }

  /** Forgets the last result (an empty optional text). */
  clear(): void {
    this.last = null;
    this.tokens.clear();
    this.histogram.replaceChildren();
    delete this.histogram.dataset.counts;
    this.setStatus("idle", "");
  }

  async score(client: EngineClient, context: string, byRank: boolean): Promise<void> {
    this.setStatus("running", "Scoring…");
    try {
      this.last = await client.score(this.text.value, context);
      this.render(byRank);
    } catch (error) {
      this.last = null;
      this.setStatus("error", `Cannot score this text: ${(error as Error).message}`);
    }
  }

  render(byRank: boolean): void {
    const result = this.last;
    if (!result) return;
    this.tokens.clear(result.lead);
    for (const step of result.steps) {
      this.tokens.push(step, byRank ? RANK_BUCKETS[rankBucket(step.rank)]!.color : surpriseColor(step.surpriseBits));
    }
    const context = result.contextTokens ? ` after ${result.contextTokens} context tokens` : "";
    this.setStatus(
      "done",
      `${result.steps.length} tokens scored${context} in ${(result.ms / 1000).toFixed(2)} s · perplexity ${result.perplexity.toFixed(2)} · mean surprise ${result.meanSurpriseBits.toFixed(2)} bits`,
    );
    const counts = bucketCounts(result.steps.map((s) => s.rank));
    const total = Math.max(1, result.steps.length);
    const rows = RANK_BUCKETS.map((bucket, i) => {
      const row = document.createElement("div");
      row.className = "bucket";
      const bar = document.createElement("span");
      bar.className = "bucket-bar";
      bar.style.width = `${(100 * counts[i]!) / total}%`;
      bar.style.backgroundColor = bucket.color;
      const label = document.createElement("span");
      label.className = "bucket-label";
      label.textContent = `${bucket.label}: ${counts[i]} (${Math.round((100 * counts[i]!) / total)} %)`;
      row.append(label, bar);
      return row;
    });
    this.histogram.replaceChildren(...rows);
    this.histogram.dataset.counts = counts.join(",");
  }
}

export class ScoreView {
  private readonly first: ScoreColumn;
  /** Scored only when it has text. */
  private readonly second: ScoreColumn;
  private readonly context: HTMLTextAreaElement;
  private readonly mode: HTMLSelectElement;
  private readonly button: HTMLButtonElement;
  private readonly comparison: HTMLElement;
  /** Whether a model is loaded and idle (the page says). */
  ready = false;
  /** Waits for other work on the model (autocomplete) to stop. */
  beforeScore: () => Promise<void> = async () => {};
  /** Called when a setting the URL keeps changes. */
  onChange: () => void = () => {};

  constructor(root: HTMLElement, private readonly client: EngineClient) {
    const $ = <T extends HTMLElement>(selector: string) => root.querySelector(selector) as T;
    this.first = new ScoreColumn($("#score-a"));
    this.second = new ScoreColumn($("#score-b"));
    this.context = $("#score-context");
    this.mode = $("#score-mode");
    this.button = $("#score-run");
    this.comparison = $("#score-compare");
    this.button.addEventListener("click", () => void this.score());
    this.mode.addEventListener("change", () => {
      this.render();
      this.onChange();
    });
    for (const box of [this.first.text, this.second.text, this.context]) box.addEventListener("input", () => this.onChange());
  }

  get settings(): ScoreSettings {
    return { text: this.first.text.value, textB: this.second.text.value, context: this.context.value, mode: this.mode.value as ColorMode };
  }

  set settings(s: ScoreSettings) {
    this.first.text.value = s.text;
    this.second.text.value = s.textB;
    this.context.value = s.context;
    this.mode.value = s.mode;
  }

  /** Fills the first text and the context (e.g. with a run's output and prompt) and scores. */
  async scoreText(text: string, context: string): Promise<void> {
    this.first.text.value = text;
    this.context.value = context;
    this.onChange();
    await this.score();
  }

  refresh(): void {
    this.button.disabled = !this.ready;
  }

  async score(): Promise<void> {
    if (!this.ready) return;
    this.button.disabled = true;
    this.comparison.hidden = true;
    this.first.setStatus("running", "Scoring…");
    try {
      await this.beforeScore();
      const byRank = this.byRank;
      await this.first.score(this.client, this.context.value, byRank);
      if (this.second.text.value.trim() === "") this.second.clear();
      else await this.second.score(this.client, this.context.value, byRank);
      this.showComparison();
    } finally {
      this.refresh();
    }
  }

  private get byRank(): boolean {
    return (this.mode.value as ColorMode) === "rank";
  }

  private render(): void {
    this.first.render(this.byRank);
    this.second.render(this.byRank);
  }

  private showComparison(): void {
    const [a, b] = [this.first.last, this.second.last];
    this.comparison.hidden = !(a && b);
    this.comparison.textContent = a && b ? compareScores(a, b) : "";
  }
}
