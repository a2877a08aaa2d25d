// The README's complete example, exactly as published: the ```js block after the "run as-is"
// marker in the installed package's README.md is written to example.mjs and run with node, once
// loading the tiny model's GGUF over HTTP and once from disk; its output must show the native
// GGUF fixtures' Mirostat ids and superposed drafts, the step records and the cancellation.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createReadStream, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";

const repo = process.env.REPO;
assert.ok(repo, "REPO must name the repository");
const fixture = (name) => JSON.parse(readFileSync(join(repo, "crate/tests/fixtures", name), "utf8"));
const mirostat = fixture("tiny_gguf_generation.json").find((c) => c.name === "mirostat v2");
const superposed = fixture("tiny_gguf_superposed.json").find((c) => c.name === "default k 3");

const MARKER = "<!-- This block is run as-is by the package's tests (tests/npm/ in the repository). -->";

function extractExample(readme) {
  const at = readme.indexOf(MARKER);
  assert.ok(at >= 0, "the README marks its tested example");
  const block = readme.slice(at + MARKER.length).match(/^\s*```js\n([\s\S]*?)\n```/);
  assert.ok(block, "a ```js block follows the marker");
  return block[1];
}

let server;
before(async () => {
  // Serves models/tiny over HTTP, for the example's URL branch.
  server = createServer((req, res) => {
    const name = new URL(req.url, "http://x").pathname.split("/").pop();
    if (!["model.gguf"].includes(name)) return res.writeHead(404).end();
    createReadStream(join(repo, "models/tiny", name)).pipe(res);
  });
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
});
after(() => server?.close());

describe("the README's complete example", () => {
  const installed = readFileSync("node_modules/decoding-playground/README.md", "utf8");
  const example = extractExample(installed);

  it("is the one in the repository's crate/js/README.md", () => {
    assert.equal(example, extractExample(readFileSync(join(repo, "crate/js/README.md"), "utf8")));
    writeFileSync("example.mjs", example + "\n");
  });

  for (const source of ["a URL", "a file"]) {
    it(`runs with the tiny GGUF from ${source} and prints the fixture's ids`, async () => {
      const MODEL = source === "a URL" ? `http://127.0.0.1:${server.address().port}/models/tiny/model.gguf` : join(repo, "models/tiny/model.gguf");
      const env = { ...process.env, MODEL, NGRAMS: join(repo, "models/tiny/ngrams.bin") };
      const { stdout, stderr } = await promisify(execFile)(process.execPath, ["example.mjs"], { env });
      process.stdout.write(stdout.split("\n").map((l) => `    | ${l}`).join("\n") + "\n");
      assert.equal(stderr, "");
      const lines = stdout.trimEnd().split("\n");
      assert.equal(lines[0], "loaded: 512 tokens, context 512, on cpu");
      assert.equal(lines[1], mirostat.text, "the streamed text");
      const records = lines.filter((l) => l.startsWith("token "));
      assert.equal(records.length, mirostat.tokens.length);
      records.forEach((line, i) => {
        assert.match(line, new RegExp(`^token ${mirostat.tokens[i]} .* p=0\\.\\d{3} surprise=\\d+\\.\\d{2} bits entropy=\\d+\\.\\d{2} bits kept=\\d+ mu=\\d+\\.\\d{2} top: \\d+:`));
      });
      assert.ok(lines.includes(`mirostat ids: ${JSON.stringify(mirostat.tokens)}`));
      assert.ok(lines.some((l) => /^perplexity \d+\.\d{2}, finished by length$/.test(l)));
      const drafts = lines.filter((l) => l.startsWith("draft ids: "));
      assert.deepEqual(drafts.map((l) => JSON.parse(l.match(/^draft ids: (\[[\d,]*\])/)[1])), superposed.drafts);
      assert.deepEqual(drafts.map((l) => JSON.parse(l.match(/ text (".*")$/)[1])), superposed.texts);
      assert.ok(lines.some((l) => /^draft tree: 12 steps, \d+ nodes$/.test(l)));
      assert.equal(lines.at(-1), "stopped after 5 steps: generation was cancelled", "the AbortError keeps the 5 steps");
    });
  }
});
