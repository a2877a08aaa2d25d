// The single-run view: the token stream, the chart and, for superposed decoding and beam
// search, the tree, fed one step at a time; plus the status line and the always-visible tok/s.
import { Chart, mirostatShortfall, runChartData } from "./charts";
import type { BeamResult, RunResult } from "./client";
import type { BeamStep, DraftsStep, FinalDraft, ScoredText, Step, TokenStep } from "./protocol";
import { describe, runStops, type Settings } from "./settings";
import { TokenView } from "./tokens";
import { buildBeamTree, buildDraftTree, renderDraftTree, renderFinals, renderHypotheses } from "./tree";

const $ = <T extends HTMLElement = HTMLElement>(selector: string) => document.querySelector(selector) as T;

export type RunState = "idle" | "running" | "done" | "stopped" | "error";

export function setStatus(text: string, state: RunState = "idle"): void {
  const status = $("#run-status");
  status.textContent = text;
  status.dataset.state = state;
  // Per-step updates would make a screen reader chatter: it reads the final state.
  status.setAttribute("aria-busy", String(state === "running"));
}

export function setSpeed(tokensPerSecond: number): void {
  $("#tps").textContent = `${tokensPerSecond.toFixed(1)} tok/s`;
}

/** What a finished run leaves for tests and export. */
export interface RunSummary {
  label: string;
  steps: number;
  tokens: number;
  cancelled: boolean;
  tokensPerSecond: number | null;
  text: string;
}

export class RunView {
  readonly tokens = new TokenView($("#tokens"));
  readonly chart = new Chart($("#chart"));
  private readonly showPruned = $<HTMLInputElement>("#show-pruned");
  private tokenSteps: TokenStep[] = [];
  private draftSteps: DraftsStep[] = [];
  /** A beam search's steps: the tree then shows beams, not drafts. */
  private beamSteps: BeamStep[] | null = null;
  private tau: number | null = null;
  private maxTokens = 0;
  private firstMs = 0;
  private treePending = false;
  /** Steps a branch shows before its own: its parent's, up to the fork. */
  private inherited = 0;
  /** The final drafts of the last superposed run, to show next to a rerun's. */
  lastFinals: FinalDraft[] = [];
  /** The model's own perplexity of each final draft, once scored. */
  private finalScores: (number | null)[] | undefined;
  /** The loaded model's vocabulary, to tell when Mirostat kept all of it. */
  vocabSize = 0;

  constructor() {
    this.showPruned.addEventListener("change", () => this.renderTree());
  }

  begin(s: Settings): void {
    // Superposed drafts and beams show as a tree, not as one token stream.
    const treeShown = s.strategy === "superposed" || s.strategy === "beam";
    const beams = s.strategy === "beam";
    this.beamSteps = beams ? [] : null;
    $("#tree-heading").textContent = beams ? "Beam tree" : "Draft tree";
    $("#finals-heading").textContent = beams ? "Final hypotheses" : "Final drafts";
    $("#tree-help-drafts").hidden = beams;
    $("#tree-help-beams").hidden = !beams;
    $("#chart-note").textContent = beams
      ? "Beam search ranks whole sequences, not single sampled tokens: see the tree below."
      : "Superposed decoding scores drafts, not single sampled tokens: see the tree below.";
    this.tau = s.strategy === "mirostat1" || s.strategy === "mirostat2" ? s.tau : null;
    this.maxTokens = s.maxTokens;
    this.tokenSteps = [];
    this.draftSteps = [];
    this.inherited = 0;
    this.finalScores = undefined;
    this.tokens.clear(treeShown ? "" : s.prompt);
    this.chart.clear();
    $("#tokens-section").hidden = treeShown;
    $("#chart-note").hidden = !treeShown;
    $("#chart").hidden = treeShown;
    $("#tree-section").hidden = !treeShown;
    $("#finals-before-section").hidden = true;
    $("#mirostat-note").hidden = true;
    if (treeShown) this.renderTree();
    setStatus("Prefilling the prompt…", "running");
  }

  /** A branch: the run's settings, and the steps of its sequence so far (its parent's up to
   *  the fork, then the token it takes there), then its own as they come. */
  beginBranch(s: Settings, steps: readonly TokenStep[]): void {
    this.begin(s);
    for (const step of steps) {
      this.tokenSteps.push(step);
      this.tokens.push(step);
    }
    this.inherited = steps.length;
    this.chart.set(runChartData(this.tokenSteps, this.tau));
  }

  /** A finished branch's sequence, shown again. */
  showSteps(s: Settings, steps: readonly TokenStep[], status: string): void {
    this.beginBranch(s, steps);
    setStatus(status, "done");
  }

  step(step: Step, elapsedMs: number): void {
    const count = this.tokenSteps.length - this.inherited + this.draftSteps.length + 1;
    if (count === 1) this.firstMs = elapsedMs;
    // From the first step on, so that the prefill does not count.
    else setSpeed(((count - 1) * 1000) / (elapsedMs - this.firstMs));
    setStatus(`Generating: ${count} of ${this.maxTokens}…`, "running");
    if (step.kind === "token") {
      this.tokenSteps.push(step);
      this.tokens.push(step);
      this.chart.set(runChartData(this.tokenSteps, this.tau));
    } else {
      this.draftSteps.push(step);
      this.scheduleTree();
    }
  }

  /** A beam search's step. */
  beamStep(step: BeamStep): void {
    this.beamSteps?.push(step);
    setStatus(`Searching: step ${step.step + 1} of ${this.maxTokens}…`, "running");
    this.scheduleTree();
  }

  /** A beam search's end: the tree with its hypotheses, and the best one's text as the run's. */
  finishBeams(s: Settings, result: BeamResult): RunSummary {
    this.renderTree();
    const best = result.hypotheses[0];
    setStatus(
      result.cancelled
        ? `Stopped after ${result.steps.length} steps.`
        : `${result.hypotheses.length} hypotheses after ${result.steps.length} steps in ${(result.wallMs / 1000).toFixed(2)} s · best score ${best?.score.toFixed(4) ?? "–"}`,
      result.cancelled ? "stopped" : "done",
    );
    return { label: describe(s), steps: result.steps.length, tokens: best?.tokens.length ?? 0, cancelled: result.cancelled, tokensPerSecond: null, text: best?.text ?? "" };
  }

  finish(s: Settings, result: RunResult): RunSummary {
    const last = result.steps.at(-1);
    const finals = last?.kind === "drafts" ? (last.drafts ?? []) : [];
    if (s.strategy === "superposed") {
      this.renderTree();
      this.lastFinals = finals;
    }
    const shortfall = this.tau === null ? null : mirostatShortfall(this.tokenSteps, this.tau, this.vocabSize);
    $("#mirostat-note").textContent = shortfall;
    $("#mirostat-note").hidden = shortfall === null;
    const n = result.steps.length;
    const rate = result.stats?.tokensPerSecond ?? null;
    if (rate !== null) setSpeed(rate);
    const unit = s.strategy === "superposed" ? "steps" : "tokens";
    const perplexity = this.tokenSteps.at(-1)?.perplexity;
    setStatus(
      result.cancelled
        ? `Stopped after ${n} ${unit}.`
        : [
            `${n} ${unit} in ${((result.stats?.wallMs ?? 0) / 1000).toFixed(2)} s (prompt ${(result.prefillMs / 1000).toFixed(2)} s)`,
            `${rate?.toFixed(1)} ${s.strategy === "superposed" ? "steps" : "tok"}/s`,
            ...(perplexity === undefined ? [] : [`perplexity ${perplexity.toFixed(2)}`]),
            ...(last?.finish === "stop" ? [runStops(s).length ? "ended with a stop token or string" : "ended with a stop token"] : []),
            ...(last?.finish === "context" ? ["ended at the context limit"] : []),
          ].join(" · "),
      result.cancelled ? "stopped" : "done",
    );
    return {
      label: describe(s),
      steps: n,
      tokens: this.tokenSteps.length,
      cancelled: result.cancelled,
      tokensPerSecond: rate,
      text: this.tokenSteps.length ? this.tokenSteps.map((t) => t.text).join("") : (finals[0]?.text ?? ""),
    };
  }

  /** Scores each final draft after the prompt, to show the model's own perplexity of it next to
   *  superposed decoding's internal score (which mixes in the n-gram model and reads as nonsense
   *  as a perplexity). A draft that cannot be scored shows "–". */
  async scoreFinals(score: (text: string, context: string) => Promise<ScoredText>, prompt: string): Promise<void> {
    const scores: (number | null)[] = [];
    for (const draft of this.lastFinals) scores.push(await score(draft.text, prompt).then((r) => r.perplexity, () => null));
    this.finalScores = scores;
    this.renderTree();
  }

  /** After a rerun with another n-gram store: the drafts from before, under the new ones. */
  showFinalsBefore(before: FinalDraft[]): void {
    renderFinals($<HTMLOListElement>("#finals-before"), before);
    $("#finals-before-section").hidden = before.length === 0;
  }

  private renderTree(): void {
    if (this.beamSteps) {
      const tree = buildBeamTree(this.beamSteps);
      renderDraftTree($("#tree"), tree, this.showPruned.checked);
      renderHypotheses($<HTMLOListElement>("#finals"), tree.finals);
      return;
    }
    const tree = buildDraftTree(this.draftSteps);
    renderDraftTree($("#tree"), tree, this.showPruned.checked);
    renderFinals($<HTMLOListElement>("#finals"), tree.finals, this.finalScores);
  }

  // A tree re-layout per step is cheap, but a frame is the most the eye can use.
  private scheduleTree(): void {
    if (this.treePending) return;
    this.treePending = true;
    requestAnimationFrame(() => {
      this.treePending = false;
      this.renderTree();
    });
  }
}
