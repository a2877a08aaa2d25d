// Imported by the benchmarks' in-page code: the wasm package and SmolLM2 on the CPU (our wasm
// Model, one thread) with the default n-gram store.
export async function loadSmolLM2() {
  const { default: init, Model } = await import("/crate/pkg-web/decoding_playground.js");
  await init();
  const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
  const model = await Model.fromGguf(await bytes("/models/smollm2-135m/model.gguf"), { backend: "cpu" });
  model.setNgramStore(await bytes("/models/ngrams/default.ngram"));
  return model;
}
