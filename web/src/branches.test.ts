import { describe, expect, it } from "vitest";
import { BranchTree, decodeForkPoints, encodeForkPoints, perplexityOf, takenStep, withRunningPerplexity } from "./branches";
import type { TokenStep } from "./protocol";

const step = (token: number, text: string, prob = 0.5): TokenStep => ({
  kind: "token", token, prob, surpriseBits: -Math.log2(prob), entropyBits: 1, kept: 2, perplexity: 0, text, tokenText: text,
  top: [{ token, prob, text }, { token: token + 100, prob: prob / 2, text: `alt${token}` }],
} as TokenStep);

describe("the branch tree", () => {
  const run = [step(1, "a"), step(2, "b"), step(3, "c"), step(4, "d")];

  it("gives a branch's sequence and fork tokens through its parents", () => {
    const tree = new BranchTree(run);
    const first = tree.add(0, 2, takenStep(run[2]!, run[2]!.top[1]!));
    first.steps.push(step(7, "x"), step(8, "y"));
    expect(tree.sequence(first.id).map((s) => s.token)).toEqual([1, 2, 103, 7, 8]);
    expect(tree.forkTokens(first.id, 4, 55)).toEqual([1, 2, 103, 7, 55]);
    const second = tree.add(first.id, 4, takenStep(step(8, "y"), { token: 55, prob: 0.25, text: "z" }));
    expect(tree.sequence(second.id).map((s) => s.token)).toEqual([1, 2, 103, 7, 55]);
    expect(tree.label(first.id)).toBe('at #3: "c" → "alt3"');
    expect(tree.list().map(({ branch, depth }) => [branch.id, depth])).toEqual([[0, 0], [first.id, 1], [second.id, 2]]);
    // The taken token's surprise is its own, from the parent's distribution.
    expect(tree.sequence(first.id)[2]!.surpriseBits).toBeCloseTo(2);
    tree.delete(first.id);
    expect(tree.list().map(({ branch }) => branch.id)).toEqual([0]);
    tree.delete(0);
    expect(tree.sequence(0)).toHaveLength(4);
  });

  it("counts perplexity over the whole sequence", () => {
    const steps = [step(1, "a", 0.5), step(2, "b", 0.125)];
    expect(perplexityOf(steps)).toBeCloseTo(4);
    expect(withRunningPerplexity(steps).map((s) => s.perplexity)).toEqual([2, 4]);
  });

  it("keeps a tree in a link as fork points, parents first, and refuses anything else", () => {
    const tree = new BranchTree(run);
    const a = tree.add(0, 1, takenStep(run[1]!, run[1]!.top[1]!));
    const b = tree.add(0, 3, takenStep(run[3]!, run[3]!.top[1]!));
    tree.add(b.id, 4, takenStep(run[3]!, { token: 9, prob: 0.1, text: "q" }));
    tree.delete(a.id);
    const points = tree.forkPoints();
    expect(points).toEqual([{ parent: 0, at: 3, token: 104 }, { parent: 1, at: 4, token: 9 }]);
    expect(encodeForkPoints(points)).toBe("0.3.104_1.4.9");
    expect(decodeForkPoints("0.3.104_1.4.9")).toEqual(points);
    expect(decodeForkPoints("")).toEqual([]);
    for (const bad of ["1.0.5", "0.1", "0.-1.2", "0.1.x", "0.1.2_3.1.1", Array(65).fill("0.1.1").join("_")]) expect(decodeForkPoints(bad)).toBeNull();
  });
});
