// A run as a JSON file: enough to see every step again, and the link that reproduces it.
import type { ModelInfo, RunStats, Step, GenerateConfig, TokenStep } from "./protocol";
import type { Settings } from "./settings";

export interface ExportedRun {
  label: string;
  config: GenerateConfig;
  stats: RunStats | null;
  cancelled: boolean;
  steps: Step[];
}

export interface Export {
  format: "decoding-playground-run/1";
  exportedAt: string;
  link: string;
  /** The backend label, e.g. "WebGPU · …" or "CPU · wasm SIMD128" (null before a model loads). */
  backend: string | null;
  model: ModelInfo | null;
  prompt: string;
  settings: Settings;
  runs: ExportedRun[];
  /** The branches of the run: where each left its parent (0: the run), and its steps (the
   *  token taken there first). */
  branches: { id: number; parent: number; at: number; steps: TokenStep[] }[];
}

export function download(data: Export): void {
  const blob = new Blob([JSON.stringify(data, null, 1)], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `decoding-run-${data.exportedAt.replace(/[:.]/g, "-")}.json`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
