import { describe, expect, it } from "vitest";
import type { BeamNode, BeamStep, DraftNode, DraftsStep } from "./protocol";
import { buildBeamTree, buildDraftTree, finalMeta, formatPerplexity, formatProb, layoutDraftTree, tokenLabel } from "./tree";

const node = (id: number, parent: number | null, text = `t${id}`, logProb = -id): DraftNode => ({
  id, parent, token: 100 + id, text, score: -1, logProb, modelProb: 0.5, ngramProb: 0.1, weight: 0.5,
});

// k = 2: two live drafts per step, up to 2k candidates, one draft ended by a stop token.
const steps: DraftsStep[] = [
  { kind: "drafts", step: 0, live: [node(0, null), node(1, null)], finished: [], pruned: [node(2, null), node(3, null)] },
  { kind: "drafts", step: 1, live: [node(4, 0), node(5, 1)], finished: [node(6, 0, "")], pruned: [node(7, 1)] },
  {
    kind: "drafts", step: 2, live: [node(8, 4), node(9, 4)], finished: [], pruned: [node(10, 5), node(11, 5)],
    drafts: [
      { node: 8, tokens: [100, 104, 108], text: "t0t4t8", logProb: -3, perplexity: 2.7, stopped: false },
      { node: 6, tokens: [100, 2], text: "t0", logProb: -2, perplexity: 2.7, stopped: true },
    ],
    finish: "length",
  },
];

describe("draft tree", () => {
  it("has a node per draft token per step, with its status", () => {
    const tree = buildDraftTree(steps);
    expect(tree.nodes).toHaveLength(12);
    expect(tree.steps).toBe(3);
    const status = Object.fromEntries(tree.nodes.map((n) => [n.id, n.status]));
    expect(status).toMatchObject({ 0: "live", 2: "pruned", 6: "finished", 8: "live", 11: "pruned" });
    expect(tree.nodes.find((n) => n.id === 9)?.step).toBe(2);
  });

  it("marks the k final drafts along their whole paths", () => {
    const tree = buildDraftTree(steps);
    const ranks = Object.fromEntries(tree.nodes.map((n) => [n.id, n.finalRanks]));
    expect(ranks[8]).toEqual([0]);
    expect(ranks[4]).toEqual([0]);
    expect(ranks[0]).toEqual([0, 1]);
    expect(ranks[6]).toEqual([1]);
    expect(ranks[1]).toEqual([]);
    const leaves = tree.nodes.filter((n) => n.finalRank !== null).map((n) => [n.id, n.finalRank]);
    expect(leaves).toEqual([[6, 1], [8, 0]]);
    expect(tree.finals).toHaveLength(2);
  });

  it("lays out one column per step, with or without pruned candidates", () => {
    const tree = buildDraftTree(steps);
    const all = layoutDraftTree(tree, true, 30, 100);
    expect(all.descendants()).toHaveLength(13); // the prompt root + 12 nodes
    const eight = all.descendants().find((d) => d.data?.id === 8);
    expect(eight?.depth).toBe(3);
    expect(eight?.y).toBe(300);
    const kept = layoutDraftTree(tree, false);
    expect(kept.descendants()).toHaveLength(8);
    expect(kept.descendants().some((d) => d.data?.status === "pruned")).toBe(false);
    // Best first within a parent: the live child sorts above the finished one.
    const zero = kept.descendants().find((d) => d.data?.id === 0);
    expect(zero?.children?.map((c) => c.data?.id)).toEqual([4, 6]);
  });

  it("builds a partial tree while a run is in progress", () => {
    const tree = buildDraftTree(steps.slice(0, 2));
    expect(tree.finals).toEqual([]);
    expect(tree.nodes.every((n) => n.finalRanks.length === 0)).toBe(true);
  });

  it("labels tokens readably", () => {
    expect(tokenLabel({ text: "", status: "finished" })).toBe("⟨end⟩");
    expect(tokenLabel({ text: "a\nb", status: "live" })).toBe("a⏎b");
    expect(tokenLabel({ text: "\u0013", status: "live" })).toBe("\\x13");
  });

  it("formats probabilities and perplexities of any size", () => {
    expect(formatProb(Math.log(0.5))).toBe("p 0.50");
    expect(formatProb(Math.log(2e-5))).toBe("p 2.0e-5");
    expect(formatProb(-1610.4)).toBe("ln p -1610");
    expect(formatPerplexity(3.14159)).toBe("3.14");
    expect(formatPerplexity(7.2499e86)).toBe("7.25e+86");
  });

  it("labels a final draft with the model's own perplexity once scored, next to the internal score", () => {
    const draft = { node: 3, tokens: [1, 2, 3], text: " a b", logProb: -28.6, perplexity: 1.42e4, stopped: false };
    expect(finalMeta(draft, 0)).toBe("#1 · superposed score 1.42e+4 · 3 tokens");
    expect(finalMeta(draft, 1, 8.5)).toBe("#2 · model perplexity 8.50 · superposed score 1.42e+4 · 3 tokens");
    expect(finalMeta({ ...draft, stopped: true }, 2, null)).toBe("#3 · model perplexity – · superposed score 1.42e+4 · 3 tokens · ended");
  });
});

describe("beam tree", () => {
  const beam = (id: number, parent: number | null, score: number, text = `b${id}`): BeamNode => ({ id, parent: parent ?? undefined, token: 200 + id, text, logProb: -0.5, score } as BeamNode);
  // k = 2: two candidates kept per step, one finished hypothesis, the rest pruned.
  const beamSteps: BeamStep[] = [
    { step: 0, kept: [beam(0, null, -0.1), beam(1, null, -0.9)], finished: [], pruned: [beam(2, null, -2), beam(3, null, -3)], results: [] },
    {
      step: 1, kept: [beam(4, 0, -0.3), beam(5, 1, -1.0)], finished: [beam(6, 0, -0.4, "")], pruned: [beam(7, 1, -4)],
      results: [
        { tokens: [200, 204], node: 4, text: "b0b4", sumLogProb: -0.3, score: -0.15 },
        { tokens: [200, 206], node: 6, text: "b0", sumLogProb: -0.4, score: -0.2 },
      ],
    },
  ];

  it("keeps beams live, finished hypotheses ended and the rest pruned, and marks the hypotheses' paths", () => {
    const tree = buildBeamTree(beamSteps);
    const status = Object.fromEntries(tree.nodes.map((n) => [n.id, n.status]));
    expect(status).toMatchObject({ 0: "live", 2: "pruned", 4: "live", 6: "finished", 7: "pruned" });
    expect(tree.nodes.find((n) => n.id === 5)?.parent).toBe(1);
    expect(tree.nodes.find((n) => n.id === 0)?.parent).toBeNull();
    const ranks = Object.fromEntries(tree.nodes.map((n) => [n.id, n.finalRanks]));
    expect([ranks[0], ranks[4], ranks[6], ranks[1]]).toEqual([[0, 1], [0], [1], []]);
    expect(tree.nodes.find((n) => n.id === 4)?.numbers).toBe(formatProb(-0.3));
    expect(tokenLabel(tree.nodes.find((n) => n.id === 6)!)).toBe("⟨end⟩");
    expect(layoutDraftTree(tree, false).descendants()).toHaveLength(6);
  });
});
