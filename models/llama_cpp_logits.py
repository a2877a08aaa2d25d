#!/usr/bin/env python3
"""llama.cpp's logits at every position of one prefill of the given ids (no BOS added), as raw
little-endian float32 [n_ids, n_vocab] on stdout. Runs in llama_cpp_python.sh's venv (numpy and
llama_cpp only), which is why it is a script of its own: tiny_archs.py calls it.

  llama_cpp_logits.py FILE.gguf ID,ID,...

One thread (a fixed summation order) and an F32 KV cache (type 0), so the logits differ from an
exact forward by f32 rounding only, and from one run to the next not at all.
"""
import sys

import numpy as np
from llama_cpp import Llama


def main():
    path, ids = sys.argv[1], [int(i) for i in sys.argv[2].split(",")]
    llm = Llama(path, n_ctx=64, logits_all=True, n_threads=1, n_threads_batch=1,
                type_k=0, type_v=0, verbose=False)
    llm.eval(ids)
    sys.stdout.buffer.write(np.ascontiguousarray(llm.scores[:len(ids)], "<f4").tobytes())


if __name__ == "__main__":
    main()
