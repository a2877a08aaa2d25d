import { describe, expect, it } from "vitest";
import type { ScoredStep, ScoredText, TokenStep } from "./protocol";
import { describeProbe, probeContext, sameTokens, summarizeProbe } from "./probe";

const step = (text: string) => ({ text }) as TokenStep;
const scored = (lead: string, steps: [string, number, number][]): ScoredText =>
  ({
    lead, perplexity: 1, meanSurpriseBits: 1, contextTokens: 3, ms: 1,
    steps: steps.map(([text, prob, rank]) => ({ text, tokenText: text, prob, rank, surpriseBits: -Math.log2(prob) }) as ScoredStep),
  }) as ScoredText;

describe("probe context", () => {
  it("is the fed prompt, then the text generated before the position", () => {
    const before = [step(" a"), step(""), step("é"), step(" b")];
    expect(probeContext("<user>hi</user><assistant>", before)).toBe("<user>hi</user><assistant> aé b");
    expect(probeContext("Once", [])).toBe("Once");
  });
});

describe("probe summary", () => {
  it("multiplies the tokens' probabilities and takes the first token's rank", () => {
    const s = summarizeProbe(scored("", [[" the", 0.5, 2], [" sea", 0.25, 1]]));
    expect(s.prob).toBe(0.125);
    expect(s.bits).toBe(3);
    expect(s.firstRank).toBe(2);
    expect(s.tokens).toEqual([{ text: " the", prob: 0.5, rank: 2 }, { text: " sea", prob: 0.25, rank: 1 }]);
    expect(describeProbe(s)).toBe("12.5 % as the next text (3.00 bits, 2 tokens); its first token ranks #2 here.");
    expect(describeProbe(summarizeProbe(scored("", [[" x", 1, 1]])))).toBe("100.0 % as the next text (0.00 bits, 1 token); its first token ranks #1 here.");
  });

  it("refuses a text whose first token nothing predicts", () => {
    expect(() => summarizeProbe(scored("The", [[" cat", 0.5, 1]]))).toThrow(/no probability/);
    expect(() => summarizeProbe(scored("", []))).toThrow(/no probability/);
  });
});

describe("the context's tokens", () => {
  const steps = (...tokens: number[]) => tokens.map((token) => ({ token, text: "" }) as TokenStep);
  it("stand for the run's when they are the fed prompt's, then the generated ones", () => {
    expect(sameTokens([1, 2], steps(3, 4), [1, 2, 3, 4])).toBe(true);
    expect(sameTokens([1, 2], [], [1, 2])).toBe(true);
  });
  it("do not when the text splits otherwise, or lost a character's first bytes", () => {
    expect(sameTokens([1, 2], steps(3, 3), [1, 2, 5])).toBe(false);
    expect(sameTokens([1, 2], steps(3, 4), [1, 2, 3])).toBe(false);
  });
});
