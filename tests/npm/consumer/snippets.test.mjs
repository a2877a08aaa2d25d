// Every ```js block of the repository's README.md, docs/*.md and crate/js/README.md runs in Node
// against the installed package, so that no snippet a reader copies has drifted from the API.
// Two kinds of block are not run here:
//   - the complete example after the "run as-is" marker: example.test.mjs runs it, verbatim;
//   - a block right after `<!-- not run: WHY -->`, for what Node cannot do (a Worker, the DOM, a
//     file input). Those are reported as skipped, with their reason.
//
// Snippets are fragments: each runs after a prelude that gives it what the documents take as
// given (`model`: the tiny GGUF loaded; `prompt`, `controller`, `logits`, the tiny ONNX export's
// bytes) and a page-like origin: relative URLs ("models/…") and relative paths resolve to a folder
// where the tiny model and its n-gram store stand in for SmolLM2's files, which the snippets name
// but which this test does not need. The prelude's names live in an outer block and the snippet in
// an inner one, so a snippet that declares `model` or `prompt` itself shadows the prelude's
// instead of clashing with it; its import lines move to the top of the module, where imports must be.
//
// Run by tests/npm/run.sh from the consumer folder (node_modules holds the package), REPO=<repository>.
// SNIPPETS_DRY_RUN=1 node snippets.test.mjs (no package needed, REPO defaults to this checkout)
// prints the blocks found, the skipped ones and each generated module, and syntax-checks those.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";

const DRY_RUN = process.env.SNIPPETS_DRY_RUN === "1";
const repo = process.env.REPO ?? (DRY_RUN ? fileURLToPath(new URL("../../..", import.meta.url)) : undefined);
assert.ok(repo, "REPO must name the repository");

/** The marker of crate/js/README.md's complete example, which example.test.mjs runs as-is. */
const EXAMPLE_MARKER = "<!-- This block is run as-is by the package's tests (tests/npm/ in the repository). -->";
/** A block that cannot run in Node says why, right before it: `<!-- not run: needs a browser -->`. */
const NOT_RUN = /^<!--\s*not run:(.*?)-->$/;

/** The documents whose snippets a reader copies: the repository's README, docs/, the package's README. */
function documents() {
  const docs = existsSync(join(repo, "docs")) ? readdirSync(join(repo, "docs")).filter((f) => f.endsWith(".md")).sort() : [];
  return ["README.md", ...docs.map((f) => `docs/${f}`), "crate/js/README.md"];
}

/**
 * The ```js blocks of one markdown file, each with its line, its code and, when it is not to run
 * here, why. Fences are tracked whatever their language, so a ```js line inside another block (a
 * markdown example in a ```text block, say) is not taken for a snippet.
 */
function extractBlocks(file, text) {
  const lines = text.split("\n");
  const blocks = [];
  let fence = null; // { marker, lang, start, body } while inside a fenced block
  let previous = ""; // the last non-blank line outside a block
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (fence) {
      const close = line.match(/^\s*(`{3,}|~{3,})\s*$/);
      if (close && close[1][0] === fence.marker[0] && close[1].length >= fence.marker.length) {
        if (fence.lang === "js" || fence.lang === "javascript") {
          blocks.push({ file, line: fence.start + 1, code: fence.body.join("\n"), ...verdict(fence.before) });
        }
        fence = null;
        previous = line.trim();
      } else {
        fence.body.push(line);
      }
      continue;
    }
    const open = line.match(/^\s*(`{3,}|~{3,})\s*([\w-]*)/);
    if (open) {
      fence = { marker: open[1], lang: open[2].toLowerCase(), start: i, body: [], before: previous };
    } else if (line.trim() !== "") {
      previous = line.trim();
    }
  }
  assert.equal(fence, null, `${file}: a code block opened at line ${fence?.start + 1} is never closed`);
  return blocks;
}

/** Whether a block runs here: the line before it may hand it to example.test.mjs or mark it not run. */
function verdict(before) {
  if (before === EXAMPLE_MARKER) return { example: true };
  const notRun = before.match(NOT_RUN);
  if (notRun) {
    const why = notRun[1].trim();
    assert.ok(why, `a "not run" marker must say why: ${before}`);
    return { skip: why };
  }
  return {};
}

const snippets = documents().flatMap((file) => extractBlocks(file, readFileSync(join(repo, file), "utf8")));
const examples = snippets.filter((s) => s.example);
const skipped = snippets.filter((s) => s.skip);
const runnable = snippets.filter((s) => !s.example && !s.skip);

/** Splits a snippet into its import statements (to hoist) and the rest (to run in a block). */
function splitImports(code) {
  const imports = [];
  const body = [];
  const lines = code.split("\n");
  for (let i = 0; i < lines.length; i++) {
    // `import x from "y"`, `import { a,\n b } from "y"`, `import "y"`; not `import(...)`.
    if (/^import[\s{*"']/.test(lines[i])) {
      const statement = [lines[i]];
      while (!/(\bfrom\s*|^import\s*)["'][^"']+["'];?\s*(\/\/.*)?$/.test(statement.at(-1)) && i + 1 < lines.length) {
        statement.push(lines[++i]);
      }
      imports.push(...statement);
    } else {
      body.push(lines[i]);
    }
  }
  return { imports: imports.join("\n"), body: body.join("\n") };
}

/** The tiny model's chat template stand-in: the tiny GGUF has none, and a chat snippet needs one. */
const TINY_CHAT_TEMPLATE = "{% for m in messages %}{{ m.content }}{% endfor %}";

/** The ES module that runs one snippet: the prelude, then the snippet in its own block. */
function moduleFor(snippet, origin) {
  const { imports, body } = splitImports(snippet.code);
  const tiny = (name) => JSON.stringify(join(repo, "models/tiny", name));
  // Only a snippet that renders a chat template without setting one gets the stand-in.
  const needsTemplate = /\bapplyChatTemplate\s*\(/.test(body) && !/\bsetChatTemplate\s*\(/.test(body);
  return `// ${snippet.file}:${snippet.line}, run by tests/npm/consumer/snippets.test.mjs
import * as __package from "decoding-playground";
import * as __fs from "node:fs/promises";
${imports}

// A page's origin: relative URLs resolve to the folder of stand-in model files the test serves.
globalThis.location ??= new URL(${JSON.stringify(origin)});
{
  const __fetch = globalThis.fetch;
  globalThis.fetch = (input, init) =>
    __fetch(typeof input === "string" || input instanceof URL ? new URL(input, globalThis.location.href) : input, init);
}
{
  const init = __package.default;
  const { Model, Sampler, loadModel, defaultSamplerConfig } = __package;
  const { readFile } = __fs;
  const model = await Model.fromGguf(await readFile(${tiny("model.gguf")}));
  const prompt = "Once upon a time";
  const controller = new AbortController();
  // For the sampler alone: Zipf-like logits over the tiny vocabulary, as a model's are.
  const logits = Float32Array.from({ length: model.vocabSize }, (_, i) => -Math.log(i + 1));
  // An ONNX export's three files, as a browser fetches them.
  const onnxBytes = await readFile(${tiny("model.onnx")});
  const tokenizerJsonBytes = await readFile(${tiny("tokenizer.json")});
  const configJsonText = await readFile(${tiny("config.json")}, "utf8");
${needsTemplate ? `  model.setChatTemplate(${JSON.stringify(TINY_CHAT_TEMPLATE)});\n` : ""}  {
${body}
  }
}
`;
}

/**
 * The folder the snippets run in (their cwd, inside the consumer folder so that node_modules
 * resolves) and the origin it is served at: the tiny model's files under the names the documents
 * use for SmolLM2's, and its n-gram store under the names of both stores.
 */
function standInFolder(dir) {
  rmSync(dir, { recursive: true, force: true });
  const tiny = (name) => join(repo, "models/tiny", name);
  const files = {
    "model.gguf": tiny("model.gguf"),
    "model.onnx": tiny("model.onnx"),
    "tokenizer.json": tiny("tokenizer.json"),
    "config.json": tiny("config.json"),
    "models/smollm2-135m/model.gguf": tiny("model.gguf"),
    "models/smollm2-135m/model.onnx": tiny("model.onnx"),
    "models/smollm2-135m/tokenizer.json": tiny("tokenizer.json"),
    "models/smollm2-135m/config.json": tiny("config.json"),
    "models/ngrams/default.ngram": tiny("ngrams.bin"),
    "models/ngrams/public-domain.ngram": tiny("ngrams.bin"),
  };
  // The tiny model's files (not its variants/ folder: no snippet names them).
  for (const entry of readdirSync(join(repo, "models/tiny"), { withFileTypes: true })) if (entry.isFile()) files[`models/tiny/${entry.name}`] = tiny(entry.name);
  for (const [name, source] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    copyFileSync(source, join(dir, name));
  }
}

/** Serves `dir` read-only, as a static server serves a page's model files. */
function serve(dir) {
  return createServer((req, res) => {
    const path = resolve(dir, "." + decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (!path.startsWith(dir + sep) || !existsSync(path) || !statSync(path).isFile()) return res.writeHead(404).end();
    res.writeHead(200, { "Content-Length": statSync(path).size, "Content-Type": "application/octet-stream" });
    if (req.method === "HEAD") return res.end();
    createReadStream(path).pipe(res);
  });
}

const where = (s) => `${s.file}:${s.line}`;

if (DRY_RUN) {
  // No package and no server: show what would run, and check that each generated module parses.
  const dir = join(process.cwd(), "snippets-dry-run");
  mkdirSync(dir, { recursive: true });
  console.log(`${snippets.length} js blocks: ${runnable.length} to run, ${skipped.length} marked not run, ${examples.length} run by example.test.mjs`);
  for (const s of examples) console.log(`example.test.mjs runs: ${where(s)}`);
  for (const s of skipped) console.log(`not run: ${where(s)}: ${s.skip}`);
  let bad = 0;
  for (const [i, s] of runnable.entries()) {
    const file = join(dir, `snippet-${i + 1}.mjs`);
    writeFileSync(file, moduleFor(s, "http://127.0.0.1:1/"));
    let check = "ok";
    try {
      await promisify(execFile)(process.execPath, ["--check", file]);
    } catch (error) {
      check = `SYNTAX ERROR\n${error.stderr}`;
      bad++;
    }
    console.log(`\n=== ${where(s)} (${relative(process.cwd(), file)}: node --check ${check})\n${s.code}`);
    if (process.env.SNIPPETS_DRY_RUN_MODULES === "1") console.log(`--- module:\n${readFileSync(file, "utf8")}`);
  }
  rmSync(dir, { recursive: true, force: true });
  process.exit(bad ? 1 : 0);
}

describe("the JS snippets of README.md, docs/ and crate/js/README.md", () => {
  const dir = join(process.cwd(), "snippets");
  let server;
  let origin;
  before(async () => {
    standInFolder(dir);
    server = serve(dir);
    await new Promise((done) => server.listen(0, "127.0.0.1", done));
    origin = `http://127.0.0.1:${server.address().port}/`;
    for (const s of skipped) console.log(`skipped (marked not run): ${where(s)}: ${s.skip}`);
  });
  after(() => server?.close());

  it("finds the snippets, and crate/js/README.md's complete example once (example.test.mjs runs that)", () => {
    assert.ok(runnable.length > 0, "no ```js blocks found");
    assert.deepEqual(examples.map((s) => s.file), ["crate/js/README.md"]);
  });

  for (const [i, s] of snippets.entries()) {
    if (s.example) continue;
    it(`${where(s)} runs in Node`, { skip: s.skip ? `not run: ${s.skip}` : false }, async () => {
      const file = join(dir, `snippet-${i + 1}.mjs`);
      writeFileSync(file, moduleFor(s, origin));
      let result;
      try {
        result = await promisify(execFile)(process.execPath, [file], { cwd: dir, timeout: 120_000 });
      } catch (error) {
        assert.fail(`${where(s)} failed (exit ${error.code ?? error.signal}):\n${error.stderr || error.message}\n--- its module (${file}):\n${readFileSync(file, "utf8")}`);
      }
      const shown = result.stdout.trimEnd().split("\n").slice(0, 8);
      if (shown[0]) process.stdout.write(shown.map((l) => `    | ${l.slice(0, 160)}`).join("\n") + "\n");
      assert.equal(result.stderr, "", `${where(s)} wrote to stderr`);
    });
  }
});
