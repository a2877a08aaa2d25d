import { describe, expect, it } from "vitest";
import { bucketCounts, RANK_BUCKETS, rankBucket } from "./scoreview";

describe("rank buckets", () => {
  it("puts ranks 1–10, 11–100, 101–1000 and beyond in GLTR's four buckets", () => {
    expect([1, 10, 11, 100, 101, 1000, 1001, 49152].map(rankBucket)).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    expect(RANK_BUCKETS.map((b) => b.label)).toEqual(["top 10", "top 100", "top 1000", "beyond 1000"]);
    expect(bucketCounts([1, 2, 50, 5000])).toEqual([2, 1, 0, 1]);
    expect(bucketCounts([])).toEqual([0, 0, 0, 0]);
  });
});
