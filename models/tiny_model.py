"""The tiny random-weight model (models/tiny/, committed): its tokenizer (SmolLM2's specials +
byte-level BPE merges learned from the fixture paragraph) and weights, the ONNX build with
fixtures.json from the onnx ReferenceEvaluator, and model.gguf with gguf_reference.json."""
import math
import sys
import time
from pathlib import Path

import numpy as np

import bpe
import llama_onnx
from common import log, read_paragraph, write_json
from exact_forward import reference_logits
from gguf_write import check_gguf_roundtrip, gguf_tensor_entries, write_gguf
from onnx_files import build_tokenizer, write_config, write_model
from runners import ort_runner, reference_evaluator_runner, tract_check
from smollm2_source import SMOLLM2_CHAT_TEMPLATE, SPECIALS, to_hf

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


def build(args):
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
