import { describe, expect, it } from "vitest";
import { compareChartData, mirostatShortfall, runChartData } from "./charts";
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
    // μ can run far above the surprise (τ out of reach): its own axis keeps the surprise readable.
    expect(mu?.axis).toBe("mu");
  });

  it("says when Mirostat's τ is out of the model's reach, and only then", () => {
    // Surprise ~2 bits against τ 5: μ climbs, truncation keeps everything.
    const climbing = Array.from({ length: 20 }, (_, i) => ({ ...step(2, 4, 10 + i * 0.3), kept: i < 5 ? 100 : 512 }));
    expect(mirostatShortfall(climbing, 5, 512)).toBe(
      "Mirostat cannot reach τ = 5 bits here: the model's surprise averaged 2.00 bits, so μ kept rising (10.0 → 15.7 bits) and it kept the whole vocabulary in 15 of 20 steps. Set τ below about 2.0 bits, or raise the temperature.",
    );
    expect(mirostatShortfall(climbing, 5, 49152)).toMatch(/it kept 409 tokens on average/);
    // τ reached: surprise around τ, μ settles.
    const tracking = Array.from({ length: 20 }, (_, i) => step(i % 2 ? 1.5 : 2.5, 4, 4 - i * 0.01));
    expect(mirostatShortfall(tracking, 2, 512)).toBeNull();
    // A few tenths under τ while μ settles (SmolLM2 at the page's τ 2, T 0.8): not a shortfall.
    const settling = Array.from({ length: 48 }, (_, i) => step(1.6, 4, 4 + i * 0.04));
    expect(mirostatShortfall(settling, 2, 49152)).toBeNull();
    expect(mirostatShortfall(climbing.slice(0, 10), 5, 512)).toBeNull();
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
