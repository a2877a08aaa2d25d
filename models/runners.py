"""Running a built ONNX model: a runner that feeds it HF-style (onnxruntime or the onnx
ReferenceEvaluator), the tract check the Rust runtime depends on, the comparison with the
float64 exact forward, and the perplexity and greedy references."""
import json
import sys
from collections import Counter

import numpy as np

import llama_onnx
from common import log
from exact_forward import reference_logits

MAX_ABS_TOL = 2e-3  # ONNX (f32 compute) vs float64 reference: seen <2e-4; a wrong RoPE layout is off by >10


class Runner:
    """Feeds the model HF-style: embeddings, a ones mask over past+new, explicit positions."""

    def __init__(self, run_fn, cfg, embed):
        self.run_fn, self.cfg, self.embed = run_fn, cfg, embed
        L = cfg["num_layers"]
        self.past_names = llama_onnx.kv_names(L, "past_key_values")
        self.present_names = llama_onnx.kv_names(L, "present")

    def empty_past(self):
        shape = (1, self.cfg["num_key_value_heads"], 0, self.cfg["head_dim"])
        return [np.zeros(shape, np.float32) for _ in self.past_names]

    def __call__(self, embeds, past):
        """embeds [S, H] -> (logits [S, V], new past)."""
        p, s = past[0].shape[2], embeds.shape[0]
        feeds = {"inputs_embeds": embeds[None].astype(np.float32),
                 "attention_mask": np.ones((1, p + s), np.int64),
                 "position_ids": np.arange(p, p + s, dtype=np.int64)[None]}
        feeds.update(zip(self.past_names, past))
        out = self.run_fn(feeds)
        return out["logits"][0], [out[n] for n in self.present_names]

    def ids(self, ids, past):
        return self(self.embed[np.asarray(ids)], past)


def ort_runner(path, cfg, embed):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3  # the unused embedding initializer triggers a warning
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return Runner(lambda feeds: dict(zip(names, sess.run(None, feeds))), cfg, embed)


def reference_evaluator_runner(path, cfg, embed):
    from onnx.reference import ReferenceEvaluator
    ev = ReferenceEvaluator(str(path))
    return Runner(lambda feeds: dict(zip(ev.output_names, ev.run(None, feeds))), cfg, embed)


def tract_check(path, cfg, embed, ids, ref, n_steps=3):
    """Runs the model in tract 0.23.9 (the engine of the Rust runtime) the way the runtime will:
    symbolic S/P shapes, then `transformers_detect_all`. Fails unless every rewrite the runtime
    relies on fired (KV cache, RoPE, masked softmax, RMSNorm) and the logits match `ref`
    (the numpy reference over `ids`) for a prefill + n_steps cached steps."""
    try:
        import tract
    except ImportError:
        log("WARNING: python package tract not installed, tract check skipped")
        return None
    L, H, nkv, hd = (cfg[k] for k in ("num_layers", "hidden_size", "num_key_value_heads", "head_dim"))
    m = tract.onnx().load(str(path))
    m.set_input_fact(0, f"1,S,{H},f32")
    m.set_input_fact(1, "1,P+S,i64")
    m.set_input_fact(2, "1,S,i64")
    for i in range(3, 3 + 2 * L):
        m.set_input_fact(i, f"1,{nkv},P,{hd},f32")
    model = m.into_model()
    model.transform("transformers_detect_all")
    runnable = model.into_runnable()
    ops = Counter(n["op_name"] for n in json.loads(runnable.profile_json(None))["nodes"])
    want = {"DynamicKeyValueCache": 2 * L, "ApplyRope": 2 * L, "ScaledMaskedSoftmax": L,
            "RmsNorm": 2 * L + 1}
    if any(ops[k] != v for k, v in want.items()) or runnable.input_count() != 3:
        sys.exit(f"FATAL: tract rewrites did not all fire: want {want}, got "
                 f"{ {k: ops[k] for k in want} }, {runnable.input_count()} inputs")
    state, n, chunks = runnable.spawn_state(), 0, []
    cut = len(ids) - n_steps
    for chunk in [ids[:cut]] + [[t] for t in ids[cut:]]:
        s = len(chunk)
        out = state.run([embed[np.asarray(chunk)][None], np.ones((1, n + s), np.int64),
                         np.arange(n, n + s, dtype=np.int64)[None]])
        chunks.append(out[0].to_numpy()[0])
        n += s
    got = np.concatenate(chunks)
    res = dict(max_abs_diff=float(np.abs(got - ref).max()),
               argmax_agree=int((got.argmax(-1) == ref.argmax(-1)).sum()), positions=len(ids))
    log(f"tract 0.23.9 (transformers_detect_all: {want}): max |tract - reference| = "
        f"{res['max_abs_diff']:.2e}, argmax agree {res['argmax_agree']}/{res['positions']}")
    return res


def compare(runner, gw, cfg, embed, ids, n_steps=3):
    """Full prefill and prefill + n_steps cached single-token steps vs the numpy reference."""
    ref = reference_logits(gw, cfg, embed[np.asarray(ids)])
    full, _ = runner.ids(ids, runner.empty_past())
    cut = len(ids) - n_steps
    chunks, past = [], runner.empty_past()
    logits, past = runner.ids(ids[:cut], past)
    chunks.append(logits)
    for t in ids[cut:]:
        logits, past = runner.ids([t], past)
        chunks.append(logits)
    inc = np.concatenate(chunks)
    res = {}
    for name, got in (("prefill", full), ("incremental", inc)):
        res[name] = dict(max_abs_diff=float(np.abs(got - ref).max()),
                         argmax_agree=int((got.argmax(-1) == ref.argmax(-1)).sum()),
                         positions=len(ids))
    return res, ref


def check_ok(res):
    return all(r["max_abs_diff"] < MAX_ABS_TOL and r["argmax_agree"] == r["positions"]
               for r in res.values())


def perplexity(runner, ids):
    """Teacher-forced: predicts ids[1:] from the prefix, no BOS (SmolLM2 adds none)."""
    logits, _ = runner.ids(ids, runner.empty_past())
    z = logits[:-1].astype(np.float64)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    return float(np.exp(-logp[np.arange(len(ids) - 1), ids[1:]].mean()))


def greedy(runner, ids, n):
    out, past = [], runner.empty_past()
    logits, past = runner.ids(ids, past)
    for _ in range(n):
        out.append(int(logits[-1].argmax()))
        logits, past = runner.ids([out[-1]], past)
    return out
