import { describe, expect, it } from "vitest";
import { pct, surpriseColor, visibleText } from "./tokens";

describe("token view helpers", () => {
  it("formats probabilities readably at every scale", () => {
    expect(pct(0.284)).toBe("28.4 %");
    expect(pct(0.0189)).toBe("1.9 %");
    expect(pct(0.00065)).toBe("0.065 %");
    expect(pct(3e-9)).toBe("3.0e-7 %");
  });

  it("shows whitespace and control characters", () => {
    expect(visibleText(" the\n")).toBe("“ the⏎”");
    expect(visibleText("\u0013")).toBe("“\\x13”");
  });

  it("colours more surprising tokens darker, capped at 12 bits", () => {
    expect(surpriseColor(0)).toBe("hsl(52 95% 93%)");
    expect(surpriseColor(12)).toBe("hsl(0 95% 55%)");
    expect(surpriseColor(40)).toBe(surpriseColor(12));
  });
});
