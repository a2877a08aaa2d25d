"""Random GGUF blocks of every block type the runtime reads, dequantised by gguf-py (an
implementation independent of ours that mirrors ggml's), for the Rust test that compares every
dequantised weight bit for bit (crate/tests/native/gguf_blocks.rs).

Writes crate/tests/fixtures/gguf_blocks/<TYPE>.bin: u32 block count, u32 bytes per block, u32
weights per block, the blocks, then every weight as an f32, all little-endian.

The blocks are random bytes with their f16 scales (d, m, dmin) overwritten by edge cases in turn:
zero, negative, subnormal, the largest finite f16 and ordinary values; a few blocks have every
quant byte 0x00 or 0xFF (the extreme nibbles and, in K-quants, the largest 6-bit scales).
Infinite and NaN scales are left out: the runtime refuses them.

    models/.venv/bin/python models/gguf_blocks.py
"""

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

OUT = Path(__file__).resolve().parent.parent / "crate/tests/fixtures/gguf_blocks"

# type -> byte offsets of its f16 scales within a block
SCALES = {
    T.Q8_0: [0],
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
    T.Q3_K: [108],
}
EDGE_F16 = [0x0000, 0x8000, 0x0001, 0x83FF, 0x7BFF, 0xFBFF, 0x3C00, 0xB555, 0x1A3C, 0x2E66]


def blocks_of(qtype, n, rng):
    weights, size = GGML_QUANT_SIZES[qtype]
    data = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    data[0, :] = 0x00
    data[1, :] = 0xFF
    for i in range(n):
        for k, offset in enumerate(SCALES[qtype]):
            if i < 2 * len(EDGE_F16):
                bits = EDGE_F16[(i + 3 * k) % len(EDGE_F16)]
            else:  # ordinary scales: 2^-12 .. 2^-4, either sign
                bits = int(rng.integers(3, 12)) << 10 | int(rng.integers(0, 1024)) | int(rng.integers(0, 2)) << 15
            data[i, offset:offset + 2] = np.frombuffer(np.uint16(bits).tobytes(), dtype=np.uint8)
    return data


def bf16_values(rng):
    bits = rng.integers(0, 1 << 16, size=512, dtype=np.uint32)
    bits[:8] = [0x0000, 0x8000, 0x0001, 0x807F, 0x7F7F, 0xFF7F, 0x3F80, 0x4049]  # zeros, subnormals, max
    bits = bits[(bits & 0x7F80) != 0x7F80]  # no inf / NaN
    return bits.astype(np.uint16).view(np.uint8).reshape(-1, 2)


def write(name, qtype, data):
    weights, size = GGML_QUANT_SIZES[qtype]
    values = dequantize(data.reshape(-1), qtype).astype(np.float32)
    assert values.size == data.shape[0] * weights
    header = np.array([data.shape[0], size, weights], dtype="<u4").tobytes()
    (OUT / f"{name}.bin").write_bytes(header + data.tobytes() + values.astype("<f4").tobytes())


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(23)
    for qtype in SCALES:
        n = 24 if GGML_QUANT_SIZES[qtype][0] == 32 else 10
        write(qtype.name, qtype, blocks_of(qtype, n, rng))
    write("BF16", T.BF16, bf16_values(rng))
    print(f"wrote {sorted(p.name for p in OUT.iterdir())} to {OUT}")


if __name__ == "__main__":
    main()
