import { describe, expect, it } from "vitest";
import { defaultSettings, defaultStrategy, defaultViewSettings, type Settings, type ViewSettings } from "./settings";
import { fromQuery, toQuery, viewsFromQuery } from "./urlstate";

describe("URL state", () => {
  it("writes nothing for the defaults and reads the defaults back", () => {
    expect(toQuery(defaultSettings())).toBe("");
    expect(fromQuery("")).toEqual(defaultSettings());
    expect(viewsFromQuery("")).toEqual(defaultViewSettings());
  });

  it("round-trips the Score and Autocomplete views' settings next to the form's", () => {
    const views: ViewSettings = {
      score: { text: "A human paragraph.\nTwo lines & a ?", textB: "A generated one.", context: "Prompt:", mode: "rank" },
      autocomplete: { drafts: 5, tokens: 8, reuse: false },
    };
    const s = { ...defaultSettings(), seed: 9 };
    const query = toQuery(s, {}, views);
    expect(viewsFromQuery(query)).toEqual(views);
    expect(fromQuery(query)).toEqual(s);
    // Out-of-range counts are clamped, unknown modes fall back.
    expect(viewsFromQuery("ak=100&an=0&sm=bogus&ar=yes")).toEqual({
      score: defaultViewSettings().score,
      autocomplete: { drafts: 6, tokens: 1, reuse: true },
    });
  });

  it("round-trips every setting, compare entries included", () => {
    const s: Settings = {
      ...defaultSettings(),
      prompt: "Ünïcode & symbols = ?#%\nsecond line",
      seed: 1234567,
      reseed: true,
      chat: true,
      maxTokens: 7,
      stopText: '"\\n\\n", "User:"',
      strategy: "mirostat1",
      temperature: 1.3,
      topK: { on: false, value: 12 },
      topP: { on: true, value: 0.9 },
      minP: { on: true, value: 0.05 },
      typicalP: { on: false, value: 0.2 },
      topNSigma: { on: true, value: 1.5 },
      xtc: { on: false, value: 0.3 },
      xtcThreshold: 0.2,
      epsilonCutoff: { on: true, value: 0.001 },
      etaCutoff: { on: false, value: 0.002 },
      dynamicTemperature: { on: true, value: 0.25 },
      dynamicExponent: 1.5,
      adaptiveP: { on: true, value: 0.4 },
      adaptiveDecay: 0.8,
      dry: { on: true, value: 1.2 },
      dryBase: 2,
      dryAllowedLength: 3,
      dryLastN: 256,
      order: "hf",
      penalties: { lastN: 32, repetition: 1.3, presence: 0.5, frequency: -0.25 },
      tau: 3.5,
      eta: 0.2,
      drafts: 5,
      alpha: 0,
      ngramWeights: [0.1, 0.2, 0.3, 0.4, 0.5],
      beams: 6,
      lengthPenalty: 0.5,
      earlyStopping: "never",
      compare: [
        defaultStrategy(),
        { ...defaultStrategy(), strategy: "greedy", xtc: { on: true, value: 0.5 }, dry: { on: true, value: 0.8 } },
        { ...defaultStrategy(), strategy: "superposed", drafts: 4, alpha: 0.3 },
        { ...defaultStrategy(), strategy: "beam", beams: 3, earlyStopping: "true" },
      ],
    };
    const query = toQuery(s);
    expect(fromQuery(query)).toEqual(s);
    expect(new URLSearchParams(query).get("rs")).toBe("1");
    // Through a real URL too, as a shared link travels.
    const url = new URL(`https://example.org/?${toQuery(s, { model: "tiny" })}`);
    expect(url.searchParams.get("model")).toBe("tiny");
    expect(fromQuery(url.search)).toEqual(s);
  });

  it("falls back to defaults for malformed values instead of failing", () => {
    const s = fromQuery("seed=-3&n=abc&t=NaN&k=!&tp=x&w=1,2&s=bogus&cmp=s%3Dgreedy&cmp=&cmp=&cmp=&cmp=");
    const d = defaultSettings();
    expect(s.seed).toBe(d.seed);
    expect(s.maxTokens).toBe(d.maxTokens);
    expect(s.temperature).toBe(d.temperature);
    expect(s.topK).toEqual(d.topK);
    expect(s.topP).toEqual(d.topP);
    expect(s.ngramWeights).toEqual(d.ngramWeights);
    expect(s.strategy).toBe(d.strategy);
    expect(s.compare).toHaveLength(4);
    expect(s.compare[0]?.strategy).toBe("greedy");
  });
});
