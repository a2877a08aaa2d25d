import { describe, expect, it } from "vitest";
import type { ScoredText } from "./protocol";
import { bucketCounts, compareScores, RANK_BUCKETS, rankBucket } from "./scoreview";

describe("rank buckets", () => {
  it("puts ranks 1–10, 11–100, 101–1000 and beyond in GLTR's four buckets", () => {
    expect([1, 10, 11, 100, 101, 1000, 1001, 49152].map(rankBucket)).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    expect(RANK_BUCKETS.map((b) => b.label)).toEqual(["top 10", "top 100", "top 1000", "beyond 1000"]);
    expect(bucketCounts([1, 2, 50, 5000])).toEqual([2, 1, 0, 1]);
    expect(bucketCounts([])).toEqual([0, 0, 0, 0]);
  });
});

describe("two texts side by side", () => {
  const text = (perplexity: number, ranks: number[]): ScoredText =>
    ({ lead: "", perplexity, meanSurpriseBits: 1, contextTokens: 0, ms: 1, steps: ranks.map((rank) => ({ rank })) }) as unknown as ScoredText;
  it("compares their perplexity either way, and their share of top-10 tokens", () => {
    const human = text(20, [1, 50, 3, 400]);
    const generated = text(5, [1, 1, 2, 12]);
    expect(compareScores(generated, human)).toBe("The second text's perplexity is 4.00× the first's (20.00 vs 5.00); top-10 tokens: 50 % vs 75 %.");
    expect(compareScores(human, generated)).toBe("The second text's perplexity is 4.00× lower than the first's (5.00 vs 20.00); top-10 tokens: 75 % vs 50 %.");
  });
});
