// The page logic shared by the Vite app and the plain-ESM page: it receives the package's module
// (imported by name through Vite, or by path without a bundler), loads the tiny model over HTTP,
// both its GGUF and its ONNX export, and the GGUF again in a Web Worker (`spawnWorker` starts one
// running the package's serveModelWorker), and exposes functions for the Playwright test
// (browser.test.mjs) to call.
export async function setup(pkg, spawnWorker) {
  const { default: init, Model, createWorkerModel } = pkg;
  const status = document.querySelector("#status");
  try {
    await init();
    const bytes = async (url) => {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    };
    const models = {
      // Headless Chromium's only adapter is SwiftShader, a software one, which `auto` leaves to
      // the CPU unless asked for it: asked, the GGUF runs on WebGPU.
      gguf: await Model.fromGguf(await bytes("/models/tiny/model.gguf"), { forceFallbackAdapter: true }),
      onnx: new Model(
        await bytes("/models/tiny/model.onnx"),
        await bytes("/models/tiny/tokenizer.json"),
        new TextDecoder().decode(await bytes("/models/tiny/config.json")),
      ),
    };
    // The same GGUF, in a worker: the same seeded ids must come out.
    models.worker = await createWorkerModel(spawnWorker(), "/models/tiny/model.gguf", { forceFallbackAdapter: true });
    const ngrams = await bytes("/models/tiny/ngrams.bin");
    for (const model of Object.values(models)) await model.setNgramStore(ngrams);
    const out = document.querySelector("#output");
    window.backends = () => ({ gguf: models.gguf.backend, onnx: models.onnx.backend, worker: models.worker.backend });
    window.generate = async (prompt, config, format = "onnx") => {
      const model = models[format];
      out.textContent = "";
      const steps = await model.generate(prompt, config, (step) => {
        if (step.kind === "token") out.textContent += step.text;
      });
      const last = steps.at(-1);
      return {
        tokens: steps.map((s) => (s.kind === "token" ? s.token : s.live.map((n) => n.token))),
        text: steps.map((s) => s.text ?? "").join(""),
        drafts: last?.drafts?.map((d) => ({ tokens: d.tokens, text: d.text })) ?? null,
        shown: out.textContent,
      };
    };
    window.errorOf = async (prompt, config) => {
      try {
        await models.onnx.generate(prompt, config);
        return null;
      } catch (error) {
        return { isError: error instanceof Error, message: error.message };
      }
    };
    // A bad GGUF (its first `keep` bytes, with `magic` written over the first four).
    window.ggufErrorOf = async (keep, magic) => {
      const file = await bytes("/models/tiny/model.gguf");
      const cut = file.slice(0, keep ?? file.length);
      if (magic) cut.set(new TextEncoder().encode(magic), 0);
      try {
        (await Model.fromGguf(cut)).free();
        return null;
      } catch (error) {
        return { isError: error instanceof Error, message: error.message };
      }
    };
    // Model.load as a page uses it: the phases seen and the last byte count.
    const watch = () => {
      const seen = { phases: [], loaded: 0 };
      const onProgress = ({ phase, loaded }) => {
        if (seen.phases.at(-1) !== phase) seen.phases.push(phase);
        if (loaded > 0) seen.loaded = loaded;
      };
      return [seen, onProgress];
    };
    window.loads = async () => {
      const url = "/models/tiny/model.gguf";
      await caches.delete("decoding-playground-models-v2");
      const [first, onFirst] = watch();
      (await Model.load(url, { onProgress: onFirst })).free();
      const [second, onSecond] = watch();
      (await Model.load(url, { onProgress: onSecond })).free();
      const [file, onFile] = watch();
      const fromFile = await Model.load(new File([await bytes(url)], "model.gguf"), { onProgress: onFile });
      file.vocabSize = fromFile.vocabSize;
      fromFile.free();
      const controller = new AbortController();
      const aborted = await Model.load(url, { signal: controller.signal, cache: false, onProgress: () => controller.abort() }).catch((e) => e);
      return { first, second, file, aborted: { name: aborted.name, code: aborted.code } };
    };
    // The tiny model as optimum and transformers.js export it (models/tiny/variants/), from Files
    // as a drop gives them, on this thread and in a worker: greedy ids against ONNX Runtime's.
    window.onnxVariants = async () => {
      const file = async (url, name) => new File([await bytes(url)], name ?? url.split("/").pop());
      const results = {};
      for (const name of ["external-data", "int8", "fp16", "merged", "q4", "q4-embedding"]) {
        const dir = `/models/tiny/variants/${name}`;
        const reference = JSON.parse(new TextDecoder().decode(await bytes(`${dir}/reference.json`)));
        const files = [await file(`${dir}/model.onnx`), await file("/models/tiny/tokenizer.json"), await file("/models/tiny/config.json")];
        if (name === "external-data") files.push(await file(`${dir}/model.onnx_data`));
        const config = { maxTokens: reference.ids.length - reference.steps[0].fed.length, stopTokens: [], sampler: { temperature: 0 } };
        const here = await Model.load(files);
        const inWorker = await createWorkerModel(spawnWorker(), files);
        results[name] = {
          want: reference.ids.slice(reference.steps[0].fed.length),
          here: (await here.generate(reference.prompt, config)).map((s) => s.token),
          worker: (await inWorker.generate(reference.prompt, config)).map((s) => s.token),
          weightTypes: here.weightTypes,
        };
        here.free();
        inWorker.terminate();
      }
      return results;
    };
    // The engine on 1 and on 2 threads, in a worker each: the same seeded tokens. On this
    // cross-origin isolated page 2 threads run the threaded build (threads/ in the package).
    window.threadRuns = async () => {
      const runs = [];
      for (const threads of [1, 2]) {
        const inWorker = await createWorkerModel(spawnWorker(), "/models/tiny/model.gguf", { threads, backend: "cpu", cache: false });
        try {
          const steps = await inWorker.generate("Once upon a time", { maxTokens: 12, sampler: { seed: 5, temperature: 1.2 } });
          runs.push({ threads: inWorker.threads, tokens: steps.map((s) => s.token), surprises: steps.map((s) => s.surpriseBits) });
        } finally {
          inWorker.terminate();
        }
      }
      return { isolated: self.crossOriginIsolated, runs };
    };
    window.workers = async () => {
      const report = {};
      const describe = (error) => ({ name: error.name, code: error.code, field: error.field, message: error.message, steps: error.steps?.length });
      const [seen, onProgress] = watch();
      const fromUrl = await createWorkerModel(spawnWorker(), "/models/tiny/model.gguf", { onProgress, cache: false, backend: "cpu" });
      report.url = { ...seen, vocabSize: fromUrl.vocabSize, backend: fromUrl.backend.backend, chat: typeof fromUrl.chatTemplate };
      // for await, and break cancels: the model is free for the next call at once.
      const streamed = [];
      for await (const step of fromUrl.stream("Once upon a time", { maxTokens: 50 })) {
        streamed.push(step.token);
        if (streamed.length === 3) break;
      }
      report.streamed = streamed.length;
      report.afterBreak = (await fromUrl.generate("Once", { maxTokens: 2 })).length;
      // An abort keeps the steps made; a bad config says which field.
      const controller = new AbortController();
      report.aborted = describe(await fromUrl.generate("Once", { maxTokens: 200 }, () => controller.abort(), controller.signal).catch((e) => e));
      report.badConfig = describe(await fromUrl.generate("Once", { sampler: { topK: 0 } }).catch((e) => e));
      report.badMethodArgs = describe(await fromUrl.score("x", { topAlternatives: -1 }).catch((e) => e));
      report.chat = await fromUrl.applyChatTemplate([{ role: "user", content: "Hi" }]);
      report.decoded = await fromUrl.decode(await fromUrl.encode("Hello world"));
      // A reload in the same worker: the ONNX export from files, as a drop gives them.
      const files = await Promise.all(["model.onnx", "tokenizer.json", "config.json"].map(async (name) => new File([await bytes(`/models/tiny/${name}`)], name)));
      await fromUrl.load(files);
      report.reloaded = { backend: fromUrl.backend.backend, steps: (await fromUrl.generate("Once", { maxTokens: 3 })).length };
      report.onnxOptions = describe(await fromUrl.load(files, { contextLength: 8 }).catch((e) => e));
      report.stillServes = (await fromUrl.generate("Once", { maxTokens: 1 })).length;
      fromUrl.terminate();
      report.afterTerminate = describe(await fromUrl.decode([1]).catch((e) => e));
      // An abort during the load ends its worker.
      const loading = new AbortController();
      report.loadAborted = describe(await createWorkerModel(spawnWorker(), "/models/tiny/model.gguf", { signal: loading.signal, cache: false, onProgress: () => loading.abort() }).catch((e) => e));
      report.badSource = describe(await createWorkerModel(spawnWorker(), [new File(["x"], "notes.txt")]).catch((e) => e));
      return report;
    };
    status.textContent = "ready";
    status.dataset.state = "ready";
  } catch (error) {
    status.textContent = `failed: ${error?.message ?? error}`;
    status.dataset.state = "failed";
  }
}
