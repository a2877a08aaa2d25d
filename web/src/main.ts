// Wires the page: model panel, settings form, single runs, compare mode, personal n-grams,
// share and export. All the model work happens in the worker.
import "./style.css";
import type { ChartData } from "./charts";
import { createWorkerModel, fetchWithCache } from "decoding-playground";
import { EngineClient, WorkerError, type Notice } from "./client";
import { CompareView, presetEntries } from "./compare";
import { Controls } from "./controls";
import { download, type ExportedRun } from "./exportrun";
import { backendLabel, ModelPanel, serverModel, storeCorpus, type NgramChoice } from "./modelpanel";
import type { Alternative, BackendChoice, TokenStep } from "./protocol";
import { RunView, setSpeed, setStatus, type RunSummary } from "./runview";
import { AutocompleteView } from "./autocomplete";
import { BranchTree, decodeForkPoints, encodeForkPoints, perplexityOf, takenStep, type ForkPoint } from "./branches";
import { BranchView, takeButtons } from "./branchview";
import { Probe } from "./probe";
import { ScoreView } from "./scoreview";
import { beamConfig, checkBasics, ignoredByStrategy, MAX_COMPARE, runStops, strategyOf, toConfig, type Settings } from "./settings";
import { modelParam, urlSource } from "./modelurl";
import { hasWasmSimd } from "./simd";
import { fromQuery, toQuery, viewsFromQuery } from "./urlstate";

const $ = <T extends HTMLElement = HTMLElement>(selector: string) => document.querySelector(selector) as T;

const query = new URLSearchParams(location.search);
// WebGPU when the browser has a hardware adapter, else the CPU; `?backend=cpu|webgpu` forces one.
const backendParam = query.get("backend");
const backendChoice: BackendChoice = backendParam === "cpu" || backendParam === "webgpu" ? backendParam : "auto";
// `?model=tiny`, or a model's URL (which waits for the visitor's click), or SmolLM2.
const linkedModel = modelParam(query.get("model"));
const modelChoice = linkedModel.kind === "server" ? linkedModel.which : "smollm2";
// `?threads=N`: the CPU engine's threads (default: half the cores). More than one needs the
// page to be cross-origin isolated; the header says how many it got, and why not more.
const threadsParam = Number(query.get("threads"));
const threadsChoice = Number.isSafeInteger(threadsParam) && threadsParam > 0 ? threadsParam : undefined;
// `?ctx=N` caps the context (and so the KV cache's memory) of a GGUF model.
const ctxParam = Number(query.get("ctx"));
const contextChoice = Number.isSafeInteger(ctxParam) && ctxParam > 0 ? ctxParam : null;
// The server's models are GGUF files; `?format=onnx` loads their ONNX exports instead.
const formatChoice = query.get("format") === "onnx" ? "onnx" : "gguf";
// `?ngrams=public-domain`: SmolLM2's n-gram store without the Brown corpus's licence terms.
const ngramChoice: NgramChoice = query.get("ngrams") === "public-domain" ? "public-domain" : "default";
// Kept in every link: a tiny-model link must not load SmolLM2, nor an ONNX link the GGUF. `model`
// follows the model that loaded (a URL one included).
const modelQuery = query.get("model");
// `?br=`: the branches of the run the link reproduces, rebuilt after its next run.
const linkedBranches = decodeForkPoints(query.get("br") ?? "") ?? [];
const extraParams: Record<string, string> = {
  ...(modelQuery ? { model: modelQuery } : {}),
  ...(linkedBranches.length ? { br: encodeForkPoints(linkedBranches) } : {}),
  ...(formatChoice === "onnx" ? { format: "onnx" } : {}),
  ...(backendChoice === "auto" ? {} : { backend: backendChoice }),
  ...(contextChoice === null ? {} : { ctx: String(contextChoice) }),
  ...(threadsChoice === undefined ? {} : { threads: String(threadsChoice) }),
  ...(ngramChoice === "default" ? {} : { ngrams: ngramChoice }),
};

/** What tests and curious users can read: `window.__playground`. */
interface PlaygroundState {
  readonly chart: ChartData;
  readonly compareChart: ChartData;
  lastRun: RunSummary | null;
  compareRuns: { label: string; steps: number; tokensPerSecond: number | null; wallMs: number | null; error: string | null }[];
  model: string | null;
  /** The loaded model's backend, as the header shows it. */
  backend: string | null;
  /** Finished runs (done or stopped), to wait on. */
  runs: number;
}
declare global {
  interface Window {
    __playground: PlaygroundState;
  }
}

if (hasWasmSimd()) {
  start();
} else {
  // Nothing can run: say why instead of failing on the first compile.
  const error = $("#model-error");
  error.hidden = false;
  error.textContent =
    "This browser does not support WebAssembly SIMD (simd128), which the model runtime needs. Use a current Chrome, Edge, Firefox or Safari (16.4 or later).";
  $("#model-status").dataset.state = "error";
  $("#model-status").textContent = "No model can run in this browser.";
  for (const control of document.querySelectorAll<HTMLButtonElement | HTMLInputElement>("button, input, select, textarea")) control.disabled = true;
  $("#backend").textContent = "wasm SIMD128 unavailable";
}

function start(): void {
  const form = $<HTMLFormElement>("#settings");
  const runButton = $<HTMLButtonElement>("#run");
  const stopButton = $<HTMLButtonElement>("#stop");
  const compareRunButton = $<HTMLButtonElement>("#compare-run");
  const ngramStatus = $("#ngram-status");

  const client = new EngineClient(
    (onFailure) => createWorkerModel(new Worker(new URL("./worker-entry.ts", import.meta.url), { type: "module" }), null, { onFailure, ...(threadsChoice ? { threads: threadsChoice } : {}) }),
    fetchWithCache,
  );
  const models = new ModelPanel($("#model-panel"), client);
  models.serverFormat = formatChoice;
  models.serverNgrams = ngramChoice;
  client.backend = backendChoice;
  client.contextLength = contextChoice;
  const controls = new Controls(form, onFormChange);
  const view = new RunView();
  const compare = new CompareView($("#compare-panel"));
  const scoreView = new ScoreView($("#score-panel"), client);
  const autocomplete = new AutocompleteView($("#autocomplete-panel"), client);
  autocomplete.hasNgrams = () => Boolean(models.info?.ngramTokens);
  scoreView.beforeScore = () => autocomplete.idle();
  const probe = new Probe(client);
  probe.beforeProbe = () => autocomplete.idle();
  const views = viewsFromQuery(location.search);
  scoreView.settings = views.score;
  autocomplete.settings = views.autocomplete;
  scoreView.onChange = autocomplete.onChange = () => writeUrl();
  let settings: Settings = fromQuery(location.search);
  let busy = false;
  let modelReady = false;
  let stopRequested = false;
  let lastRuns: ExportedRun[] = [];

  const state: PlaygroundState = {
    get chart() {
      return view.chart.current;
    },
    get compareChart() {
      return compare.chart.current;
    },
    lastRun: null,
    compareRuns: [],
    model: null,
    backend: null,
    runs: 0,
  };
  window.__playground = state;

  // Sections reached from the header's links scroll to below the sticky header, however tall it wraps.
  const header = $("header.top");
  new ResizeObserver(() => document.documentElement.style.setProperty("--header", `${header.offsetHeight}px`)).observe(header);

  controls.write(settings);
  compare.setEntries(settings.compare);
  compare.onEntriesChange = (entries) => {
    controls.setCompare(entries);
    onFormChange();
  };

  function refreshButtons(): void {
    runButton.disabled = busy || !modelReady;
    scoreView.ready = !busy && modelReady;
    autocomplete.ready = !busy && modelReady;
    scoreView.refresh();
    // The engine runs one generation at a time, and a score must wait for it.
    probe.blocked = busy ? "A generation is running: probe once it has ended." : modelReady ? null : "No model is loaded.";
    $<HTMLButtonElement>("#score-output").disabled = busy || !modelReady || !state.lastRun?.text;
    compareRunButton.disabled = busy || !modelReady || compare.entries.length < 2;
    stopButton.disabled = !busy;
    $<HTMLButtonElement>("#ngram-build").disabled = busy || !modelReady;
    $<HTMLButtonElement>("#compare-add").disabled = compare.entries.length >= MAX_COMPARE;
    branches.enabled = !busy && modelReady;
    branches.render();
  }

  // ---- settings ⇄ URL, live validation ----
  let inspectTimer = 0;
  function writeUrl(): void {
    const views = { score: scoreView.settings, autocomplete: autocomplete.settings };
    history.replaceState(null, "", `?${toQuery(settings, extraParams, views)}`);
  }
  function onFormChange(): void {
    settings = controls.read();
    controls.showGroups(settings.strategy);
    writeUrl();
    clearTimeout(inspectTimer);
    inspectTimer = window.setTimeout(() => void inspect(), 120);
  }

  async function inspect(): Promise<void> {
    const s = settings;
    const basic = checkBasics(s);
    const stops = runStops(s);
    const reply = await client.inspect(toConfig(s, Number.isSafeInteger(s.seed) ? s.seed : 0, 1, stops));
    if (s !== settings) return; // the form changed meanwhile
    controls.showIgnored([...reply.ignored, ...ignoredByStrategy(s)], s.strategy);
    controls.showError(basic ?? (reply.error ? `Invalid parameter: ${reply.error}` : null));
  }

  // ---- model ----
  models.onLoading = () => {
    modelReady = false;
    refreshButtons();
  };
  models.onLoaded = (info) => {
    modelReady = true;
    // The link names the model now loaded; dropped files have no name a link could carry.
    if (models.lastUrl) {
      if (models.lastUrl.param === null) delete extraParams.model;
      else extraParams.model = models.lastUrl.param;
      writeUrl();
    }
    state.model = info.name;
    view.vocabSize = info.vocabSize;
    state.backend = backendLabel(info.backend, info.threads);
    // The panel's first words asked for a model: now it can run (unless a run, or what stopped
    // the engine, already shows).
    if (!busy && state.runs === 0 && $("#run-status").dataset.state === "idle") setStatus(`${info.name} is ready: press Generate.`);
    $("#backend").textContent = state.backend;
    $("#backend").dataset.backend = info.backend?.backend ?? "cpu";
    // Chat needs the model's template; a model without one cannot be asked for it.
    controls.chat.disabled = !info.chatTemplate;
    if (!info.chatTemplate) controls.chat.checked = false;
    $("#chat-label").title = info.chatTemplate ? "" : `${info.name} has no chat template`;
    ngramStatus.dataset.state = "default";
    const corpus = storeCorpus(models.lastUrl);
    ngramStatus.textContent = info.ngramTokens
      ? `Default store${corpus ? ` (${corpus})` : ""}: ${info.ngramTokens.toLocaleString("en")} tokens.`
      : "This model has no n-gram store: build one below, or run superposed decoding with α = 0.";
    refreshButtons();
  };
  client.onRestart = (reason) => {
    modelReady = false;
    models.info = null;
    busy = false;
    refreshButtons();
    const lastSource = models.lastUrl;
    setStatus(`The engine stopped (${reason}) and was restarted${lastSource ? "; the model is loading again" : ""}.`, "error");
    if (lastSource) void models.load(lastSource);
    else models.showError("The engine was restarted: load the model files again.");
  };
  client.onNotice = (message: Notice) => {
    if (message.type === "ngrams") {
      ngramStatus.textContent = `${message.personal ? "Personal" : "Default"} store: ${message.tokens.toLocaleString("en")} tokens.`;
      ngramStatus.dataset.state = message.personal ? "personal" : "default";
      if (message.personal) void rerunWithNewStore();
    } else {
      ngramStatus.textContent = `N-gram store: ${message.message}`;
      ngramStatus.dataset.state = "error";
    }
  };
  // Files dropped anywhere on the page go to the model panel, instead of the browser opening them.
  for (const type of ["dragover", "drop"]) document.addEventListener(type, (e) => e.preventDefault());

  /** Reads the form; when it is valid, marks a run as started and returns its settings. With
   *  "new seed on every run" (and `reseed`), the form gets a fresh seed first: the URL and the
   *  export then still reproduce the run. */
  function beginRun(reseed: boolean): Settings | null {
    if (reseed && controls.read().reseed) controls.newSeed();
    const s = (settings = controls.read());
    // A pending check of the form would answer after the run's own error (a prompt too long
    // for the context, say) and clear it: check now, before the run is posted, as the worker
    // answers in order.
    clearTimeout(inspectTimer);
    void inspect();
    const basic = checkBasics(s);
    if (basic) {
      controls.showError(basic);
      return null;
    }
    busy = true;
    stopRequested = false;
    refreshButtons();
    return s;
  }

  // ---- a single run ----
  async function generate(reseed = true): Promise<void> {
    // Busy before the first await: a second click (a double-click) must find the run begun.
    const s = beginRun(reseed);
    if (!s) return;
    await autocomplete.idle();
    controls.showError(null);
    view.begin(s);
    branches.reset(null);
    pinPanel(s, 0);
    try {
      if (s.strategy === "beam") {
        const result = await client.beamSearch(s.prompt, beamConfig(s, s.maxTokens), (step) => view.beamStep(step), { chat: s.chat });
        state.lastRun = view.finishBeams(s, result);
        state.runs += 1;
        lastRuns = [];
        return;
      }
      const config = toConfig(s, s.seed, s.maxTokens, runStops(s));
      const result = await client.run(s.prompt, config, (step, elapsedMs) => view.step(step, elapsedMs), { chat: s.chat });
      state.lastRun = view.finish(s, result);
      const tokenSteps = result.steps.filter((step): step is TokenStep => step.kind === "token");
      tree = s.strategy === "superposed" || tokenSteps.length === 0 ? null : { tree: new BranchTree(tokenSteps), settings: s };
      branches.reset(tree?.tree ?? null);
      if (tree && pendingBranches.length) {
        const points = pendingBranches;
        pendingBranches = [];
        // After `finally`: each branch is a generation of its own.
        queueMicrotask(() => void rebuildBranches(points));
      } else {
        syncBranchParam();
      }
      if (s.strategy === "superposed" && !result.cancelled) await view.scoreFinals((text, context) => client.score(text, context, s.chat), s.prompt);
      state.runs += 1;
      lastRuns = [{ label: state.lastRun.label, config, stats: result.stats, cancelled: result.cancelled, steps: result.steps }];
    } catch (error) {
      const message = (error as Error).message;
      // The restart has said what stopped the engine.
      if (error instanceof WorkerError && error.kind === "crash") return;
      if (error instanceof WorkerError && error.kind === "config") {
        controls.showError(`Invalid parameter: ${message}`);
        setStatus("Not run: fix the parameter above.", "error");
      } else {
        setStatus(`The run failed: ${message}`, "error");
      }
    } finally {
      busy = false;
      refreshButtons();
    }
  }

  // ---- branches: another token at any position of the run, and the model goes on ----
  let tree: { tree: BranchTree; settings: Settings } | null = null;
  const branches = new BranchView();
  branches.onShow = (id) => showBranch(id);
  branches.onDeleteShown = () => showBranch(0);
  branches.onChange = () => syncBranchParam();
  let pendingBranches: ForkPoint[] = linkedBranches;

  /** The link keeps the tree as fork points (the run's settings and seed give the rest). */
  function syncBranchParam(): void {
    const points = tree?.tree.forkPoints() ?? [];
    if (points.length) extraParams.br = encodeForkPoints(points);
    else delete extraParams.br;
    writeUrl();
  }

  /** A link's branches, made again after its run, in order: the same seed gives the same tokens,
   *  so each fork point finds its parent's token and alternative. */
  async function rebuildBranches(points: readonly ForkPoint[]): Promise<void> {
    const ids: (number | null)[] = [0];
    for (const point of points) {
      const parent = ids[point.parent] ?? null;
      const pinned = parent === null ? undefined : tree?.tree.sequence(parent)[point.at];
      const alt = pinned?.top.find((a) => a.token === point.token);
      ids.push(parent !== null && pinned && alt ? await branchFrom(parent, point.at, pinned, alt) : null);
    }
    const lost = ids.filter((id) => id === null).length;
    if (lost) setStatus(`${lost} of the link's ${points.length} branches could not be made again: the run differs from the link's.`, "error");
  }

  /** The pinned panel of the token view showing branch `shown`: the probe (after the run's own
   *  prompt, whatever the form says later) and the alternatives to branch on. */
  function pinPanel(s: Settings, shown: number): void {
    view.tokens.onPin = (before, pinned) => {
      const part = document.createElement("div");
      part.append(probe.form(s.prompt, s.chat, before));
      if (tree && s.strategy !== "superposed") {
        const why = busy ? "A generation is running." : modelReady ? null : "No model is loaded.";
        part.append(takeButtons(pinned, why, (alt) => void branchFrom(shown, before.length, pinned, alt)));
      }
      return part;
    };
  }

  function showBranch(id: number): void {
    const sequence = tree?.tree.sequence(id);
    if (!tree || !sequence || busy) return;
    branches.show(id);
    view.showSteps(tree.settings, sequence, `${tree.tree.label(id)}: ${sequence.length} tokens · perplexity ${perplexityOf(sequence).toFixed(2)}`);
    pinPanel(tree.settings, id);
  }

  /** Branches `parent` at position `at`, taking `alt` instead of `pinned`: the same settings and
   *  seed, as many tokens as the run had left. */
  async function branchFrom(parent: number, at: number, pinned: TokenStep, alt: Alternative): Promise<number | null> {
    if (busy || !tree) return null;
    const { tree: runTree, settings: s } = tree;
    busy = true;
    stopRequested = false;
    refreshButtons();
    await autocomplete.idle();
    const taken = takenStep(pinned, alt);
    const branch = runTree.add(parent, at, taken);
    const after = runTree.forkTokens(parent, at, alt.token);
    branches.show(branch.id);
    view.beginBranch(s, runTree.sequence(branch.id));
    pinPanel(s, branch.id);
    try {
      const config = toConfig(s, s.seed, Math.max(1, s.maxTokens - at - 1), runStops(s));
      const result = await client.run(s.prompt, config, (step, elapsedMs) => {
        if (step.kind === "token") branch.steps.push(step);
        view.step(step, elapsedMs);
      }, { chat: s.chat, after });
      view.finish(s, result);
      return branch.id;
    } catch (error) {
      runTree.delete(branch.id);
      branches.show(parent);
      if (!(error instanceof WorkerError && error.kind === "crash")) setStatus(`The branch failed: ${(error as Error).message}`, "error");
      return null;
    } finally {
      busy = false;
      refreshButtons();
      syncBranchParam();
    }
  }

  // ---- personal n-grams: the drafts before and after ----
  async function rerunWithNewStore(): Promise<void> {
    const before = view.lastFinals;
    if (settings.strategy !== "superposed") {
      controls.write({ ...settings, strategy: "superposed" });
      onFormChange();
    }
    // The same seed: only the store differs between the drafts before and after.
    await generate(false);
    view.showFinalsBefore(before);
  }
  $("#ngram-build").addEventListener("click", () => {
    const text = $<HTMLTextAreaElement>("#ngram-text").value;
    if (!text.trim()) {
      ngramStatus.textContent = "Paste some text first.";
      return;
    }
    ngramStatus.textContent = "Building the store…";
    void client.buildNgrams(text, $<HTMLInputElement>("#ngram-extend").checked);
  });
  $("#ngram-reset").addEventListener("click", () => void client.resetNgrams());

  // ---- compare ----
  const setEntries = (entries: ReturnType<typeof presetEntries>) => {
    compare.setEntries(entries);
    compare.onEntriesChange(compare.entries);
    refreshButtons();
  };
  $("#compare-add").addEventListener("click", () => setEntries([...compare.entries, strategyOf(controls.read())]));
  $("#compare-preset").addEventListener("click", () => setEntries(presetEntries()));
  compareRunButton.addEventListener("click", async () => {
    const s = beginRun(true);
    if (!s) return;
    await autocomplete.idle();
    setStatus(`Comparing ${compare.entries.length} strategies…`, "running");
    try {
      const stops = runStops(s);
      const runs = await compare.run(client, s.prompt, s.seed, s.maxTokens, () => stopRequested, s.chat, stops);
      lastRuns = runs.map((r) => ({
        label: r.label,
        config: toConfig(r.entry, s.seed, s.maxTokens, stops),
        stats: r.result?.stats ?? null,
        cancelled: r.result?.cancelled ?? false,
        steps: r.result?.steps ?? [],
      }));
      state.compareRuns = runs.map((r) => ({
        label: r.label,
        steps: r.result?.steps.length ?? r.beams?.steps.length ?? 0,
        tokensPerSecond: r.result?.stats?.tokensPerSecond ?? null,
        wallMs: r.result?.stats?.wallMs ?? null,
        error: r.error,
      }));
      const rates = runs.flatMap((r) => (r.result?.stats ? [r.result.stats.tokensPerSecond] : []));
      if (rates.length) setSpeed(rates.reduce((a, b) => a + b, 0) / rates.length);
      setStatus(stopRequested ? "Comparison stopped." : `Compared ${runs.length} strategies.`, stopRequested ? "stopped" : "done");
    } finally {
      busy = false;
      refreshButtons();
    }
  });

  // ---- run, stop, share, export ----
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!busy && modelReady) void generate();
  });
  controls.prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  stopButton.addEventListener("click", () => {
    stopRequested = true;
    client.stop();
    setStatus("Stopping…", "running");
  });
  $("#share").addEventListener("click", async () => {
    const out = $<HTMLInputElement>("#share-url");
    out.value = location.href;
    out.hidden = false;
    try {
      await navigator.clipboard.writeText(location.href);
      $("#share-note").textContent = "Link copied.";
    } catch {
      out.select();
      $("#share-note").textContent = "Copy the link above.";
    }
  });
  $("#export").addEventListener("click", () =>
    download({
      format: "decoding-playground-run/1",
      exportedAt: new Date().toISOString(),
      link: location.href,
      backend: models.info ? backendLabel(models.info.backend, models.info.threads) : null,
      model: models.info,
      prompt: settings.prompt,
      settings,
      runs: lastRuns,
      branches: tree ? tree.tree.list().slice(1).map(({ branch }) => ({ id: branch.id, parent: branch.parent!, at: branch.at, steps: branch.steps })) : [],
    }),
  );

  // A run's output into the Score view, its prompt as the context.
  $("#score-output").addEventListener("click", () => {
    if (state.lastRun?.text) void scoreView.scoreText(state.lastRun.text, settings.prompt);
  });

  refreshButtons();
  onFormChange();
  if (linkedModel.kind === "url") {
    try {
      void models.offer(urlSource(linkedModel.url), true);
    } catch (error) {
      models.showError(`The link names a model that cannot be loaded: ${(error as Error).message}`);
      void models.offer(serverModel(modelChoice, formatChoice, ngramChoice));
    }
  } else {
    void models.offer(serverModel(modelChoice, formatChoice, ngramChoice));
  }
}
