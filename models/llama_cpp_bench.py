#!/usr/bin/env python3
"""llama.cpp's own figures on a GGUF file (llama-cpp-python, built by scripts/bench-formats.sh):
the teacher-forced perplexity of the reference paragraph's ids (the same ids and method as our
engine and the exact forward: one prefill, every position's logits, no BOS) and the 1-thread
greedy decode speed after the reference greedy prompt. Prints one JSON line.

  llama_cpp_bench.py FILE.gguf [--tokens N]
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
from llama_cpp import Llama

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--tokens", type=int, default=64)
    args = ap.parse_args()
    ref = json.loads((HERE / "fixtures/smollm2_reference.json").read_text())
    ids, prompt = ref["paragraph"]["ids"], ref["greedy"]["prompt_ids"]

    llm = Llama(args.gguf, n_ctx=512, n_batch=512, n_threads=1, n_threads_batch=1, logits_all=True, verbose=False)
    llm.eval(ids)
    z = np.asarray(llm.scores[:len(ids) - 1], np.float64)
    z -= z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ppl = float(np.exp(-logp[np.arange(len(ids) - 1), ids[1:]].mean()))

    # Decode: one token per eval, as our engine's step; timed after the prompt's prefill.
    llm.reset()
    llm.eval(prompt)
    greedy = [int(np.argmax(llm.scores[llm.n_tokens - 1]))]
    t = time.perf_counter()
    while len(greedy) < args.tokens:
        llm.eval([greedy[-1]])
        greedy.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
    decode = (args.tokens - 1) / (time.perf_counter() - t)
    print(json.dumps({"perplexity": round(ppl, 4), "decodeTokS": round(decode, 2), "greedy": greedy[:32]}))


if __name__ == "__main__":
    main()
