// The token stream, coloured by surprise. Colour is not the only carrier: every token is
// focusable (one tab stop, arrow keys move between tokens) and hovering or focusing it shows
// its numbers: probability, surprise, entropy, kept count and the top alternatives. A view
// that sets `onPin` lets a click (or Enter) pin a token's panel and adds its own part to it
// (the run view's probe); Escape or a click elsewhere unpins.
import type { TokenStep } from "./protocol";

/** Surprise (bits) → background colour: pale yellow for expected tokens, deep red from 12 bits. */
export function surpriseColor(bits: number): string {
  const t = Math.min(1, Math.max(0, bits / 12));
  return `hsl(${Math.round(52 - 52 * t)} 95% ${Math.round(93 - 38 * t)}%)`;
}

/** Text with its whitespace readable: quotes around it, line breaks and tabs as symbols, other
 *  control characters as their code (a byte-level tokenizer has tokens for all of them). */
export function visibleText(text: string): string {
  const shown = text
    .replace(/\n/g, "⏎")
    .replace(/\t/g, "⇥")
    .replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return `“${shown}”`;
}

/** A probability as a percentage with two significant digits where it is small. */
export function pct(p: number): string {
  const v = p * 100;
  if (v >= 1) return `${v.toFixed(1)} %`;
  if (v >= 0.001) return `${+v.toPrecision(2)} %`;
  return `${v.toExponential(1)} %`;
}

/** A new element with its class and text. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = "", text = ""): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

let panelIds = 0;

export class TokenView {
  private readonly steps: TokenStep[] = [];
  private readonly spans: HTMLSpanElement[] = [];
  private readonly panel: HTMLDivElement;
  private shown: number | null = null;
  private pinned = false;
  /** What a pinned panel adds below the numbers, given the tokens before the pinned one. Unset,
   *  tokens do not pin: the panel follows hover and focus only. */
  onPin: ((before: readonly TokenStep[], pinned: TokenStep) => HTMLElement) | null = null;

  constructor(private readonly container: HTMLElement) {
    container.classList.add("token-stream");
    container.setAttribute("role", "group");
    this.panel = el("div", "token-panel");
    this.panel.id = `token-panel-${++panelIds}`;
    this.panel.setAttribute("role", "tooltip");
    this.panel.hidden = true;
    container.after(this.panel);
    container.addEventListener("keydown", (e) => this.onKey(e));
    container.addEventListener("focusin", (e) => this.showFor(e.target));
    container.addEventListener("focusout", () => this.hide());
    container.addEventListener("mouseover", (e) => this.showFor(e.target));
    container.addEventListener("mouseleave", () => {
      if (!container.contains(document.activeElement)) this.hide();
    });
    container.addEventListener("click", (e) => this.pin(this.indexOf(e.target)));
    this.panel.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.unpin(true);
    });
    // A click outside both the stream's tokens and the panel unpins.
    document.addEventListener("pointerdown", (e) => {
      if (this.pinned && !this.panel.contains(e.target as Node) && this.indexOf(e.target) === null) this.unpin(false);
    });
  }

  get count(): number {
    return this.steps.length;
  }

  clear(prompt = ""): void {
    this.unpin(false);
    this.steps.length = 0;
    this.spans.length = 0;
    this.hide();
    this.container.replaceChildren();
    if (prompt) this.container.append(el("span", "prompt", prompt));
    this.container.dataset.tokens = "0";
  }

  /** Appends a token; `color` defaults to its surprise's. */
  push(step: TokenStep, color = surpriseColor(step.surpriseBits)): void {
    const i = this.steps.length;
    this.steps.push(step);
    const span = el("span", "tok");
    span.dataset.i = String(i);
    span.tabIndex = i === 0 ? 0 : -1;
    span.style.backgroundColor = color;
    if (step.text !== "") {
      // A line break would be an invisible token: mark it, then break the line.
      step.text.split("\n").forEach((part, j) => {
        if (j > 0) span.append(el("span", "newline", "↵"), "\n");
        if (part) span.append(part);
      });
    } else if (step.finish === "stop") {
      span.classList.add("marker");
      span.textContent = "⟨end⟩";
    } else {
      // Part of a character: its text arrives with the next token.
      span.classList.add("marker");
      span.textContent = "·";
    }
    // A screen reader hears the numbers without opening the panel.
    span.setAttribute("aria-label", `${step.tokenText ?? step.text}: p ${pct(step.prob)}, ${step.surpriseBits.toFixed(1)} bits`);
    this.spans.push(span);
    this.container.append(span);
    this.container.dataset.tokens = String(this.steps.length);
  }

  private onKey(e: KeyboardEvent): void {
    const i = this.indexOf(e.target);
    if (i === null) return;
    const moves: Record<string, number> = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: this.spans.length - 1 };
    if (e.key === "Escape") {
      this.unpin(false);
      this.hide();
      return;
    }
    if (e.key === "Enter") {
      e.preventDefault();
      this.pin(i);
      return;
    }
    const target = moves[e.key];
    if (target === undefined) return;
    e.preventDefault();
    // Moving on lets the panel follow the focus again.
    this.unpin(false);
    this.focus(Math.max(0, Math.min(this.spans.length - 1, target)));
  }

  private focus(i: number): void {
    for (const span of this.spans) span.tabIndex = -1;
    const span = this.spans[i];
    if (!span) return;
    span.tabIndex = 0;
    span.focus();
  }

  /** The index of this stream's token at `target` (or holding it: a line break's mark). */
  private indexOf(target: EventTarget | null): number | null {
    const tok = target instanceof Element ? target.closest<HTMLElement>(".tok") : null;
    if (!tok || !this.container.contains(tok)) return null;
    const i = Number(tok.dataset.i);
    return Number.isInteger(i) ? i : null;
  }

  /** Pins the panel of token `i` (a view with `onPin` only) and moves the focus into what
   *  `onPin` added, so that one can type there at once. */
  private pin(i: number | null): void {
    if (i === null || !this.onPin || !this.steps[i]) return;
    this.pinned = false;
    this.showFor(this.spans[i] ?? null);
    this.pinned = true;
    this.panel.setAttribute("role", "dialog");
    this.panel.setAttribute("aria-label", `token #${i + 1}`);
    this.panel.dataset.pinned = String(i);
    const extra = this.onPin(this.steps.slice(0, i), this.steps[i]);
    this.panel.append(extra);
    extra.querySelector<HTMLElement>("input, button")?.focus();
  }

  /** Back to hover and focus; `refocus` puts the focus back on the pinned token. */
  private unpin(refocus: boolean): void {
    if (!this.pinned) return;
    const i = this.shown;
    this.pinned = false;
    this.panel.setAttribute("role", "tooltip");
    this.panel.removeAttribute("aria-label");
    delete this.panel.dataset.pinned;
    if (refocus && i !== null) this.focus(i);
    else this.hide();
  }

  private showFor(target: EventTarget | null): void {
    if (this.pinned) return;
    const i = this.indexOf(target);
    const step = i === null ? undefined : this.steps[i];
    const span = i === null ? undefined : this.spans[i];
    if (i === null || !step || !span) return;
    if (this.shown !== null) this.spans[this.shown]?.removeAttribute("aria-describedby");
    this.shown = i;
    span.setAttribute("aria-describedby", this.panel.id);
    this.fill(step, i);
    this.panel.hidden = false;
    // Below the token, kept inside the stream's width.
    const box = span.getBoundingClientRect();
    const parent = (this.panel.offsetParent ?? document.body).getBoundingClientRect();
    const width = this.panel.offsetWidth;
    const left = Math.min(box.left - parent.left, parent.width - width - 4);
    this.panel.style.left = `${Math.max(0, left)}px`;
    this.panel.style.top = `${box.bottom - parent.top + 6}px`;
  }

  private hide(): void {
    if (this.pinned) return;
    if (this.shown !== null) this.spans[this.shown]?.removeAttribute("aria-describedby");
    this.shown = null;
    this.panel.hidden = true;
  }

  private fill(step: TokenStep, i: number): void {
    const head = el("div", "panel-head");
    head.append(el("strong", "", visibleText(step.tokenText ?? step.text)), el("span", "muted", ` token ${step.token} · #${i + 1}`));
    const facts = el("dl", "facts");
    const fact = (name: string, value: string) => facts.append(el("dt", "", name), el("dd", "", value));
    fact("probability", pct(step.prob));
    // The exact figure, for a test to compare (the probe's with the run's own).
    (facts.lastElementChild as HTMLElement).dataset.value = String(step.prob);
    fact("surprise", `${step.surpriseBits.toFixed(2)} bits`);
    fact("entropy", `${step.entropyBits.toFixed(2)} bits`);
    // A scored text's token has a rank; a generated one, what truncation kept.
    if ("rank" in step && typeof step.rank === "number") fact("rank of this token", `${step.rank} of ${step.kept}`);
    else fact("kept by truncation", `${step.kept} tokens`);
    if (step.mu !== undefined) fact("Mirostat μ", `${step.mu.toFixed(2)} bits`);
    fact("running perplexity", step.perplexity.toFixed(2));
    const table = el("table", "alternatives");
    table.append(el("caption", "", "Top alternatives"));
    for (const alt of step.top) {
      const row = el("tr", alt.token === step.token ? "chosen" : "");
      const bar = el("span", "bar");
      bar.style.width = `${Math.max(1, alt.prob * 100)}%`;
      const barCell = el("td", "bar-cell");
      barCell.append(bar);
      const text = el("td", "alt-text", visibleText(alt.text ?? `#${alt.token}`));
      if (alt.token === step.token) text.append(el("span", "chosen-mark", " ✓ chosen"));
      row.append(text, el("td", "num", pct(alt.prob)), barCell);
      table.append(row);
    }
    this.panel.replaceChildren(head, facts, table);
    if (!step.top.some((alt) => alt.token === step.token)) {
      this.panel.append(el("p", "not-listed", `The chosen token is not among the top ${step.top.length}.`));
    }
  }
}
