"""The float64 exact forward: numpy logits of a GGUF-layout decoder at positions 0..n-1 (one
prefill, no cache), computed as llama.cpp's graph computes them for each architecture, so it
can stand beside llama.cpp's own logits (tiny_archs.py) or stand in for them (runners.py,
smollm2_model.py, tiny_model.py, llama_quants.py). It deliberately shares nothing with the ONNX
path.

cfg: tiny_model.TINY_CFG's keys (hidden_size, num_layers, num_attention_heads,
num_key_value_heads, head_dim, rope_theta, rms_norm_eps), plus, where they apply:
  arch                     "llama" (default), "qwen2", "qwen3", "gemma3" or "phi3"
  rope_type                "norm" or "neox": overrides the architecture's (tiny_archs.py uses it
                           to check the llama Q/K permutation)
  sliding_window           gemma3: local layers see keys with q - k < sliding_window
  sliding_window_pattern   gemma3: layer il is local when il % pattern < pattern - 1 (default 6)
  rope_theta_swa           gemma3: the local layers' RoPE base (default 10000)
  final_logit_softcapping  gemma3: logits -> cap * tanh(logits / cap)
  rope_factors             phi3: which of rope_factors_short/_long llama.cpp picked
  rope_attn_factor         phi3: multiplies RoPE's cos and sin (so Q.K by its square)

Which tensors exist decides the rest: q/k/v biases, attn_q_norm/attn_k_norm, a fused attn_qkv,
rope_freqs (divides each pair's frequency), output.weight (else tied to token_embd).
"""
import math

import numpy as np

# llama.cpp's llama_model_rope_type: llama rotates adjacent pairs (2i, 2i+1) of Q/K rows its
# converter permuted; the others rotate (i, i + head_dim/2) of unpermuted rows.
NEOX_ARCHS = {"qwen2", "qwen3", "gemma3", "phi3"}


def gelu_tanh(x):
    """ggml's GELU (the tanh form). On the CPU ggml looks it up in an fp16 table; this is exact."""
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * x * (1 + 0.044715 * x * x)))


def is_local(cfg, il):
    """gemma3's sliding-window layers (llama_hparams::set_swa_pattern, not dense-first)."""
    p = cfg.get("sliding_window_pattern", 6)
    return cfg.get("sliding_window", 0) > 0 and il % p < p - 1


def rope_tables(cfg, gw, n, base):
    """cos, sin [n, 1, hd/2] of llama.cpp's ggml_rope_ext with freq_scale 1, ext_factor 0."""
    hd = cfg["head_dim"]
    ang = np.arange(n)[:, None] * base ** (-np.arange(0, hd, 2) / hd)[None, :]
    factors = gw.get("rope_freqs.weight")
    if cfg.get("rope_factors"):
        factors = gw[f"rope_factors_{cfg['rope_factors']}.weight"]
    if factors is not None:
        ang = ang / factors.astype(np.float64)[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    af = cfg.get("rope_attn_factor", 1.0)
    return (cos * af, sin * af) if af != 1.0 else (cos, sin)


def rope(t, cos, sin, neox):
    """t [n, heads, hd] rotated by the angle tables [n, 1, hd/2]."""
    half = t.shape[-1] // 2
    ia, ib = (slice(0, half), slice(half, None)) if neox else (slice(0, None, 2), slice(1, None, 2))
    a, b = t[..., ia], t[..., ib]
    out = np.empty_like(t)
    out[..., ia] = a * cos - b * sin
    out[..., ib] = a * sin + b * cos
    return out


def reference_logits(gw, cfg, x):
    """Logits [n, vocab] for input embeddings x [n, hidden] (rows of token_embd, or mixes)."""
    arch = cfg.get("arch", "llama")
    neox = cfg.get("rope_type", "neox" if arch in NEOX_ARCHS else "norm") == "neox"
    n, H = x.shape
    nh, nkv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    W = lambda name: gw[name].astype(np.float64)
    has = lambda name: name in gw

    def norm(v, w):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * w

    def linear(h, name):
        y = h @ W(name + ".weight").T
        return y + W(name + ".bias") if has(name + ".bias") else y

    future = np.triu(np.ones((n, n), dtype=bool), 1)
    too_far = np.subtract.outer(np.arange(n), np.arange(n)) >= cfg.get("sliding_window", 0)
    x = x.astype(np.float64)
    if arch == "gemma3":
        x = x * math.sqrt(H)  # llama.cpp scales token embeddings by sqrt(n_embd)
    tables = {}
    for i in range(cfg["num_layers"]):
        b = f"blk.{i}."
        local = is_local(cfg, i)
        base = cfg.get("rope_theta_swa", 10000.0) if local else cfg["rope_theta"]
        if base not in tables:
            tables[base] = rope_tables(cfg, gw, n, base)
        cos, sin = tables[base]
        h = norm(x, W(b + "attn_norm.weight"))
        if has(b + "attn_qkv.weight"):  # phi3: Q, then K, then V rows
            q, k, v = np.split(linear(h, b + "attn_qkv"), [nh * hd, (nh + nkv) * hd], axis=-1)
        else:
            q, k, v = (linear(h, b + name) for name in ("attn_q", "attn_k", "attn_v"))
        q, k, v = q.reshape(n, nh, hd), k.reshape(n, nkv, hd), v.reshape(n, nkv, hd)
        if has(b + "attn_q_norm.weight"):  # per-head RMSNorm, before RoPE
            q, k = norm(q, W(b + "attn_q_norm.weight")), norm(k, W(b + "attn_k_norm.weight"))
        q, k = rope(q, cos, sin, neox), rope(k, cos, sin, neox)
        masked = future | too_far if local else future
        att = np.empty((n, nh, hd))
        for hq in range(nh):
            kv = hq // (nh // nkv)
            s = q[:, hq] @ k[:, kv].T / math.sqrt(hd)
            s[masked] = -np.inf
            p = np.exp(s - s.max(-1, keepdims=True))
            att[:, hq] = (p / p.sum(-1, keepdims=True)) @ v[:, kv]
        a = att.reshape(n, nh * hd) @ W(b + "attn_output.weight").T
        if has(b + "post_attention_norm.weight"):
            a = norm(a, W(b + "post_attention_norm.weight"))
        x = x + a
        h = norm(x, W(b + "ffn_norm.weight"))
        if has(b + "ffn_gate.weight"):
            gate, up = h @ W(b + "ffn_gate.weight").T, h @ W(b + "ffn_up.weight").T
        else:  # phi3's fused ffn_up: the gate is the first half
            gate, up = np.split(h @ W(b + "ffn_up.weight").T, 2, axis=-1)
        act = gelu_tanh(gate) if arch == "gemma3" else gate / (1 + np.exp(-gate))
        f = (act * up) @ W(b + "ffn_down.weight").T
        if has(b + "post_ffw_norm.weight"):
            f = norm(f, W(b + "post_ffw_norm.weight"))
        x = x + f
    lm_head = "output.weight" if has("output.weight") else "token_embd.weight"
    logits = norm(x, W("output_norm.weight")) @ W(lm_head).T
    cap = cfg.get("final_logit_softcapping", 0)
    return cap * np.tanh(logits / cap) if cap else logits
