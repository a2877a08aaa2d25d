// The probe, in a run's pinned token panel: type a word or phrase and see its probability as
// the text that comes next at that token's position, token by token, and its first token's rank
// among the alternatives there. It is a score (teacher-forced, see client.score) of the typed
// text after the run's fed prompt and the tokens generated before the pinned one.
import type { EngineClient } from "./client";
import type { ScoredText, TokenStep } from "./protocol";
import { el, pct, visibleText } from "./tokens";

/** The context a continuation at the position of token `before.length` is scored after: the
 *  text the run fed (its prompt, laid out by the chat template if it was one), then the text it
 *  generated before that token. */
export function probeContext(fed: string, before: readonly TokenStep[]): string {
  return fed + before.map((step) => step.text).join("");
}

/** Whether the context's text reads as the very tokens the run had there (the fed prompt's, then
 *  the generated ones). It may not: a text can split otherwise ("lourish" twice may read as
 *  other tokens), and a position inside a character has lost that character's first bytes. */
export function sameTokens(fed: readonly number[], before: readonly TokenStep[], context: readonly number[]): boolean {
  const run = [...fed, ...before.map((step) => step.token)];
  return run.length === context.length && run.every((token, i) => token === context[i]);
}

export interface ProbeSummary {
  /** The whole continuation's probability: the product of its tokens'. */
  prob: number;
  bits: number;
  /** Its first token's rank among the alternatives at the position (1 = the model's choice). */
  firstRank: number;
  tokens: { text: string; prob: number; rank: number }[];
}

/** What a probe shows of a scored continuation. The context is never empty (it holds the run's
 *  prompt), so every token has figures; a lead would mean nothing predicted the first one. */
export function summarizeProbe(scored: ScoredText): ProbeSummary {
  const first = scored.steps[0];
  if (scored.lead !== "" || !first) throw new Error("nothing precedes this position, so the text's first token has no probability");
  return {
    prob: scored.steps.reduce((p, step) => p * step.prob, 1),
    bits: scored.steps.reduce((bits, step) => bits + step.surpriseBits, 0),
    firstRank: first.rank,
    tokens: scored.steps.map((step) => ({ text: step.tokenText ?? step.text, prob: step.prob, rank: step.rank })),
  };
}

/** The probe's result line. */
export function describeProbe(s: ProbeSummary): string {
  const tokens = s.tokens.length === 1 ? "1 token" : `${s.tokens.length} tokens`;
  return `${pct(s.prob)} as the next text (${s.bits.toFixed(2)} bits, ${tokens}); its first token ranks #${s.firstRank} here.`;
}

/** One probe at a time, in the one pinned panel of the run view. */
export class Probe {
  private blockedBy: string | null = "No model is loaded.";
  private pending = false;
  /** The pinned panel's form, while there is one. */
  private live: { button: HTMLButtonElement; note: HTMLElement } | null = null;
  /** Waits for other work on the model (autocomplete) to stop. */
  beforeProbe: () => Promise<void> = async () => {};

  constructor(private readonly client: EngineClient) {}

  /** Why a probe cannot run now (a generation holds the engine, no model is loaded), or null:
   *  the form then disables its button and says why. */
  set blocked(reason: string | null) {
    this.blockedBy = reason;
    this.refresh();
  }

  /** The probe's part of a pinned panel: the position after `prompt` (fed as `chat` says) and
   *  the tokens `before`. */
  form(prompt: string, chat: boolean, before: readonly TokenStep[]): HTMLFormElement {
    const form = el("form", "probe");
    const label = el("label", "probe-label", "What if the text went on with…");
    const input = el("input", "probe-text");
    input.type = "text";
    input.autocomplete = "off";
    label.append(input);
    const button = el("button", "", "Probe");
    button.type = "submit";
    const note = el("p", "probe-note");
    const status = el("p", "probe-status");
    status.setAttribute("role", "status");
    const result = el("table", "probe-tokens");
    result.hidden = true;
    form.append(label, button, note, status, result);
    this.live = { button, note };
    this.refresh();
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.probe(input.value, prompt, chat, before, status, result);
    });
    return form;
  }

  private refresh(): void {
    if (!this.live) return;
    this.live.button.disabled = this.pending || this.blockedBy !== null;
    this.live.note.textContent = this.blockedBy ?? "";
    this.live.note.hidden = this.blockedBy === null;
  }

  private async probe(text: string, prompt: string, chat: boolean, before: readonly TokenStep[], status: HTMLElement, result: HTMLTableElement): Promise<void> {
    // An empty text is no continuation; a space is one.
    if (text === "" || this.pending || this.blockedBy !== null) return;
    this.pending = true;
    this.refresh();
    const show = (state: string, line: string) => {
      status.dataset.state = state;
      status.textContent = line;
    };
    show("running", "Scoring…");
    delete status.dataset.prob;
    delete status.dataset.firstRank;
    delete status.dataset.sameTokens;
    result.hidden = true;
    try {
      await this.beforeProbe();
      const fed = await this.client.fedPrompt(prompt, chat);
      const context = probeContext(fed, before);
      const summary = summarizeProbe(await this.client.score(text, context));
      const [fedTokens, contextTokens] = await Promise.all([this.client.encode(fed), this.client.encode(context)]);
      const head = el("tr");
      head.append(el("th", "", "token"), el("th", "num", "probability"), el("th", "num", "rank"));
      const rows = summary.tokens.map((t) => {
        const row = el("tr");
        row.append(el("td", "alt-text", visibleText(t.text)), el("td", "num", pct(t.prob)), el("td", "num", `#${t.rank}`));
        return row;
      });
      result.replaceChildren(head, ...rows);
      result.hidden = false;
      // The exact figures, for a test to compare with the run's own.
      status.dataset.prob = String(summary.prob);
      status.dataset.firstRank = String(summary.firstRank);
      const caveat = sameTokens(fedTokens, before, contextTokens)
        ? ""
        : " The text before this position reads as other tokens than the run's, so these figures are that text's and can differ from the run's.";
      status.dataset.sameTokens = String(caveat === "");
      show("done", describeProbe(summary) + caveat);
    } catch (error) {
      show("error", `Cannot probe this text: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.pending = false;
      this.refresh();
    }
  }
}
