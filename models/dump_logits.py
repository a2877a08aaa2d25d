#!/usr/bin/env python3
"""Writes SmolLM2's next-token logits after a fixed prompt as raw little-endian f32, for the
sampler benchmarks' "trained model" shape (crate/benches/data/smollm2_logits.f32).

  models/.venv/bin/python models/dump_logits.py   (after models/build.sh)
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import runners  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

HERE = Path(__file__).resolve().parent
MODEL = HERE / "smollm2-135m"
OUT = HERE.parent / "crate/benches/data/smollm2_logits.f32"
PROMPT = "Once upon a time, there was a little"

cfg = json.loads((MODEL / "config.json").read_text())
proto = onnx.load(str(MODEL / "model.onnx"), load_external_data=False)
embed = next(numpy_helper.to_array(t) for t in proto.graph.initializer
             if t.name == "model.embed_tokens.weight").astype(np.float32)
runner = runners.ort_runner(MODEL / "model.onnx", cfg, embed)
ids = Tokenizer.from_file(str(MODEL / "tokenizer.json")).encode(PROMPT).ids
logits, _ = runner.ids(ids, runner.empty_past())
OUT.parent.mkdir(parents=True, exist_ok=True)
logits[-1].astype("<f4").tofile(OUT)
print(f"{OUT}: {len(logits[-1])} logits after {PROMPT!r}, top id {int(logits[-1].argmax())}")
