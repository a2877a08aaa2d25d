import { describe, expect, it } from "vitest";
import { suggestionConfigs } from "./autocomplete";

describe("autocomplete configs", () => {
  it("one superposed run of k drafts, timed against nucleus runs of the same length", () => {
    const { superposed, nucleus } = suggestionConfigs(3, 5, 0);
    expect(superposed.maxTokens).toBe(5);
    expect(superposed.superposed).toMatchObject({ drafts: 3, alpha: 0 });
    const run = nucleus(2);
    expect(run.superposed).toBeNull();
    expect(run.maxTokens).toBe(5);
    expect(run.sampler).toMatchObject({ seed: 2, temperature: 1, topK: null, topP: 0.9, minP: null, typicalP: null });
  });
});
