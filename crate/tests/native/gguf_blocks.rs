//! Every GGUF block type the runtime reads, dequantised as it holds it, against gguf-py's
//! `gguf.quants.dequantize` bit for bit: random blocks with edge-case scales, made and
//! dequantised by `models/gguf_blocks.py` (crate/tests/fixtures/gguf_blocks/).

use decoding_playground::model::bf16_bits_to_f32;
use decoding_playground::model::formats::GgmlType;
use decoding_playground::model::quant::QuantMatrix;

/// (blocks, bytes per block, weights per block, gguf-py's weights) of one fixture file.
fn fixture(name: &str) -> (Vec<u8>, usize, usize, Vec<f32>) {
    let path = format!("{}/tests/fixtures/gguf_blocks/{name}.bin", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (models/.venv/bin/python models/gguf_blocks.py)"));
    let word = |i: usize| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap()) as usize;
    let (n, size, weights) = (word(0), word(1), word(2));
    let blocks = bytes[12..12 + n * size].to_vec();
    let values = bytes[12 + n * size..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect::<Vec<_>>();
    assert_eq!(values.len(), n * weights, "{name}: values");
    (blocks, size, weights, values)
}

fn assert_same_bits(name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{name}: weight {i} (block {}, element {}) is {g}, gguf-py's {w}", i / 256, i % 256);
    }
}

#[test]
fn block_types_dequantise_as_gguf_py_does_bit_for_bit() {
    let mut checked = Vec::new();
    for ty in GgmlType::supported().filter(|t| t.scheme().is_some()) {
        let (blocks, size, weights, want) = fixture(ty.name());
        assert_eq!((size, weights), (ty.block_bytes(), ty.block_size()), "{ty}: gguf-py's block size");
        // The blocks as one row, and as rows of one block each (rows pad to groups of 4).
        let n = blocks.len() / size;
        for (rows, cols) in [(1, n * weights), (n, weights)] {
            let w = QuantMatrix::from_gguf_blocks(ty, rows, cols, &blocks, None).unwrap();
            let mut got = vec![f32::NAN; rows * cols];
            for (r, row) in got.chunks_exact_mut(cols).enumerate() {
                w.dequantize_row(r, row).unwrap();
            }
            assert_same_bits(ty.name(), &got, &want);
        }
        // Guard against a fixture of zeros: the edge cases and ordinary values are all there.
        let distinct: std::collections::HashSet<u32> = want.iter().map(|v| v.to_bits()).collect();
        assert!(distinct.len() > want.len() / 8, "{ty}: only {} distinct values", distinct.len());
        assert!(want.iter().any(|v| v.abs() > 1e4) && want.iter().any(|v| *v != 0.0 && v.abs() < 1e-6), "{ty}: no edge cases");
        checked.push(ty.name());
    }
    assert_eq!(checked, ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K", "Q3_K"]);
}

#[test]
fn bf16_widens_as_gguf_py_does() {
    let (bits, size, weights, want) = fixture("BF16");
    assert_eq!((size, weights), (GgmlType::BF16.block_bytes(), GgmlType::BF16.block_size()));
    let got: Vec<f32> = bits.chunks_exact(2).map(|b| bf16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect();
    assert_same_bits("BF16", &got, &want);
}
