// The branch tree of a run: in a pinned token panel, an alternative can be taken instead of the
// chosen token, and the model goes on from there (the package's `fork`). Each branch leaves its
// parent at one position; the tree keeps what each one generated, shows it as an indented list,
// and gives the steps to show for any branch: its parent's up to the fork, then its own.
import type { Alternative, TokenStep } from "./protocol";

export interface Branch {
  id: number;
  /** null for the run itself. */
  parent: number | null;
  /** The position in the parent's sequence where this branch takes another token. */
  at: number;
  /** Its own steps: the token taken instead (from the parent's record at `at`), then what it
   *  generated. */
  steps: TokenStep[];
}

/** The parent's record at the fork, with the alternative as the token taken: the distribution
 *  it was picked from is the parent's. */
export function takenStep(step: TokenStep, alt: Alternative): TokenStep {
  const text = alt.text ?? "";
  return { ...step, token: alt.token, prob: alt.prob, surpriseBits: -Math.log2(alt.prob), text, tokenText: text };
}

/** Perplexity of a sequence of steps, from each token's surprise. */
export function perplexityOf(steps: readonly TokenStep[]): number {
  if (steps.length === 0) return NaN;
  return 2 ** (steps.reduce((sum, s) => sum + s.surpriseBits, 0) / steps.length);
}

/** The steps with their running perplexity over the whole sequence: a branch's sampler counts
 *  from the fork, its sequence from the run's first token. */
export function withRunningPerplexity(steps: readonly TokenStep[]): TokenStep[] {
  let bits = 0;
  return steps.map((s, i) => {
    bits += s.surpriseBits;
    return { ...s, perplexity: 2 ** (bits / (i + 1)) };
  });
}

/** A branch as a link keeps it: its parent's index in the list (0 is the run; a parent comes
 *  before its branches), the position, and the token taken there. The tokens are the engine's to
 *  compute again: the same seed gives the same run and branches. */
export interface ForkPoint {
  parent: number;
  at: number;
  token: number;
}

const MAX_LINKED_BRANCHES = 64;

/** `parent.at.token` per branch, joined by "_" (URL-safe, so the link stays short). */
export function encodeForkPoints(points: readonly ForkPoint[]): string {
  return points.map((p) => `${p.parent}.${p.at}.${p.token}`).join("_");
}

/** The fork points of a link, or null when it holds something else. */
export function decodeForkPoints(text: string): ForkPoint[] | null {
  if (text === "") return [];
  const parts = text.split("_");
  if (parts.length > MAX_LINKED_BRANCHES) return null;
  const points: ForkPoint[] = [];
  for (const [i, part] of parts.entries()) {
    const numbers = part.split(".").map(Number);
    const [parent, at, token] = numbers;
    if (numbers.length !== 3 || !numbers.every((n) => Number.isSafeInteger(n) && n >= 0) || parent! > i) return null;
    points.push({ parent: parent!, at: at!, token: token! });
  }
  return points;
}

export class BranchTree {
  private readonly branches = new Map<number, Branch>();
  private nextId = 1;

  constructor(runSteps: TokenStep[]) {
    this.branches.set(0, { id: 0, parent: null, at: 0, steps: runSteps });
  }

  get(id: number): Branch | undefined {
    return this.branches.get(id);
  }

  /** Every branch, each after its parent, with its depth. */
  list(): { branch: Branch; depth: number }[] {
    const out: { branch: Branch; depth: number }[] = [];
    const visit = (id: number, depth: number) => {
      const branch = this.branches.get(id);
      if (!branch) return;
      out.push({ branch, depth });
      for (const child of this.children(id)) visit(child.id, depth + 1);
    };
    visit(0, 0);
    return out;
  }

  private children(id: number): Branch[] {
    return [...this.branches.values()].filter((b) => b.parent === id).sort((a, b) => a.at - b.at || a.id - b.id);
  }

  /** The steps a branch's sequence is made of, from the run's first. */
  sequence(id: number): TokenStep[] {
    const branch = this.branches.get(id);
    if (!branch) return [];
    if (branch.parent === null) return [...branch.steps];
    return [...this.sequence(branch.parent).slice(0, branch.at), ...branch.steps];
  }

  /** What `fork` continues after the prompt to branch from `id` at `at` with `token`. */
  forkTokens(id: number, at: number, token: number): number[] {
    return [...this.sequence(id).slice(0, at).map((s) => s.token), token];
  }

  /** Adds a branch of `parent` at `at`, whose steps are filled in as they come. */
  add(parent: number, at: number, taken: TokenStep): Branch {
    const branch: Branch = { id: this.nextId++, parent, at, steps: [taken] };
    this.branches.set(branch.id, branch);
    return branch;
  }

  /** Deletes a branch and the branches of it; the run itself stays. */
  delete(id: number): void {
    if (id === 0) return;
    for (const child of this.children(id)) this.delete(child.id);
    this.branches.delete(id);
  }

  /** The branches as fork points, in the order they were made (see [`ForkPoint`]). */
  forkPoints(): ForkPoint[] {
    const ids = [...this.branches.keys()].sort((a, b) => a - b);
    const index = new Map(ids.map((id, i) => [id, i]));
    return ids.slice(1).map((id) => {
      const b = this.branches.get(id)!;
      return { parent: index.get(b.parent!)!, at: b.at, token: b.steps[0]!.token };
    });
  }

  /** How a branch is named: the run, or where it left its parent and with which token. */
  label(id: number): string {
    const branch = this.branches.get(id);
    if (!branch || branch.parent === null) return "the run";
    const parent = this.sequence(branch.parent)[branch.at];
    const was = parent ? JSON.stringify(parent.tokenText ?? parent.text) : "?";
    return `at #${branch.at + 1}: ${was} → ${JSON.stringify(branch.steps[0]?.tokenText ?? "")}`;
  }
}
