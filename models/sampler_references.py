#!/usr/bin/env python3
"""Reference outputs for the samplers the playground takes from llama.cpp and HF transformers,
on random logits and token histories -> crate/tests/fixtures/samplers/reference.json (committed),
which crate/tests/native/sampler_references.rs must match within 1e-6 in probability.

- DRY, XTC, top-n-σ and dynamic temperature (temp_ext): llama.cpp's own samplers, through
  llama-cpp-python's low-level API (run in its venv: models/llama_cpp_python.sh builds it).
  DRY tokenizes its sequence breakers with the committed tiny model's vocabulary.
- Adaptive-p: llama.cpp's own sampler over a few steps, each step's probabilities and the token
  it drew, which it then accepts (its moving average follows the drawn tokens).
- Epsilon and eta: a numpy transcription of HF's EpsilonLogitsWarper and EtaLogitsWarper
  (transformers is not installed; their definitions are a few lines of arithmetic).

Each case gives one sampler's parameters, a logit vector and the history fed to it first; the
expected output is the probability of every token after the sampler, renormalised over what it
kept (0 for what it cut). Run by `models/build.sh samplers`.
"""
import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VOCAB = "models/tiny/model.gguf"
OUT = ROOT / "crate" / "tests" / "fixtures" / "samplers" / "reference.json"
# Covers the tiny vocabulary's tokens for "\n" (215), ":" (42), '"' (18) and "*" (26).
N_LOGITS = 216
BREAKERS = ["\n", ":", "\"", "*", "xyz"]


def random_logits(rng, favoured=()):
    """Normal logits; the `favoured` tokens get +6, so that what a sampler does to them shows."""
    x = rng.normal(0.0, rng.choice([1.0, 2.5, 5.0]), N_LOGITS)
    x[list(favoured)] += 6.0
    # Three decimals: the JSON text is then the exact f32 both sides read.
    return [round(float(v), 3) for v in x]


def probabilities(logits):
    """Softmax over the finite logits, in float64; 0 for the cut ones."""
    x = np.asarray(logits, dtype=np.float64)
    kept = np.isfinite(x)
    p = np.zeros_like(x)
    e = np.exp(x[kept] - x[kept].max())
    p[kept] = e / e.sum()
    return p


def rounded(p):
    return [float(f"{v:.8g}") for v in p]


# ---- HF transformers, transcribed (min_tokens_to_keep = 1, filter value -inf) ----

def hf_cut_below(scores, cutoff):
    """Masks tokens whose probability is below `cutoff`, except the best-scoring one."""
    p = probabilities(scores)
    remove = (p < cutoff) & (scores < scores.max())
    return np.where(remove, -np.inf, scores)


def hf_epsilon(scores, epsilon):
    return hf_cut_below(scores, epsilon)


def hf_eta(scores, epsilon):
    p = probabilities(scores)
    nz = p > 0
    entropy = -(p[nz] * np.log(p[nz])).sum()
    return hf_cut_below(scores, min(epsilon, np.sqrt(epsilon) * np.exp(-entropy)))


# ---- llama.cpp ----

def llama_step(L, sampler, logits):
    """One apply: the logits it leaves (-inf for the cut ones) and the id it selected, if any."""
    data = (L.llama_token_data * len(logits))(*[L.llama_token_data(i, x, 0.0) for i, x in enumerate(logits)])
    array = L.llama_token_data_array(data, len(logits), -1, False)
    L.llama_sampler_apply(sampler, ctypes.byref(array))
    out = np.full(len(logits), -np.inf)
    for i in range(array.size):
        out[array.data[i].id] = array.data[i].logit
    return out, (int(array.data[array.selected].id) if array.selected >= 0 else None)


def llama_apply(L, sampler, logits, history):
    for token in history:
        L.llama_sampler_accept(sampler, token)
    out, _ = llama_step(L, sampler, logits)
    L.llama_sampler_free(sampler)
    return out


def history_with_repeats(rng, xyz_tokens):
    """Random tokens from a small alphabet with a few breakers among them (single tokens and
    the multi-token "xyz"), and an earlier stretch copied to the end in most cases, so that DRY
    has repetitions to find and breakers that cut some of them short."""
    alphabet = list(range(12))
    history = [int(t) for t in rng.choice(alphabet, rng.integers(20, 60))]
    for _ in range(rng.integers(1, 4)):
        breaker = [int(rng.choice([18, 26, 42, 215]))] if rng.random() < 0.6 else xyz_tokens
        at = int(rng.integers(0, len(history)))
        history[at:at] = breaker
    if rng.random() < 0.8:
        start = int(rng.integers(0, len(history) - 8))
        history += history[start:start + int(rng.integers(3, 8))]
    return alphabet + [18, 26, 42, 215] + xyz_tokens, history


def main():
    try:
        import llama_cpp as L
    except ImportError:
        # models/build.sh runs this in models/.venv: go on in llama-cpp-python's own venv.
        python = subprocess.run(["bash", str(HERE / "llama_cpp_python.sh")], check=True,
                                stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]
        os.execv(python, [python, __file__])

    rng = np.random.default_rng(25)
    L.llama_backend_init()
    params = L.llama_model_default_params()
    params.vocab_only = True
    model = L.llama_model_load_from_file(str(ROOT / VOCAB).encode(), params)
    vocab = L.llama_model_get_vocab(model)
    xyz = (L.llama_token * 16)()
    n = L.llama_tokenize(vocab, b"xyz", 3, xyz, 16, False, False)
    xyz_tokens = list(xyz[:n])

    cases = []

    def add(sampler, params, logits, history, out):
        cases.append({"sampler": sampler, "params": params, "logits": logits, "history": history,
                      "probs": rounded(probabilities(out))})

    for n_sigma in [0.5, 1.0, 2.0]:
        logits = random_logits(rng)
        add("topNSigma", {"n": n_sigma}, logits, [], llama_apply(L, L.llama_sampler_init_top_n_sigma(n_sigma), logits, []))
    for threshold in [0.02, 0.05, 0.1]:
        logits = random_logits(rng, favoured=rng.choice(N_LOGITS, 4, replace=False))
        # Probability 1: the cut happens at every step, whatever llama.cpp's coin.
        out = llama_apply(L, L.llama_sampler_init_xtc(1.0, threshold, 1, 0), logits, [])
        add("xtc", {"probability": 1.0, "threshold": threshold}, logits, [], out)
    for temperature, range_, exponent in [(1.0, 0.5, 1.0), (0.7, 0.3, 2.0), (0.3, 0.5, 0.5)]:
        logits = random_logits(rng)
        out = llama_apply(L, L.llama_sampler_init_temp_ext(temperature, range_, exponent), logits, [])
        add("dynamicTemperature", {"temperature": temperature, "range": range_, "exponent": exponent}, logits, [], out)
    breakers = (ctypes.c_char_p * len(BREAKERS))(*[b.encode() for b in BREAKERS])
    for multiplier, base, allowed, last_n in [(0.8, 1.75, 2, 64), (2.0, 3.0, 1, 16), (0.5, 1.5, 3, 40),
                                              (1.0, 2.0, 2, 64), (0.8, 1.75, 2, 32), (1.5, 1.2, 1, 64)]:
        alphabet, history = history_with_repeats(rng, xyz_tokens)
        logits = random_logits(rng, favoured=alphabet)
        sampler = L.llama_sampler_init_dry(vocab, multiplier, base, allowed, last_n, breakers, len(BREAKERS))
        add("dry", {"multiplier": multiplier, "base": base, "allowedLength": allowed, "lastN": last_n,
                    "sequenceBreakers": BREAKERS}, logits, history, llama_apply(L, sampler, logits, history))
    for name, warp, cutoffs in [("epsilonCutoff", hf_epsilon, [3e-4, 3e-3, 0.02]), ("etaCutoff", hf_eta, [3e-4, 3e-3, 0.02])]:
        for cutoff, temperature in zip(cutoffs, [1.0, 0.7, 1.5]):
            logits = random_logits(rng)
            # HF's order: temperature first, then the warper on the tempered scores.
            scores = np.asarray(logits, dtype=np.float32).astype(np.float64) / temperature
            add(name, {"cutoff": cutoff, "temperature": temperature}, logits, [], warp(scores, cutoff))

    OUT.parent.mkdir(parents=True, exist_ok=True)
    # A stream of its own, so that the cases above stay as they were.
    steps_rng = np.random.default_rng(26)
    for target, decay in [(0.3, 0.9), (0.6, 0.5), (0.1, 0.0), (0.8, 0.99)]:
        sampler = L.llama_sampler_init_adaptive_p(target, decay, 1234)
        steps = []
        for _ in range(6):
            logits = random_logits(steps_rng)
            out, drawn = llama_step(L, sampler, logits)
            steps.append({"logits": logits, "probs": rounded(probabilities(out)), "drawn": drawn})
            L.llama_sampler_accept(sampler, drawn)
        L.llama_sampler_free(sampler)
        cases.append({"sampler": "adaptiveP", "params": {"target": target, "decay": decay}, "steps": steps})

    OUT.write_text(json.dumps({"vocab": VOCAB, "cases": cases}, separators=(",", ":")) + "\n")
    print(f"wrote {len(cases)} cases to {OUT.relative_to(ROOT)} ({OUT.stat().st_size // 1024} kB)")


if __name__ == "__main__":
    sys.exit(main())
