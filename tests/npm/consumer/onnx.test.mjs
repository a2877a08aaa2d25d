// Bring your own ONNX, in Node from the installed tarball: the tiny model in the layouts optimum
// and transformers.js export (models/tiny/variants/, written by models/onnx_variants.py with the
// onnx package and ONNX Runtime's quantisers; a merged decoder among them), loaded from a folder URL, from a transformers.js
// repository layout (onnx/model_q4.onnx, the tokenizer and configs beside onnx/) and from Files
// as a drop gives them. Greedy ids must be ONNX Runtime's on the same file (reference.json).
// Run by tests/npm/run.sh from a fresh folder, REPO=<repository>.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Model, modelFiles } from "decoding-playground";

const repo = process.env.REPO;
assert.ok(repo, "REPO must name the repository");
const tiny = (name) => readFileSync(join(repo, "models/tiny", name));
const variant = (name, file) => readFileSync(join(repo, "models/tiny/variants", name, file));
const reference = (name) => JSON.parse(variant(name, "reference.json"));
// A Hugging Face config.json, as optimum writes it: its names, no head_dim, the eos id.
const HF_CONFIG = JSON.stringify({
  architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: 512, hidden_size: 64, intermediate_size: 128,
  num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 512, eos_token_id: 2,
});
// The template a newer Hugging Face repository keeps in chat_template.jinja.
const TEMPLATE = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{{ eos_token }}";
const VARIANTS = ["input-ids", "external-data", "int8", "fp16", "positions-from-past", "merged", "q4", "q4-embedding", "embedding-uint4", "embedding-uint8"];

/** Greedy ids from the reference's prompt, as many as the reference made. */
async function greedy(model, name) {
  const ref = reference(name);
  const prompt = ref.steps[0].fed;
  assert.deepEqual([...model.encode(ref.prompt)], prompt, "the reference's prompt ids");
  const steps = await model.generate(ref.prompt, { maxTokens: ref.ids.length - prompt.length, stopTokens: [], sampler: { temperature: 0 } });
  return { got: [...prompt, ...steps.map((s) => s.token)], want: ref.ids };
}

let server, base;
before(async () => {
  // /v/<variant>/… : the variant's folder, with the tiny tokenizer and an HF config beside it;
  // /tfjs/… : transformers.js's layout, onnx/model_q4.onnx under the repository folder.
  server = createServer((req, res) => {
    const parts = new URL(req.url, "http://x").pathname.split("/").filter(Boolean);
    const name = parts.at(-1);
    let body = null;
    if (name === "tokenizer.json") body = tiny("tokenizer.json");
    else if (name === "config.json") body = HF_CONFIG;
    else if (name === "generation_config.json") body = JSON.stringify({ eos_token_id: [2, 5] });
    else if (name === "chat_template.jinja") body = TEMPLATE;
    else if (parts[0] === "v" && parts.length === 3) body = tryRead(() => variant(parts[1], name));
    else if (parts[0] === "tfjs" && parts[1] === "onnx" && name === "model_q4.onnx") body = variant("q4", "model.onnx");
    // A single-page-app server: every missing file under /spa/ is its index.html.
    if (parts[0] === "spa") body = name === "model.onnx" ? variant("input-ids", "model.onnx") : name === "tokenizer.json" ? tiny("tokenizer.json") : "<!DOCTYPE html><html><body>app</body></html>";
    if (body === null) return res.writeHead(404).end();
    res.writeHead(200, { "Content-Length": Buffer.byteLength(body) }).end(body);
  });
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => server?.close());

function tryRead(read) {
  try {
    return read();
  } catch {
    return null;
  }
}

describe("ONNX exports in the ecosystem's layouts", () => {
  for (const name of VARIANTS) {
    it(`${name}: from its folder URL, greedy ids as ONNX Runtime's`, async () => {
      const files = [];
      const model = await Model.load(`${base}/v/${name}/`, { onProgress: (p) => p.phase === "download" && !files.includes(p.file) && files.push(p.file) });
      const { got, want } = await greedy(model, name);
      assert.deepEqual(got, want);
      const data = name === "external-data" ? ["model.onnx_data"] : [];
      assert.deepEqual(files, ["model.onnx", ...data, "tokenizer.json", "config.json", "generation_config.json", "chat_template.jinja"]);
      assert.equal(model.contextLength, 512, "max_position_embeddings of the HF config");
      model.free();
    });
  }

  it("the weight types say what tract keeps: int8, f16, Q4_0 blocks (a 4-bit embedding is widened)", async () => {
    const types = {};
    for (const name of VARIANTS) {
      const model = await Model.load(`${base}/v/${name}/`);
      types[name] = model.weightTypes;
      model.free();
    }
    assert.deepEqual(types, { "input-ids": ["F32"], "external-data": ["F32"], int8: ["INT8"], fp16: ["F16"], "positions-from-past": ["F32"], merged: ["F32"], q4: ["Q4_0"],
      "q4-embedding": ["Q4_0"], "embedding-uint4": ["F32"], "embedding-uint8": ["F32"] });
  });

  it("transformers.js's layout: onnx/model_q4.onnx, the tokenizer and configs beside onnx/", async () => {
    const model = await Model.load(`${base}/tfjs/onnx/model_q4.onnx`);
    const { got, want } = await greedy(model, "q4");
    assert.deepEqual(got, want);
    model.free();
  });

  it("a server that answers missing files with its index.html: the optional files are taken as absent", async () => {
    const model = await Model.load(`${base}/spa/`);
    assert.equal(model.chatTemplate, undefined);
    assert.equal(model.contextLength, 2048, "no config.json: the default context");
    model.free();
  });

  it("eos ids come from config.json and generation_config.json, the chat template from chat_template.jinja", async () => {
    const model = await Model.load(`${base}/v/input-ids/`);
    assert.equal(model.chatTemplate, TEMPLATE);
    // config.json's eos id names the template's eos_token.
    assert.equal(model.applyChatTemplate([{ role: "user", content: "hi" }], { addGenerationPrompt: false }), `<user>hi${model.decode([2])}`);
    // Token 5 ends a generation only because generation_config.json says so.
    const steps = await model.generate("hello", { maxTokens: 3, sampler: { temperature: 0, logitBias: [{ token: 5, bias: 100 }] } });
    assert.equal(steps.length, 1);
    assert.equal(steps[0].token, 5);
    assert.equal(steps[0].finish, "stop");
    model.free();
  });

  it("from Files, as a drop gives them: the data file matched by the name the graph gives it", async () => {
    const file = (bytes, name) => new File([bytes], name);
    const files = [file(variant("external-data", "model.onnx"), "model.onnx"), file(variant("external-data", "model.onnx_data"), "model.onnx_data"), file(tiny("tokenizer.json"), "tokenizer.json"), file(HF_CONFIG, "config.json"), file("{}", "README.md"), file(TEMPLATE, "chat_template.jinja")];
    const picked = modelFiles(files);
    assert.deepEqual([picked.format, picked.config.name, picked.chatTemplate.name, picked.data.map((f) => f.name)], ["onnx", "config.json", "chat_template.jinja", ["model.onnx_data", "README.md"]]);
    const model = await Model.load(files);
    assert.equal(model.chatTemplate, TEMPLATE);
    const { got, want } = await greedy(model, "external-data");
    assert.deepEqual(got, want);
    model.free();
    // Without config.json: the dimensions from the graph, a context of 2048.
    const bare = await Model.load([files[0], files[1], files[2]]);
    assert.equal(bare.contextLength, 2048);
    bare.free();
  });

  it("a missing or wrong data file, two models, or an encoder: clear errors", async () => {
    const file = (bytes, name) => new File([bytes], name);
    const onnx = file(variant("external-data", "model.onnx"), "model.onnx");
    const tokenizer = file(tiny("tokenizer.json"), "tokenizer.json");
    await assert.rejects(Model.load([onnx, tokenizer]), (e) => e.code === "Model" && e.message === "model error: the weights are stored in `model.onnx_data`, which was not given: give it with the .onnx file");
    const short = file(variant("external-data", "model.onnx_data").subarray(0, 1000), "model.onnx_data");
    await assert.rejects(Model.load([onnx, tokenizer, short]), (e) => e.code === "Model" && /`model\.onnx_data` has 1000 bytes, but the graph reads/.test(e.message));
    await assert.rejects(Model.load([onnx, file(variant("q4", "model.onnx"), "model_q4.onnx"), tokenizer]), (e) => e.code === "InvalidInput" && /^2 \.onnx files \(model\.onnx, model_q4\.onnx\): give one model$/.test(e.message));
    await assert.rejects(Model.load(`${base}/v/positions-from-mask/`), (e) => e.code === "Model" && /computes its positions itself in a way tract's KV cache rewrite cannot follow/.test(e.message));
    await assert.rejects(Model.load(`${base}/v/missing/`), (e) => e.code === "Network" && /HTTP 404/.test(e.message));
  });
});
