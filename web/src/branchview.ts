// The branch tree's panel under the run: every branch with where it left its parent, its text
// and perplexity; a branch can be shown in the run view, deleted, or put side by side with
// another (their token streams and one chart).
import { type BranchTree, perplexityOf, withRunningPerplexity } from "./branches";
import { Chart, compareChartData } from "./charts";
import type { Alternative, TokenStep } from "./protocol";
import { TokenView } from "./tokens";

const $ = <T extends HTMLElement = HTMLElement>(selector: string) => document.querySelector(selector) as T;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = "", text = ""): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** A pinned token panel's part that takes an alternative instead of the token: a branch. */
export function takeButtons(pinned: TokenStep, disabled: string | null, onTake: (alt: Alternative) => void): HTMLElement {
  const part = el("div", "branch-take");
  part.append(el("span", "muted", "Go on with this instead:"));
  for (const alt of pinned.top) {
    if (alt.token === pinned.token) continue;
    const text = JSON.stringify(alt.text ?? `#${alt.token}`);
    const button = el("button", "secondary", `${text} ${(alt.prob * 100).toFixed(1)}%`);
    button.type = "button";
    button.dataset.token = String(alt.token);
    button.disabled = disabled !== null;
    button.addEventListener("click", () => onTake(alt));
    part.append(button);
  }
  if (disabled) part.append(el("span", "muted small", disabled));
  return part;
}

export class BranchView {
  private tree: BranchTree | null = null;
  private shown = 0;
  private compared: number[] = [];
  private readonly list = $<HTMLOListElement>("#branches");
  private readonly columns = $("#branch-columns");
  private readonly chart = new Chart($("#branch-chart"), 200);
  /** Shows a branch in the run view. */
  onShow: (id: number) => void = () => {};
  /** A branch was deleted while the run view showed it or one of its branches. */
  onDeleteShown: () => void = () => {};
  /** The tree changed (a branch was deleted). */
  onChange: () => void = () => {};
  /** Whether the buttons act now (not while a generation runs). */
  enabled = true;

  /** A new run: its tree, or none (a superposed run has no branches). */
  reset(tree: BranchTree | null): void {
    this.tree = tree;
    this.shown = 0;
    this.compared = [];
    this.render();
  }

  show(id: number): void {
    this.shown = id;
    this.render();
  }

  get current(): number {
    return this.shown;
  }

  render(): void {
    const tree = this.tree;
    $("#branches-section").hidden = tree === null;
    this.list.replaceChildren();
    if (!tree) return;
    const branches = tree.list();
    for (const { branch, depth } of branches) {
      const row = el("li", "branch");
      row.dataset.branch = String(branch.id);
      row.style.paddingLeft = `${depth * 1.25}rem`;
      const show = el("button", "branch-show link", tree.label(branch.id));
      show.type = "button";
      show.disabled = !this.enabled;
      if (branch.id === this.shown) show.setAttribute("aria-current", "true");
      show.addEventListener("click", () => this.onShow(branch.id));
      const own = branch.parent === null ? branch.steps : branch.steps.slice(1);
      const text = own.map((s) => s.text).join("");
      const snippet = el("span", "branch-text", text.length > 80 ? `${text.slice(0, 80)}…` : text);
      const ppl = el("span", "branch-ppl muted", `perplexity ${perplexityOf(tree.sequence(branch.id)).toFixed(2)}`);
      const pick = el("label", "branch-pick");
      const box = el("input");
      box.type = "checkbox";
      box.checked = this.compared.includes(branch.id);
      box.addEventListener("change", () => this.pick(branch.id, box.checked));
      pick.append(box, " compare");
      row.append(show, " ", snippet, " ", ppl, " ", pick);
      if (branch.parent !== null) {
        const remove = el("button", "branch-delete secondary", "Delete");
        remove.type = "button";
        remove.disabled = !this.enabled;
        remove.setAttribute("aria-label", `Delete the branch ${tree.label(branch.id)}`);
        remove.addEventListener("click", () => this.delete(branch.id));
        row.append(" ", remove);
      }
      this.list.append(row);
    }
    $("#branches-note").hidden = branches.length > 1;
    this.renderComparison();
  }

  private pick(id: number, on: boolean): void {
    this.compared = on ? [...this.compared.filter((c) => c !== id), id].slice(-2) : this.compared.filter((c) => c !== id);
    this.render();
  }

  private delete(id: number): void {
    const tree = this.tree;
    if (!tree) return;
    tree.delete(id);
    this.compared = this.compared.filter((c) => tree.get(c));
    if (!tree.get(this.shown)) this.onDeleteShown();
    else this.render();
    this.onChange();
  }

  private renderComparison(): void {
    const tree = this.tree;
    const pair = tree && this.compared.length === 2 ? this.compared : null;
    $("#branch-compare").hidden = pair === null;
    this.columns.replaceChildren();
    if (!tree || !pair) return this.chart.clear();
    const runs = pair.map((id) => ({ label: tree.label(id), steps: withRunningPerplexity(tree.sequence(id)) }));
    for (const run of runs) {
      const column = el("section", "compare-column");
      const stream = el("div");
      const body = el("div", "stream-wrap");
      body.append(stream);
      column.append(el("h4", "", run.label), el("p", "compare-stats", `${run.steps.length} tokens · perplexity ${perplexityOf(run.steps).toFixed(2)}`), body);
      this.columns.append(column);
      const tokens = new TokenView(stream);
      tokens.clear();
      for (const step of run.steps) tokens.push(step);
    }
    this.chart.set(compareChartData(runs));
  }
}
