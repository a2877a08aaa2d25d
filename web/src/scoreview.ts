// The Score view: the model reads a given text (pasted, or a run's output) and each token is
// coloured by its surprise or, as GLTR does, by the rank of the actual token among the model's
// predictions; hover or focus a token for its numbers and alternatives. Below, the text's
// perplexity and how many tokens fall in each rank bucket.
import type { EngineClient } from "./client";
import type { ScoredText } from "./protocol";
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

export type ColorMode = "surprise" | "rank";

export class ScoreView {
  private readonly tokens: TokenView;
  private last: ScoredText | null = null;
  private readonly text: HTMLTextAreaElement;
  private readonly context: HTMLTextAreaElement;
  private readonly mode: HTMLSelectElement;
  private readonly button: HTMLButtonElement;
  private readonly status: HTMLElement;
  private readonly histogram: HTMLElement;
  /** Whether a model is loaded and idle (the page says). */
  ready = false;
  /** Waits for other work on the model (autocomplete) to stop. */
  beforeScore: () => Promise<void> = async () => {};

  constructor(root: HTMLElement, private readonly client: EngineClient) {
    const $ = <T extends HTMLElement>(selector: string) => root.querySelector(selector) as T;
    this.text = $("#score-text");
    this.context = $("#score-context");
    this.mode = $("#score-mode");
    this.button = $("#score-run");
    this.status = $("#score-status");
    this.histogram = $("#score-histogram");
    this.tokens = new TokenView($("#score-tokens"));
    this.button.addEventListener("click", () => void this.score());
    this.mode.addEventListener("change", () => this.render());
  }

  /** Fills the boxes (e.g. with a run's prompt and output) and scores them. */
  async scoreText(text: string, context: string): Promise<void> {
    this.text.value = text;
    this.context.value = context;
    await this.score();
  }

  refresh(): void {
    this.button.disabled = !this.ready;
  }

  async score(): Promise<void> {
    if (!this.ready) return;
    this.button.disabled = true;
    this.status.dataset.state = "running";
    this.status.textContent = "Scoring…";
    try {
      await this.beforeScore();
      this.last = await this.client.score(this.text.value, this.context.value);
      this.render();
    } catch (error) {
      this.status.dataset.state = "error";
      this.status.textContent = `Cannot score this text: ${(error as Error).message}`;
    } finally {
      this.refresh();
    }
  }

  private render(): void {
    const result = this.last;
    if (!result) return;
    const byRank = (this.mode.value as ColorMode) === "rank";
    this.tokens.clear(result.lead);
    for (const step of result.steps) {
      this.tokens.push(step, byRank ? RANK_BUCKETS[rankBucket(step.rank)]!.color : surpriseColor(step.surpriseBits));
    }
    this.status.dataset.state = "done";
    const context = result.contextTokens ? ` after ${result.contextTokens} context tokens` : "";
    this.status.textContent = `${result.steps.length} tokens scored${context} in ${(result.ms / 1000).toFixed(2)} s · perplexity ${result.perplexity.toFixed(2)} · mean surprise ${result.meanSurpriseBits.toFixed(2)} bits`;
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
