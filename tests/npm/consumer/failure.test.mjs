// After a trap: a Rust panic in the engine (forced through the package's test hook) kills the
// wasm instance's state. The promise in flight then rejects with an Error that names what
// happened instead of never settling, and every later call, on any model of that instance,
// fails with the same clear error instead of undefined behaviour. Its own file: node --test runs
// each file in its own process, so the other tests keep a healthy instance.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import init, { Model, Sampler, __panicForTesting, onEngineFailure } from "decoding-playground";

const repo = process.env.REPO;
assert.ok(repo, "REPO must name the repository");
const GGUF = readFileSync(join(repo, "models/tiny/model.gguf"));
const FAILED = /^the engine failed \(panicked at [^)]*forced for the test\) and cannot be used any more: load the model again in a new worker or page$/s;

await init();
const model = await Model.fromGguf(GGUF);
const other = await Model.fromGguf(GGUF);
const heard = [];
onEngineFailure((error) => heard.push(error));

/** What `fn` throws or rejects with. */
async function failure(fn) {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  assert.fail("expected a failure");
}

test("a trap mid-generation rejects the run with EngineFailedError, and every later call fails clearly", async () => {
  assert.equal((await model.generate("Once upon a time", { maxTokens: 3 })).length, 3, "healthy before");
  let trap = null;
  const running = model.generate("Once upon a time", { maxTokens: 50 }, () => {
    if (trap) return;
    try {
      __panicForTesting("forced for the test");
    } catch (error) {
      trap = error;
    }
  });
  const error = await failure(() => running);
  assert.ok(trap instanceof WebAssembly.RuntimeError, `the panicking call traps: ${trap}`);
  assert.equal(error.name, "EngineFailedError");
  assert.match(error.message, FAILED);
  // Every entry point, of both models, sync and async, says the same.
  const later = [
    () => model.generate("Once", { maxTokens: 2 }),
    () => model.start("Once", {}),
    () => model.next(),
    () => model.score("Once upon a time"),
    () => other.generate("Once", { maxTokens: 2 }),
    () => other.vocabSize,
    () => other.encode("Once"),
    () => Model.fromGguf(GGUF),
    () => new Sampler({ seed: 1 }),
  ];
  for (const call of later) {
    const e = await failure(call);
    assert.equal(e.name, "EngineFailedError", `${call}: ${e}`);
    assert.match(e.message, FAILED);
  }
  // The failure listener heard it once, as it happened; one added later hears it at once.
  assert.equal(heard.length, 1);
  assert.equal(heard[0].code, "EngineFailed");
  assert.match(heard[0].message, FAILED);
  const late = [];
  onEngineFailure((error) => late.push(error));
  assert.equal(late.length, 1);
  assert.match(late[0].message, FAILED);
});
