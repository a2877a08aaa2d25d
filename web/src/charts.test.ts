import { describe, expect, it } from "vitest";
import { compareChartData, runChartData } from "./charts";
import type { TokenStep } from "./protocol";

const step = (surpriseBits: number, perplexity: number, mu?: number): TokenStep => ({
  kind: "token", token: 1, prob: 2 ** -surpriseBits, surpriseBits, entropyBits: 3, kept: 5, top: [], perplexity, text: "x",
  ...(mu === undefined ? {} : { mu }),
});

describe("chart data", () => {
  it("has one point per generated token", () => {
    const steps = [step(1, 2), step(3, 4), step(2, 4)];
    const data = runChartData(steps, null);
    expect(data.x).toEqual([1, 2, 3]);
    expect(data.series.map((s) => s.label)).toEqual(["surprise (bits)", "running perplexity"]);
    expect(data.series[0]?.values).toEqual([1, 3, 2]);
    expect(data.series[1]?.values).toEqual([2, 4, 4]);
    expect(data.series.every((s) => s.values.length === steps.length)).toBe(true);
  });

  it("adds the τ line and μ for Mirostat", () => {
    const data = runChartData([step(6, 64, 10), step(4, 32, 9.9)], 5);
    const tau = data.series.find((s) => s.label.startsWith("τ"));
    const mu = data.series.find((s) => s.label.startsWith("μ"));
    expect(tau?.values).toEqual([5, 5]);
    expect(mu?.values).toEqual([10, 9.9]);
    expect(tau?.axis).toBe("bits");
  });

  it("overlays runs of different lengths and leaves out runs without tokens", () => {
    const data = compareChartData([
      { label: "a", steps: [step(1, 2), step(1, 2)] },
      { label: "superposed", steps: [] },
      { label: "b", steps: [step(1, 3), step(1, 3), step(1, 5)] },
    ]);
    expect(data.x).toEqual([1, 2, 3]);
    expect(data.series.map((s) => s.label)).toEqual(["a", "b"]);
    expect(data.series[0]?.values).toEqual([2, 2, null]);
    expect(data.series[1]?.values).toEqual([3, 3, 5]);
    expect(data.series[0]?.color).not.toBe(data.series[1]?.color);
  });

  it("is empty for no runs", () => {
    expect(compareChartData([])).toEqual({ x: [], series: [] });
  });
});
