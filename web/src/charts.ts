// The perplexity chart (uPlot): per token the surprise in bits, the running perplexity, and
// for Mirostat the target τ and the truncation level μ. μ has its own axis: when τ is above what
// the model produces, μ climbs far above the surprise and would flatten it on a shared one. In
// compare mode, the running perplexity of every run overlaid. The data shaping is pure and
// unit-tested; the chart object only draws what it is given.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { TokenStep } from "./protocol";

export interface SeriesData {
  label: string;
  /** One value per x; null where a series has no point (a shorter run). */
  values: (number | null)[];
  /** "bits" plots on the left axis, "ppl" on the right (log) axis, "mu" on its own right axis. */
  axis: "bits" | "ppl" | "mu";
  color: string;
  dash?: number[];
  points?: boolean;
  width?: number;
}

export interface ChartData {
  /** Token positions 1..n. */
  x: number[];
  series: SeriesData[];
}

export const COLORS = {
  surprise: "#d9622b",
  perplexity: "#2f62c9",
  tau: "#1b8a5a",
  mu: "#8e44ad",
  runs: ["#2f62c9", "#d9622b", "#1b8a5a", "#8e44ad"],
};

/** One run: a point per generated token. `tau` is set for Mirostat runs. */
export function runChartData(steps: readonly TokenStep[], tau: number | null): ChartData {
  const x = steps.map((_, i) => i + 1);
  const series: SeriesData[] = [
    { label: "surprise (bits)", values: steps.map((s) => s.surpriseBits), axis: "bits", color: COLORS.surprise, points: true, width: 1 },
    { label: "running perplexity", values: steps.map((s) => s.perplexity), axis: "ppl", color: COLORS.perplexity, width: 2.5 },
  ];
  if (tau !== null) {
    series.push({ label: "τ target (bits)", values: steps.map(() => tau), axis: "bits", color: COLORS.tau, dash: [6, 4], width: 2 });
    series.push({ label: "μ (bits)", values: steps.map((s) => s.mu ?? null), axis: "mu", color: COLORS.mu, width: 1.5 });
  }
  return { x, series };
}

const SHORTFALL_BITS = 1;

/**
 * For a Mirostat run whose surprise stayed far below τ: μ rises without bound, and truncation,
 * which cuts at μ, stops cutting. Says so, with what the model did produce; null when τ was
 * reached or nearly (μ settling from its start at 2τ runs a few tenths of a bit under τ), or
 * when the run is too short to tell.
 */
export function mirostatShortfall(steps: readonly TokenStep[], tau: number, vocabSize: number): string | null {
  const mus = steps.flatMap((s) => (s.mu == null ? [] : [s.mu]));
  if (steps.length < 16 || mus.length < 2) return null;
  const mean = steps.reduce((sum, s) => sum + s.surpriseBits, 0) / steps.length;
  if (mean > tau - SHORTFALL_BITS || mus.at(-1)! <= mus[0]!) return null;
  const whole = steps.filter((s) => s.kept >= vocabSize).length;
  const kept = steps.reduce((sum, s) => sum + s.kept, 0) / steps.length;
  const cut = whole > 0 ? `it kept the whole vocabulary in ${whole} of ${steps.length} steps` : `it kept ${Math.round(kept).toLocaleString("en")} tokens on average`;
  return `Mirostat cannot reach τ = ${tau} bits here: the model's surprise averaged ${mean.toFixed(2)} bits, so μ kept rising (${mus[0]!.toFixed(1)} → ${mus.at(-1)!.toFixed(1)} bits) and ${cut}. Set τ below about ${mean.toFixed(1)} bits, or raise the temperature.`;
}

/** Compare mode: each run's running perplexity, padded with nulls to the longest run. Runs
 *  without token steps (superposed) are left out: they report draft scores instead. */
export function compareChartData(runs: readonly { label: string; steps: readonly TokenStep[] }[]): ChartData {
  const plotted = runs.filter((r) => r.steps.length > 0);
  const n = Math.max(0, ...plotted.map((r) => r.steps.length));
  const x = Array.from({ length: n }, (_, i) => i + 1);
  const series = plotted.map(
    (run, i): SeriesData => ({
      label: run.label,
      values: x.map((_, j) => run.steps[j]?.perplexity ?? null),
      axis: "ppl",
      color: COLORS.runs[runs.indexOf(run) % COLORS.runs.length] ?? COLORS.perplexity,
      width: 2,
      dash: i % 2 ? [8, 3] : undefined,
    }),
  );
  return { x, series };
}

const fmt = (v: number | null | undefined, digits = 2) => (v == null ? "–" : v.toFixed(digits));

/** A uPlot chart that is rebuilt when its series change and updated in place otherwise. */
export class Chart {
  private plot: uPlot | null = null;
  private shape = "";
  private data: ChartData = { x: [], series: [] };
  private pending = false;
  private readonly resize = new ResizeObserver(() => this.plot?.setSize(this.size()));

  constructor(private readonly el: HTMLElement, private readonly height = 260) {
    this.resize.observe(el);
  }

  /** The last data given, for tests and export. */
  get current(): ChartData {
    return this.data;
  }

  set(data: ChartData): void {
    this.data = data;
    // Tests read the point count and series labels from the element.
    this.el.dataset.points = String(data.x.length);
    this.el.dataset.series = data.series.map((s) => s.label).join("|");
    // Streaming runs post a step every few ms: draw at most once a frame.
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  clear(): void {
    this.set({ x: [], series: [] });
  }

  private size() {
    return { width: Math.max(280, this.el.clientWidth), height: this.height };
  }

  private draw(): void {
    const { x, series } = this.data;
    const shape = series.map((s) => `${s.label}/${s.axis}`).join("|");
    const aligned = [x, ...series.map((s) => s.values)] as uPlot.AlignedData;
    if (this.plot && shape === this.shape) {
      this.plot.setData(aligned);
      return;
    }
    this.plot?.destroy();
    this.shape = shape;
    this.plot = series.length === 0 ? null : new uPlot(this.options(series), aligned, this.el);
  }

  private options(series: SeriesData[]): uPlot.Options {
    const hasPpl = series.some((s) => s.axis === "ppl");
    const hasBits = series.some((s) => s.axis === "bits");
    const hasMu = series.some((s) => s.axis === "mu");
    return {
      ...this.size(),
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: {
        x: { time: false },
        bits: { auto: true, range: (_u, min, max) => [Math.min(0, min), Math.max(1, max * 1.1)] },
        mu: { auto: true, range: (_u, min, max) => [Math.min(0, min), Math.max(1, max * 1.1)] },
        ppl: { distr: 3, log: 10, auto: true, range: (_u, _min, max) => [1, Math.max(2, max * 1.2)] },
      },
      axes: [
        // Token positions are whole numbers.
        { label: "token", stroke: "#555", incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000] },
        ...(hasBits ? [{ scale: "bits", label: "bits", stroke: COLORS.surprise }] : []),
        ...(hasPpl
          ? [{ scale: "ppl", label: "perplexity", side: hasBits ? 1 : 3, stroke: COLORS.perplexity, grid: { show: !hasBits } }]
          : []),
        ...(hasMu ? [{ scale: "mu", label: "μ (bits)", side: 1, stroke: COLORS.mu, grid: { show: false } }] : []),
      ],
      series: [
        { label: "token" },
        ...series.map(
          (s): uPlot.Series => ({
            label: s.label,
            scale: s.axis,
            stroke: s.color,
            width: s.width ?? 1.5,
            dash: s.dash,
            spanGaps: false,
            points: { show: s.points ?? false, size: 5, fill: s.color },
            value: (_u, v) => fmt(v),
          }),
        ),
      ] as uPlot.Series[],
    };
  }
}
