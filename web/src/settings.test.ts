import { describe as group, expect, it } from "vitest";
import { beamConfig, defaultStrategy, describe, ignoredByStrategy, toConfig, checkBasics, defaultSettings, randomSeed, SEED_RANGE, STAGE_HELP, stopStrings, STRATEGIES, STRATEGY_HELP } from "./settings";

group("settings → GenerateConfig", () => {
  it("sends the chain's switched-on stages only", () => {
    const c = toConfig({ ...defaultStrategy(), minP: { on: true, value: 0.1 }, topK: { on: false, value: 40 } }, 9, 16);
    expect(c).toMatchObject({ maxTokens: 16, stopTokens: null, superposed: null });
    expect(c.sampler).toMatchObject({ seed: 9, temperature: 0.8, topK: null, topP: 0.95, minP: 0.1, typicalP: null, mirostat: null });
    expect(c.sampler.order.at(-1)).toBe("temperature");
    expect(c.sampler).toMatchObject({ topNSigma: null, xtc: null, epsilonCutoff: null, etaCutoff: null, dynamicTemperature: null, dry: null });
  });

  it("sends the llama.cpp and HF samplers with their second parameters, and every stage in the order", () => {
    const s = {
      ...defaultStrategy(),
      topNSigma: { on: true, value: 1.5 },
      xtc: { on: true, value: 0.4 },
      xtcThreshold: 0.15,
      epsilonCutoff: { on: true, value: 0.001 },
      etaCutoff: { on: true, value: 0.002 },
      dynamicTemperature: { on: true, value: 0.3 },
      dynamicExponent: 2,
      dry: { on: true, value: 0.9 },
      dryBase: 2,
      dryAllowedLength: 3,
      dryLastN: 128,
    };
    for (const order of ["llama", "hf"] as const) {
      const c = toConfig({ ...s, order }, 0, 8);
      expect(c.sampler).toMatchObject({
        topNSigma: 1.5,
        xtc: { probability: 0.4, threshold: 0.15 },
        epsilonCutoff: 0.001,
        etaCutoff: 0.002,
        dynamicTemperature: { range: 0.3, exponent: 2 },
        dry: { multiplier: 0.9, base: 2, allowedLength: 3, lastN: 128, sequenceBreakers: ["\n", ":", '"', "*"] },
      });
      expect(new Set(c.sampler.order)).toEqual(new Set(["temperature", "topK", "topP", "minP", "typical", "topNSigma", "xtc", "epsilon", "eta"]));
    }
    expect(describe(s)).toBe("top-nσ 1.5 → top-k 40 → top-p 0.95 → ε 0.001 → η-cut 0.002 → XTC 0.4 → T 0.8±0.3 + DRY 0.9");
    const greedy = toConfig({ ...s, strategy: "greedy" }, 0, 8).sampler;
    expect(greedy).toMatchObject({ topNSigma: null, xtc: null, epsilonCutoff: null, etaCutoff: null, dynamicTemperature: null });
    expect(greedy.dry).not.toBeNull();
  });

  it("greedy is temperature 0 without truncation", () => {
    const c = toConfig({ ...defaultStrategy(), strategy: "greedy" }, 0, 8);
    expect(c.sampler).toMatchObject({ temperature: 0, topK: null, topP: null, minP: null, typicalP: null });
    expect(ignoredByStrategy({ ...defaultStrategy(), strategy: "greedy" })).toContain("topK");
  });

  it("Mirostat keeps the truncation settings so that the crate can say it ignores them", () => {
    const c = toConfig({ ...defaultStrategy(), strategy: "mirostat1", tau: 4, eta: 0.2 }, 0, 8);
    expect(c.sampler.mirostat).toEqual({ version: 1, tau: 4, eta: 0.2 });
    expect(c.sampler.topK).toBe(40);
  });

  it("superposed decoding sends its own config", () => {
    const c = toConfig({ ...defaultStrategy(), strategy: "superposed", drafts: 4, alpha: 0.5 }, 0, 8);
    expect(c.superposed).toMatchObject({ drafts: 4, alpha: 0.5, ngramOrders: [2, 3, 4, 5, 6], ngramWeights: [0.01, 0.04, 0.15, 0.18, 0.12] });
  });

  it("beam search sends its own config, and adaptive-p its target and decay", () => {
    const beam = { ...defaultStrategy(), strategy: "beam" as const, beams: 3, lengthPenalty: 0.5, earlyStopping: "never" as const };
    expect(beamConfig(beam, 12)).toEqual({ beams: 3, maxTokens: 12, lengthPenalty: 0.5, earlyStopping: "never", stopTokens: null });
    expect(beamConfig({ ...beam, earlyStopping: "true" }, 12).earlyStopping).toBe(true);
    expect(describe(beam)).toBe("beam search k 3 length penalty 0.5 early stopping never");
    const adaptive = { ...defaultStrategy(), adaptiveP: { on: true, value: 0.4 }, adaptiveDecay: 0.8 };
    expect(toConfig(adaptive, 0, 8).sampler.adaptiveP).toEqual({ target: 0.4, decay: 0.8 });
    expect(describe(adaptive)).toMatch(/ → adaptive-p 0\.4$/);
    expect(toConfig({ ...adaptive, strategy: "greedy" }, 0, 8).sampler.adaptiveP).toBeNull();
  });

  it("reads stop strings as quoted strings separated by commas, and sends them", () => {
    expect(stopStrings("")).toEqual([]);
    expect(stopStrings("  ")).toEqual([]);
    expect(stopStrings('"\\n\\n", "User:", " the end, then"')).toEqual(["\n\n", "User:", " the end, then"]);
    expect(stopStrings("User:")).toBeNull();
    expect(stopStrings('"a", 3')).toBeNull();
    expect(stopStrings('"unclosed')).toBeNull();
    expect(toConfig(defaultStrategy(), 0, 8, ["\n\n"]).stopStrings).toEqual(["\n\n"]);
    expect(toConfig(defaultStrategy(), 0, 8).stopStrings).toEqual([]);
    expect(checkBasics({ ...defaultSettings(), stopText: "User:" })).toMatch(/^Stop strings must be quoted and separated by commas/);
    expect(checkBasics({ ...defaultSettings(), stopText: '"User:"' })).toBeNull();
  });

  it("labels strategies for compare columns", () => {
    expect(describe(defaultStrategy())).toBe("top-k 40 → top-p 0.95 → T 0.8");
    expect(describe({ ...defaultStrategy(), order: "hf" })).toBe("T 0.8 → top-k 40 → top-p 0.95");
    expect(describe({ ...defaultStrategy(), strategy: "mirostat2" })).toBe("Mirostat v2 τ 2 η 0.1 T 0.8");
    expect(describe({ ...defaultStrategy(), strategy: "greedy", penalties: { lastN: 64, repetition: 1.3, presence: 0, frequency: 0 } })).toBe("greedy + rep 1.3");
  });

  it("checks what the sampler cannot", () => {
    expect(checkBasics(defaultSettings())).toBeNull();
    expect(checkBasics({ ...defaultSettings(), seed: 1.5 })).toMatch(/Seed/);
    expect(checkBasics({ ...defaultSettings(), maxTokens: Number.NaN })).toMatch(/Max tokens/);
  });

  it("describes every strategy of the selector, and every stage of the chain, in one line", () => {
    expect(Object.keys(STRATEGY_HELP).sort()).toEqual(STRATEGIES.map((s) => s.kind).sort());
    for (const { kind, label } of STRATEGIES) {
      const help = STRATEGY_HELP[kind];
      // Each line names its strategy first, as the selector does.
      expect(help.startsWith(`${label.split(" (")[0]}:`), `${kind}: ${help}`).toBe(true);
      expect(help.length).toBeLessThan(200);
      expect(help).not.toMatch(/\n/);
    }
    expect(new Set(Object.values(STRATEGY_HELP)).size).toBe(STRATEGIES.length);
    expect(STRATEGY_HELP.mirostat2).toMatch(/τ bits \(Basu et al\. 2020\)/);
    expect(STRATEGY_HELP.superposed).toMatch(/n-gram.*\(Shen et al\. 2024\)/);
    expect(STRATEGY_HELP.beam).toMatch(/length\^penalty/);
    expect(Object.keys(STAGE_HELP).sort()).toEqual(
      ["adaptiveP", "dry", "dynamicTemperature", "epsilonCutoff", "etaCutoff", "minP", "penalties", "temperature", "topK", "topNSigma", "topP", "typicalP", "xtc"],
    );
    for (const help of Object.values(STAGE_HELP)) expect(help.length).toBeLessThan(200);
  });

  it("picks a fresh seed in range that is never the current one", () => {
    expect(randomSeed(5, () => 0)).toBe(6);
    expect(randomSeed(5, () => 0.999_999_9)).toBe(4);
    expect(randomSeed(SEED_RANGE - 1, () => 0)).toBe(0);
    // A seed from a link may be above the range, or the box empty.
    expect(randomSeed(4_000_000, () => 0.5)).toBeLessThan(SEED_RANGE);
    expect(randomSeed(Number.NaN, () => 0)).toBe(1);
    for (let i = 0; i < 1000; i++) {
      const current = i % 3;
      const seed = randomSeed(current);
      expect(Number.isSafeInteger(seed) && seed >= 0 && seed < SEED_RANGE && seed !== current).toBe(true);
    }
  });
});
