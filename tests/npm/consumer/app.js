// The page logic shared by the Vite app and the plain-ESM page: it receives the package's module
// (imported by name through Vite, or by path without a bundler), loads the tiny model over HTTP,
// both its GGUF and its ONNX export, and exposes functions for the Playwright test
// (browser.test.mjs) to call.
export async function setup(pkg) {
  const { default: init, Model } = pkg;
  const status = document.querySelector("#status");
  try {
    await init();
    const bytes = async (url) => {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    };
    const models = {
      gguf: await Model.fromGguf(await bytes("/models/tiny/model.gguf")),
      onnx: new Model(
        await bytes("/models/tiny/model.onnx"),
        await bytes("/models/tiny/tokenizer.json"),
        new TextDecoder().decode(await bytes("/models/tiny/config.json")),
      ),
    };
    const ngrams = await bytes("/models/tiny/ngrams.bin");
    for (const model of Object.values(models)) model.setNgramStore(ngrams);
    const out = document.querySelector("#output");
    window.backends = () => ({ gguf: models.gguf.backend, onnx: models.onnx.backend });
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
    status.textContent = "ready";
    status.dataset.state = "ready";
  } catch (error) {
    status.textContent = `failed: ${error?.message ?? error}`;
    status.dataset.state = "failed";
  }
}
