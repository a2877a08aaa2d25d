"""onnxruntime-web's inputs for the browser benchmark (tests/bench/browser/run.mjs), in
models/bench/ (git-ignored); each is skipped when present:

- smollm2-f32/: SmolLM2 as an f32 ONNX file (build_model.py smollm2 --dtype f32), the same
  weights as the GGUF, dequantised;
- smollm2-int8/model.onnx: that file through onnxruntime.quantization.quantize_dynamic (int8
  MatMulInteger, per-tensor), the "q8" transformers.js ships;
- paragraph.json and paragraph.embeds.f32: the fixture paragraph's ids and their embedding rows
  (the graphs take embeddings), for each engine's teacher-forced perplexity.

    models/.venv/bin/python tests/bench/browser/prepare.py
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parents[3]
OUT = ROOT / "models" / "bench"
F32 = OUT / "smollm2-f32"
INT8 = OUT / "smollm2-int8"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    if not (F32 / "model.onnx").exists():
        subprocess.run([sys.executable, str(ROOT / "models" / "build_model.py"), "smollm2", "--dtype", "f32",
                        "--out", str(F32)], check=True)
    if not (INT8 / "model.onnx").exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic
        INT8.mkdir(exist_ok=True)
        quantize_dynamic(str(F32 / "model.onnx"), str(INT8 / "model.onnx"), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"], per_channel=False)
        (INT8 / "config.json").write_bytes((F32 / "config.json").read_bytes())
    if not (OUT / "paragraph.embeds.f32").exists():
        reference = json.loads((ROOT / "models" / "fixtures" / "smollm2_reference.json").read_text())
        ids = reference["paragraph"]["ids"]
        model = onnx.load(str(F32 / "model.onnx"))
        table = next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == "model.embed_tokens.weight")
        np.ascontiguousarray(table[ids], dtype="<f4").tofile(OUT / "paragraph.embeds.f32")
        (OUT / "paragraph.json").write_text(json.dumps({"ids": ids}))
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
