// The trees of superposed decoding's drafts and of beam search's beams: built from their step
// records, laid out with d3-hierarchy, drawn as SVG. A node per token per step; pruned
// candidates faded; the final drafts (or hypotheses) highlighted along their whole path and
// listed as text.
import { stratify, tree as treeLayout, type HierarchyPointNode } from "d3-hierarchy";
import type { BeamStep, DraftsStep, FinalDraft, Hypothesis } from "./protocol";

export type NodeStatus = "live" | "finished" | "pruned";

export interface TreeNode {
  id: number;
  parent: number | null;
  token: number;
  text: string;
  /** The natural log probability of the sequence up to this token. */
  logProb: number;
  step: number;
  status: NodeStatus;
  /** What the node shows under its token, and the lines of its tooltip. */
  numbers: string;
  details: string[];
  /** Ranks (0 = best) of the finals whose path runs through this node. */
  finalRanks: number[];
  /** Set on the last node of a final. */
  finalRank: number | null;
}

/** A final draft or hypothesis: the node of its last token, and its text. */
export interface Final {
  node: number;
  text: string;
}

export interface DraftTree<F extends Final = FinalDraft> {
  nodes: TreeNode[];
  finals: F[];
  steps: number;
}

/** Marks each final's path, from its last node up. */
function withFinals<F extends Final>(byId: Map<number, TreeNode>, finals: F[], steps: number): DraftTree<F> {
  finals.forEach((final, rank) => {
    const leaf = byId.get(final.node);
    if (leaf) leaf.finalRank = rank;
    for (let node = leaf; node; node = node.parent === null ? undefined : byId.get(node.parent)) node.finalRanks.push(rank);
  });
  return { nodes: [...byId.values()], finals, steps };
}

/** Builds the tree from a superposed run's steps (possibly a run still in progress, without finals). */
export function buildDraftTree(steps: readonly DraftsStep[]): DraftTree {
  const byId = new Map<number, TreeNode>();
  for (const step of steps) {
    for (const [status, nodes] of [["live", step.live], ["finished", step.finished], ["pruned", step.pruned]] as const) {
      for (const d of nodes) {
        byId.set(d.id, {
          id: d.id, parent: d.parent, token: d.token, text: d.text, logProb: d.logProb, step: step.step, status, finalRanks: [], finalRank: null,
          numbers: status === "live" ? `w ${d.weight.toFixed(2)} · ${formatProb(d.logProb)}` : formatProb(d.logProb),
          details: [
            `token ${d.token} ${JSON.stringify(d.text)} (step ${step.step + 1}, ${status})`,
            `weight in the next input: ${d.weight.toFixed(3)}`,
            `cumulative probability: ${Math.exp(d.logProb).toExponential(3)} (log ${d.logProb.toFixed(3)})`,
            `this step: score ${d.score.toFixed(3)}, model p ${d.modelProb.toFixed(4)}, n-gram p ${d.ngramProb.toFixed(4)}`,
          ],
        });
      }
    }
  }
  return withFinals(byId, steps.at(-1)?.drafts ?? [], steps.length);
}

/** Builds the tree from a beam search's steps: the kept beams live, the hypotheses that
 *  finished, the candidates pruned; the hypotheses are the finals. */
export function buildBeamTree(steps: readonly BeamStep[]): DraftTree<Hypothesis> {
  const byId = new Map<number, TreeNode>();
  for (const step of steps) {
    for (const [status, nodes] of [["live", step.kept], ["finished", step.finished], ["pruned", step.pruned]] as const) {
      for (const b of nodes) {
        byId.set(b.id, {
          id: b.id, parent: b.parent ?? null, token: b.token, text: b.text, logProb: b.score, step: step.step, status, finalRanks: [], finalRank: null,
          numbers: formatProb(b.score),
          details: [
            `token ${b.token} ${JSON.stringify(b.text)} (step ${step.step + 1}, ${status === "live" ? "kept as a beam" : status})`,
            `this token: p ${Math.exp(b.logProb).toFixed(4)} after its beam`,
            `the sequence: probability ${Math.exp(b.score).toExponential(3)} (log ${b.score.toFixed(3)})`,
          ],
        });
      }
    }
  }
  return withFinals(byId, steps.at(-1)?.results ?? [], steps.length);
}

const ROOT = "root";
type Datum = TreeNode | null; // null: the prompt, the root every first-step node hangs from

/** d3-hierarchy layout, left to right: one column per step. Pruned nodes are leaves, so
 *  leaving them out never orphans a node. */
const COLUMN = 128;

export function layoutDraftTree(tree: DraftTree<Final>, showPruned: boolean, rowHeight = 30, columnWidth = COLUMN) {
  const nodes: Datum[] = [null, ...tree.nodes.filter((n) => showPruned || n.status !== "pruned")];
  const root = stratify<Datum>()
    .id((d) => (d === null ? ROOT : String(d.id)))
    .parentId((d) => (d === null ? undefined : d.parent === null ? ROOT : String(d.parent)))(nodes);
  // Best drafts first: live before finished before pruned, then by cumulative score.
  const order: Record<NodeStatus, number> = { live: 0, finished: 1, pruned: 2 };
  root.sort((a, b) => {
    const [x, y] = [a.data, b.data];
    if (!x || !y) return 0;
    return order[x.status] - order[y.status] || y.logProb - x.logProb;
  });
  return treeLayout<Datum>().nodeSize([rowHeight, columnWidth])(root);
}

const RANK_COLORS = ["#d9622b", "#2f62c9", "#1b8a5a", "#8e44ad", "#b8860b", "#c0392b", "#16a085", "#7f8c8d"];
export const rankColor = (rank: number) => RANK_COLORS[rank % RANK_COLORS.length] ?? "#333";

/** Token text as it reads in a node: line breaks visible, a stop token named. */
export function tokenLabel(node: Pick<TreeNode, "text" | "status">): string {
  if (node.text === "") return node.status === "finished" ? "⟨end⟩" : "∅";
  return node.text
    .replace(/\n/g, "⏎")
    .replace(/\t/g, "⇥")
    .replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** A cumulative probability from its natural log; below what a double holds, the log itself. */
export function formatProb(logProb: number): string {
  const p = Math.exp(logProb);
  if (p >= 0.01) return `p ${p.toFixed(2)}`;
  if (p > 0) return `p ${p.toExponential(1)}`;
  return `ln p ${logProb.toFixed(0)}`;
}

/** Draft perplexities span many orders of magnitude (the n-gram penalty is large). */
export const formatPerplexity = (x: number) => (x < 1e4 ? x.toFixed(2) : x.toExponential(2));

const SVG = "http://www.w3.org/2000/svg";
function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, parent: Element) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  parent.appendChild(el);
  return el;
}

export function renderDraftTree(container: HTMLElement, tree: DraftTree<Final>, showPruned: boolean): void {
  container.replaceChildren();
  container.dataset.nodes = String(tree.nodes.length);
  container.dataset.finalBranches = String(tree.finals.length);
  if (tree.nodes.length === 0) return;
  const root = layoutDraftTree(tree, showPruned);
  const all = root.descendants();
  const margin = 16;
  const [minX, maxX] = [Math.min(...all.map((n) => n.x)), Math.max(...all.map((n) => n.x))];
  const maxY = Math.max(...all.map((n) => n.y));
  // Room on the left for the root's "prompt" label.
  const left = 64;
  const width = maxY + COLUMN + left + 2 * margin;
  const height = maxX - minX + 30 + 2 * margin;
  const best = tree.finals.map((f) => f.text).join(" | ");
  const root_ = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Draft tree: ${tree.nodes.length} nodes over ${tree.steps} steps. Final drafts: ${best}` }, container);
  const g = svg("g", { transform: `translate(${margin + left},${margin + 15 - minX})` }, root_);
  // Links first, so that nodes draw over them; highlighted paths last among links.
  const links = root.links().sort((a, b) => Number(isFinal(a.target)) - Number(isFinal(b.target)));
  for (const link of links) {
    const t = link.target.data;
    const ranks = t?.finalRanks ?? [];
    const mid = (link.source.y + link.target.y) / 2;
    svg("path", {
      d: `M${link.source.y},${link.source.x}C${mid},${link.source.x} ${mid},${link.target.x} ${link.target.y},${link.target.x}`,
      class: `tree-link ${t?.status ?? ""} ${ranks.length ? "final" : ""}`,
      stroke: ranks.length ? rankColor(Math.min(...ranks)) : "#aab",
    }, g);
  }
  for (const node of all) drawNode(g, node);
  // Trees grow wide and tall (pruned leaves at every step): keep the newest best draft in view,
  // i.e. the best final draft at the end, else the leading live draft of the latest step.
  const focus =
    all.find((n) => n.data?.finalRank === 0) ??
    all.filter((n) => n.data?.status === "live").sort((a, b) => b.depth - a.depth || (b.data?.logProb ?? 0) - (a.data?.logProb ?? 0))[0];
  if (focus) {
    const x = margin + left + focus.y;
    const y = margin + 15 - minX + focus.x;
    container.scrollLeft = Math.max(0, x - container.clientWidth * 0.7);
    container.scrollTop = Math.max(0, y - container.clientHeight / 2);
  }
}

function isFinal(node: HierarchyPointNode<Datum>) {
  return (node.data?.finalRanks.length ?? 0) > 0;
}

function drawNode(g: SVGGElement, node: HierarchyPointNode<Datum>): void {
  const d = node.data;
  const group = svg("g", { transform: `translate(${node.y},${node.x})` }, g);
  if (d === null) {
    svg("circle", { r: 7, class: "tree-root" }, group);
    svg("text", { x: -12, y: 4, "text-anchor": "end", class: "tree-root-label" }, group).textContent = "prompt";
    return;
  }
  const ranks = d.finalRanks;
  group.setAttribute("class", `tree-node ${d.status}${ranks.length ? " on-final" : ""}`);
  group.dataset.id = String(d.id);
  if (d.finalRank !== null) group.dataset.finalRank = String(d.finalRank);
  const label = tokenLabel(d);
  const numbers = d.numbers;
  const w = Math.min(COLUMN - 12, Math.max(34, Math.min(label.length, 13) * 7.2 + 12, numbers.length * 5.1 + 8));
  svg("rect", {
    x: -4, y: -11, width: w, height: 22, rx: 5,
    stroke: ranks.length ? rankColor(Math.min(...ranks)) : "#99a",
    "stroke-width": d.finalRank !== null ? 3 : ranks.length ? 2 : 1,
  }, group);
  const text = svg("text", { x: 2, y: -0.5, class: "tree-token" }, group);
  text.textContent = label.length > 13 ? `${label.slice(0, 12)}…` : label;
  svg("text", { x: 2, y: 9, class: "tree-numbers" }, group).textContent = numbers;
  if (d.finalRank !== null) {
    svg("text", { x: w + 2, y: 4, class: "tree-rank", fill: rankColor(d.finalRank) }, group).textContent = `#${d.finalRank + 1}`;
  }
  svg("title", {}, group).textContent = d.details.join("\n");
}

/** The final drafts' labels: rank, the model's own perplexity of the draft when it has been
 *  scored (`model`, null where scoring failed), superposed decoding's internal score, length. */
export function finalMeta(draft: FinalDraft, rank: number, model?: number | null): string {
  const scored = model === undefined ? [] : [`model perplexity ${model === null ? "–" : formatPerplexity(model)}`];
  return [`#${rank + 1}`, ...scored, `superposed score ${formatPerplexity(draft.perplexity)}`, `${draft.tokens.length} tokens${draft.stopped ? " · ended" : ""}`].join(" · ");
}

/** Finals as a ranked list, best first: each its rank colour, a line of figures (`meta`, with
 *  `title` saying what they are) and its text, line breaks kept (the text is pre-wrapped) and
 *  other control characters shown as codes. */
function renderRanked(list: HTMLOListElement, finals: readonly { text: string; meta: string }[], title: string): void {
  list.replaceChildren(
    ...finals.map((final, rank) => {
      const item = document.createElement("li");
      item.dataset.finalRank = String(rank);
      item.style.borderLeftColor = rankColor(rank);
      const text = document.createElement("span");
      text.className = "draft-text";
      text.textContent = final.text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
      const meta = document.createElement("span");
      meta.className = "draft-meta";
      meta.textContent = final.meta;
      meta.title = title;
      item.append(meta, text);
      return item;
    }),
  );
}

/** Beam search's hypotheses, best first, with their scores. */
export function renderHypotheses(list: HTMLOListElement, hypotheses: readonly Hypothesis[]): void {
  const finals = hypotheses.map((h, rank) => ({ text: h.text, meta: `#${rank + 1} · score ${h.score.toFixed(4)} · ln p ${h.sumLogProb.toFixed(3)} · ${h.tokens.length} tokens` }));
  renderRanked(list, finals, "Score: the sum of the tokens' log probabilities over length^penalty, which ranks the hypotheses (Hugging Face's beam scorer).");
}

/** The final drafts, best first; `modelPerplexity[i]` is draft i's, once scored. */
export function renderFinals(list: HTMLOListElement, finals: readonly FinalDraft[], modelPerplexity?: readonly (number | null)[]): void {
  renderRanked(
    list,
    finals.map((draft, rank) => ({ text: draft.text, meta: finalMeta(draft, rank, modelPerplexity?.[rank]) })),
    "Model perplexity: the model's own perplexity of the draft after the prompt (a Score pass). Superposed score: exp of the draft's mean negative log-probability inside superposed decoding, with model and n-gram probabilities interpolated; it ranks drafts and is not a perplexity of the text.",
  );
}
