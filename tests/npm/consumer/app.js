// The page logic shared by the Vite app and the plain-ESM page: it receives the package's module
// (imported by name through Vite, or by path without a bundler), loads the tiny model over HTTP
// and exposes functions for the Playwright test (browser.test.mjs) to call.
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
    const model = new Model(
      await bytes("/models/tiny/model.onnx"),
      await bytes("/models/tiny/tokenizer.json"),
      new TextDecoder().decode(await bytes("/models/tiny/config.json")),
    );
    model.setNgramStore(await bytes("/models/tiny/ngrams.bin"));
    const out = document.querySelector("#output");
    window.generate = async (prompt, config) => {
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
        await model.generate(prompt, config);
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
