"""What every part of the model build shares: the models/ paths, the log, sha256 of a file,
the JSON writer (numbers kept on one line) and float32 values as JSON numbers."""
import hashlib
import json
import re
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"


def log(*a):
    print(*a, flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path, obj, indent=2):
    """Indented JSON with arrays of numbers kept on one line (JSON strings never hold a raw
    newline, so a bracket span containing one is structural)."""
    text = json.dumps(obj, ensure_ascii=False, indent=indent)
    text = re.sub(r"\[[-+.,\deE\s]*\n[-+.,\deE\s]*\]",
                  lambda m: re.sub(r"\s+", " ", m.group()).replace("[ ", "[").replace(" ]", "]"), text)
    Path(path).write_text(text + "\n", encoding="utf-8")


def f32_value(x):
    """Shortest decimal that round-trips the float32 (9.99999974e-06 -> 1e-05)."""
    return float(str(np.float32(x)))


def read_paragraph():
    return (FIXTURES / "paragraph.txt").read_text(encoding="utf-8").strip()
