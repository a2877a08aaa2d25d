#!/usr/bin/env python3
"""Tiny random-weight F32 GGUFs, one per architecture beyond SmolLM2's plain llama, each with
llama.cpp's own logits on it as the reference, cross-checked against the float64 exact forward
(exact_forward.py). Writes tiny/archs/<name>.gguf and <name>.json (committed).

  tiny_archs.py [--out DIR]

llama.cpp comes from llama_cpp_python.sh (built once, ~7 min; models/build.sh tiny-archs, which is
not part of setup) and runs in its own venv, through llama_cpp_logits.py. The build fails when
llama.cpp and the exact forward differ by more than 1e-4 of the logits' range anywhere, or in the
top-1 id at any position: then the fixture or our reading of the architecture is wrong.

Every file has tiny_model.py's tiny 512-token tokenizer and small random weights (fixed seed per
file), with dimensions chosen so that each architecture's particulars change the logits:
  llama3         Llama 3's layout: untied output, rope_freqs (its rope scaling factors), base 5e5,
                 Q/K rows permuted by the converter for llama.cpp's adjacent-pair RoPE
  qwen2          q/k/v biases, tied output, base 1e6
  qwen3          head_dim 32 != 64/4 (key_length), per-head attn_q_norm/attn_k_norm, tied
  gemma3         7 layers (local 0-4 and 6, global 5), sliding window 5 < the 24 ids, base 1e6
                 global / 1e4 local, final soft-cap 10, post-attention/post-FFN norms, q/k norms
  phi3           fused attn_qkv and gate+up ffn_up, untied; a sliding_window key llama.cpp ignores
  phi3-longrope  phi3 plus rope_factors_short/_long and rope.scaling.attn_factor
"""
import argparse
import math
import subprocess
from pathlib import Path

import numpy as np

from common import HERE, f32_value, log, write_json
from exact_forward import reference_logits
from gguf_write import add_dimensions, add_tokenizer
from tiny_model import tiny_tokenizer

LLAMA_CPP = "0.3.36"
N_IDS, IDS_SEED = 24, 2024
# Of the logits' range. gemma3's is looser: ggml's CPU GELU rounds its input to f16 and reads an
# f16 table (GGML_GELU_FP16, ggml-cpu/vec.h), ~5e-4 relative error a value; the exact forward's
# GELU is exact. A real misreading of gemma3 (window, RoPE base, norms) moves logits far more.
TOLERANCE, GELU_TOLERANCE = 1e-4, 1e-3

BASE = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=3, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, context_length=256, rms_norm_eps=1e-6)
PHI3 = dict(BASE, arch="phi3", num_key_value_heads=4, rope_theta=10000.0, rms_norm_eps=1e-5,
            sliding_window_key=8)
ARCHS = {
    "llama3": dict(BASE, arch="llama", rope_theta=500000.0, rms_norm_eps=1e-5, seed=1),
    "qwen2": dict(BASE, arch="qwen2", rope_theta=1e6, seed=2),
    "qwen3": dict(BASE, arch="qwen3", head_dim=32, rope_theta=1e6, seed=3),
    "gemma3": dict(BASE, arch="gemma3", num_layers=7, num_key_value_heads=1, head_dim=32, rope_theta=1e6,
                   rope_theta_swa=10000.0, sliding_window=5, final_logit_softcapping=10.0, seed=4),
    "phi3": dict(PHI3, seed=5),
    # llama.cpp uses the long factors only when its context (n_ctx 64, padded to 256) exceeds the
    # original context length; the exact forward is run with both to see which it took.
    "phi3-longrope": dict(PHI3, context_length=4096, original_context_length=512, seed=6),
}
UNTIED = {"llama", "phi3"}


def llama3_rope_freqs(base, dim, factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0, old_ctx=8192):
    """rope_freqs as llama.cpp's converter computes Llama 3's (LlamaModel.generate_extra_tensors),
    in float32 as its torch code does: 1 for short wavelengths, `factor` for long ones, smoothed
    in between."""
    f32 = np.float32
    freqs = f32(1.0) / f32(base) ** (np.arange(0, dim, 2, dtype=f32) / f32(dim))
    out = []
    for freq in freqs:
        wavelen = f32(2 * math.pi) / freq
        if wavelen < old_ctx / high_freq_factor:
            out.append(1.0)
        elif wavelen > old_ctx / low_freq_factor:
            out.append(factor)
        else:
            smooth = (f32(old_ctx) / wavelen - f32(low_freq_factor)) / f32(high_freq_factor - low_freq_factor)
            out.append(f32(1) / ((f32(1) - smooth) / f32(factor) + smooth))
    return np.asarray(out, np.float32)


def permute(w, n_head):
    """llama.cpp's converter's LlamaModel.permute: HF rows (head, half, i) -> (head, i, half), so
    adjacent pairs rotate together."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def weights(cfg):
    """GGUF names and layout ([out, in]; gguf-py writes ggml's reversed dims). Q/K rows are in HF
    order (permute_qk makes the llama file's)."""
    rng = np.random.default_rng(cfg["seed"])
    arch, H, F, V = cfg["arch"], cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    q_dim, kv_dim = cfg["num_attention_heads"] * cfg["head_dim"], cfg["num_key_value_heads"] * cfg["head_dim"]
    f32 = lambda a: np.asarray(a, np.float32)
    mat = lambda o, i: f32(rng.standard_normal((o, i)) / math.sqrt(i))
    near_one = lambda n: f32(1 + 0.1 * rng.standard_normal(n))  # gemma3's are stored +1 already
    gw = {"token_embd.weight": f32(0.25 * rng.standard_normal((V, H)))}
    for i in range(cfg["num_layers"]):
        b = f"blk.{i}."
        gw[b + "attn_norm.weight"] = near_one(H)
        if arch == "phi3":
            gw[b + "attn_qkv.weight"] = mat(q_dim + 2 * kv_dim, H)
        else:
            gw.update({b + "attn_q.weight": mat(q_dim, H), b + "attn_k.weight": mat(kv_dim, H),
                       b + "attn_v.weight": mat(kv_dim, H)})
        if arch == "qwen2":
            gw.update({b + f"attn_{t}.bias": f32(0.1 * rng.standard_normal(n))
                       for t, n in (("q", q_dim), ("k", kv_dim), ("v", kv_dim))})
        if arch in ("qwen3", "gemma3"):
            gw[b + "attn_q_norm.weight"] = near_one(cfg["head_dim"])
            gw[b + "attn_k_norm.weight"] = near_one(cfg["head_dim"])
        gw[b + "attn_output.weight"] = mat(H, q_dim)
        gw[b + "ffn_norm.weight"] = near_one(H)
        if arch == "phi3":
            gw[b + "ffn_up.weight"] = mat(2 * F, H)  # gate rows, then up rows
        else:
            gw[b + "ffn_gate.weight"], gw[b + "ffn_up.weight"] = mat(F, H), mat(F, H)
        gw[b + "ffn_down.weight"] = mat(H, F)
        if arch == "gemma3":
            gw[b + "post_attention_norm.weight"], gw[b + "post_ffw_norm.weight"] = near_one(H), near_one(H)
    gw["output_norm.weight"] = near_one(H)
    if arch in UNTIED:
        gw["output.weight"] = mat(V, H)
    if arch == "llama":
        gw["rope_freqs.weight"] = llama3_rope_freqs(cfg["rope_theta"], cfg["head_dim"])
    if "original_context_length" in cfg:  # Phi-3's LongRoPE: per-pair frequency divisors
        half = cfg["head_dim"] // 2
        gw["rope_factors_short.weight"] = f32(np.sort(1 + 0.5 * rng.random(half)))
        gw["rope_factors_long.weight"] = f32(np.sort(1 + 40 * rng.random(half)))
    return gw


def longrope_attn_factor(cfg):
    """The converter's (conversion/phi.py): sqrt(1 + ln(scale) / ln(original context))."""
    scale = cfg["context_length"] / cfg["original_context_length"]
    return math.sqrt(1 + math.log(scale) / math.log(cfg["original_context_length"]))


def write_file(path, name, cfg, gw, tok):
    """The metadata keys llama.cpp's converter writes for the architecture (those its loader
    reads), then the tensors, all F32."""
    import gguf
    arch = cfg["arch"]
    w = gguf.GGUFWriter(str(path), arch)
    w.add_type("model")
    # Not "phi3": a general.name with it makes llama.cpp's vocab loader set Phi-3's token
    # attributes, which needs Phi-3's "</s>" token.
    w.add_name(f"tiny-random-{name.replace('phi3', 'phi')}")
    add_dimensions(w, cfg)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    if arch in ("llama", "phi3"):
        w.add_rope_dimension_count(cfg["head_dim"])
    if arch == "llama":
        w.add_vocab_size(cfg["vocab_size"])
    if arch in ("qwen3", "gemma3"):
        w.add_key_length(cfg["head_dim"])
        w.add_value_length(cfg["head_dim"])
    if arch == "gemma3":
        w.add_sliding_window(cfg["sliding_window"])
        w.add_rope_freq_base_swa(cfg["rope_theta_swa"])
        w.add_final_logit_softcapping(cfg["final_logit_softcapping"])
    if arch == "phi3":
        w.add_sliding_window(cfg["sliding_window_key"])
    if "original_context_length" in cfg:
        w.add_rope_scaling_orig_ctx_len(cfg["original_context_length"])
        w.add_rope_scaling_attn_factors(cfg["rope_attn_factor"])
    add_tokenizer(w, tok)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for tname, t in gw.items():
        w.add_tensor(tname, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_cpp_logits(python, path, ids):
    out = subprocess.run([python, str(HERE / "llama_cpp_logits.py"), str(path), ",".join(map(str, ids))],
                         check=True, stdout=subprocess.PIPE).stdout
    return np.frombuffer(out, "<f4").reshape(len(ids), -1)


def permute_qk(hf, cfg, x):
    """The llama file's weights: Q/K rows permuted as the converter permutes them, checked by
    adjacent-pair RoPE on them giving the logits of half-split RoPE on HF's rows."""
    gw = dict(hf)
    for t, heads in (("attn_q", cfg["num_attention_heads"]), ("attn_k", cfg["num_key_value_heads"])):
        for i in range(cfg["num_layers"]):
            gw[f"blk.{i}.{t}.weight"] = permute(hf[f"blk.{i}.{t}.weight"], heads)
    d = np.abs(reference_logits(gw, cfg, x) - reference_logits(hf, dict(cfg, rope_type="neox"), x)).max()
    assert d < 1e-9, f"the Q/K permutation check is off by {d}"
    return gw


def build(name, cfg, tok, ids, python, out):
    gw = weights(cfg)
    x = gw["token_embd.weight"][ids]
    if cfg["arch"] == "llama":
        gw = permute_qk(gw, cfg, x)
    if "original_context_length" in cfg:
        cfg = dict(cfg, rope_attn_factor=f32_value(longrope_attn_factor(cfg)))
    path = out / f"{name}.gguf"
    write_file(path, name, cfg, gw, tok)
    theirs = llama_cpp_logits(python, path, ids)
    extra = {}
    if "original_context_length" in cfg:
        diffs = {c: np.abs(theirs - reference_logits(gw, dict(cfg, rope_factors=c), x)).max()
                 for c in ("short", "long")}
        choice = min(diffs, key=diffs.get)
        log(f"{name}: exact forward with rope_factors_short off by {diffs['short']:.2e}, "
            f"with _long by {diffs['long']:.2e}: llama.cpp used the {choice} factors")
        cfg = dict(cfg, rope_factors=choice)
        extra = {"rope_factors": choice, "rope_attn_factor": cfg["rope_attn_factor"]}
    exact = reference_logits(gw, cfg, x)
    if cfg.get("final_logit_softcapping"):
        uncapped = reference_logits(gw, dict(cfg, final_logit_softcapping=0), x)
        log(f"{name}: the soft-cap moves the logits by up to {np.abs(uncapped - exact).max():.2f}")
    diff, rng = float(np.abs(theirs - exact).max()), float(theirs.max() - theirs.min())
    top1 = int((theirs.argmax(-1) == exact.argmax(-1)).sum())
    log(f"{name}: max |llama.cpp - exact| = {diff:.2e}, logit range {rng:.3f} ({diff / rng:.1e} of it), "
        f"top-1 agree {top1}/{len(ids)}, {path.stat().st_size / 1e3:.0f} kB")
    tolerance = GELU_TOLERANCE if cfg["arch"] == "gemma3" else TOLERANCE
    if diff > tolerance * rng or top1 != len(ids):
        raise SystemExit(f"FATAL: {name}: llama.cpp and the exact forward disagree")
    write_json(out / f"{name}.json", {
        "about": f"{name}.gguf (tiny_archs.py): llama.cpp's logits (llama-cpp-python {LLAMA_CPP}, "
                 "Llama(n_ctx=64, logits_all=True, n_threads=1, type_k=type_v=0: F32 KV cache), "
                 "eval(ids) in one prefill at positions 0..n-1, no BOS), every position, flattened "
                 "row-major [position][vocab], float32 values written as their shortest repr. "
                 "exact_max_abs_diff: the largest |llama.cpp - float64 exact forward "
                 "(exact_forward.py)|, which the build requires below tolerance_of_range x "
                 "logit_range; logit_range: max - min of the logits.",
        "name": name, "arch": cfg["arch"], "ids": ids, "vocab_size": cfg["vocab_size"], **extra,
        "llama_cpp": LLAMA_CPP, "exact_max_abs_diff": float(f"{diff:.3g}"),
        "logit_range": float(f"{rng:.6g}"), "tolerance_of_range": tolerance,
        "logits": [f32_value(v) for v in theirs.reshape(-1)],
    })


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "tiny/archs"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    python = subprocess.run(["bash", str(HERE / "llama_cpp_python.sh")], check=True,
                            stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]
    tok = tiny_tokenizer()
    ids = [int(i) for i in np.random.default_rng(IDS_SEED).integers(0, BASE["vocab_size"], N_IDS)]
    for name, cfg in ARCHS.items():
        build(name, cfg, tok, ids, python, out)


if __name__ == "__main__":
    main()
