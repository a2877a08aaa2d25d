//! Building a [`QuantMatrix`]: GGUF's blocks (or quants given by value, as ONNX's block-quantised
//! tensors hold them) checked and repacked into the kernels' layout (see the module docs).

use super::schemes::{with_scheme, Format};
use super::unpack::Sub;
use super::{scale_index, QuantMatrix, Scheme, BLOCK, GROUP};
use crate::error::{Error, Result};
use crate::model::formats::{GgmlType, Held};

fn check_shape(ty: GgmlType, rows: usize, cols: usize) -> Result<()> {
    let block = ty.block_size().max(BLOCK);
    if rows == 0 || cols == 0 || !cols.is_multiple_of(block) {
        return Err(Error::Model(format!(
            "a {ty} matrix of {rows} x {cols}: rows must be positive and cols a positive multiple of {block}"
        )));
    }
    Ok(())
}

impl QuantMatrix {
    /// `blocks`: the GGUF tensor data of type `ty`, row-major: `rows` rows of `cols / block size`
    /// blocks each. `row_order`: `None`, or `Some(perm)` with `perm.len() == rows`: row i of the
    /// result is GGUF row `perm[i]` (to undo llama.cpp's Q/K permutation); it must be a
    /// permutation.
    pub fn from_gguf_blocks(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        blocks: &[u8],
        row_order: Option<&[usize]>,
    ) -> Result<Self> {
        let Held::Blocks { scheme, unpack } = ty.info().held else {
            return Err(Error::Model(format!("{ty} is not a block-quantised type")));
        };
        check_shape(ty, rows, cols)?;
        let expected = rows.checked_mul(cols / ty.block_size()).and_then(|n| n.checked_mul(ty.block_bytes()));
        if expected != Some(blocks.len()) {
            return Err(Error::Model(format!(
                "a {ty} matrix of {rows} x {cols} takes {} bytes of blocks, got {}",
                expected.map_or("more than usize::MAX".to_string(), |n| n.to_string()),
                blocks.len()
            )));
        }
        if let Some(perm) = row_order {
            check_permutation(perm, rows)?;
        }
        let (bb, subs) = (ty.block_bytes(), ty.block_size() / BLOCK);
        let row_bytes = cols / ty.block_size() * bb;
        with_scheme!(scheme, F => {
            let mut w = Self::zeroed::<F>(ty, scheme, rows, cols)?;
            for r in 0..rows {
                let src = row_order.map_or(r, |p| p[r]);
                for (i, block) in blocks[src * row_bytes..][..row_bytes].chunks_exact(bb).enumerate() {
                    for k in 0..subs {
                        let b = i * subs + k;
                        w.set_block::<F>(r, b, &unpack(block, k), || format!("{ty} block {i} of row {src}"))?;
                    }
                }
            }
            Ok(w)
        })
    }

    /// `rows × cols` weights quantised elsewhere than in GGUF (ONNX's block-quantised tensors), as
    /// `ty` (Q8_0, Q4_0 or Q4_1), given block by block: `block(r, b)` is block `b` of row `r` as
    /// its quants, weight j first (0..=15 for the 4-bit types, before Q4_0's offset; an i8 for
    /// Q8_0), with its scale and min (Q4_1; ignored otherwise) in f32, which GGUF's f16 would
    /// round.
    pub fn from_block_quants(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        mut block: impl FnMut(usize, usize) -> ([i32; BLOCK], f32, f32),
    ) -> Result<Self> {
        let scheme = match ty {
            GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1 => ty.scheme().expect("a block type"),
            _ => return Err(Error::Model(format!("blocks given by value must be Q8_0, Q4_0 or Q4_1, not {ty}"))),
        };
        with_scheme!(scheme, F => {
            let mut w = Self::zeroed::<F>(ty, scheme, rows, cols)?;
            for r in 0..rows {
                for b in 0..cols / BLOCK {
                    let (q, d, m) = block(r, b);
                    w.set_block::<F>(r, b, &Sub { q, d: [d, d], m }, || format!("{ty} block {b} of row {r}"))?;
                }
            }
            Ok(w)
        })
    }

    /// A matrix of zero blocks, its shape checked.
    fn zeroed<F: Format>(ty: GgmlType, scheme: Scheme, rows: usize, cols: usize) -> Result<Self> {
        check_shape(ty, rows, cols)?;
        let slots = (rows.div_ceil(GROUP) * GROUP).checked_mul(cols / BLOCK).filter(|s| s.checked_mul(F::QS_BYTES).is_some());
        let slots = slots.ok_or_else(|| Error::Model(format!("a {ty} matrix of {rows} x {cols} is too large")))?;
        Ok(QuantMatrix {
            ty,
            scheme,
            rows,
            cols,
            qs: vec![0; slots * F::QS_BYTES],
            d: vec![0.0; slots * F::SCALES],
            m: if F::HAS_MIN { vec![0.0; slots] } else { Vec::new() },
        })
    }

    fn set_block<F: Format>(&mut self, r: usize, b: usize, sub: &Sub, which: impl Fn() -> String) -> Result<()> {
        // No quantiser writes these; they would turn every output they touch into NaN.
        if !sub.d.iter().all(|d| d.is_finite()) || !sub.m.is_finite() {
            return Err(Error::Model(format!("{} has a non-finite scale or min (d = {:?}, m = {})", which(), sub.d, sub.m)));
        }
        let s = self.slot(r, b);
        for k in 0..F::SCALES {
            self.d[scale_index::<F>(s, k)] = sub.d[k];
        }
        if F::HAS_MIN {
            self.m[s] = sub.m;
        }
        F::pack(&sub.q, &mut self.qs[s * F::QS_BYTES..][..F::QS_BYTES]);
        Ok(())
    }
}

fn check_permutation(perm: &[usize], rows: usize) -> Result<()> {
    let bad = |why: String| {
        Err(Error::Model(format!(
            "row_order is not a permutation of 0..{rows}: {why}"
        )))
    };
    if perm.len() != rows {
        return bad(format!("it has {} entries", perm.len()));
    }
    let mut seen = vec![false; rows];
    for (i, &p) in perm.iter().enumerate() {
        if p >= rows || seen[p] {
            return bad(format!("entry {i} is {p}"));
        }
        seen[p] = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::testing::{formats, random_activations, random_blocks, random_matrix, run, width, Lcg};
    use super::super::Kernel;
    use crate::model::f16_bits_to_f32;

    fn model_error(r: Result<()>) -> String {
        match r {
            Err(Error::Model(msg)) => msg,
            other => panic!("expected Error::Model, got {other:?}"),
        }
    }

    #[test]
    fn blocks_given_by_value_are_the_gguf_blocks_of_the_same_values() {
        for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
            let (rows, cols) = (5, 64);
            let blocks = random_blocks(ty, rows, cols, false, &mut Lcg(11));
            let gguf = QuantMatrix::from_gguf_blocks(ty, rows, cols, &blocks, None).unwrap();
            let bb = ty.block_bytes();
            let by_value = QuantMatrix::from_block_quants(ty, rows, cols, |r, b| {
                let block = &blocks[(r * cols / BLOCK + b) * bb..][..bb];
                let f16 = |i: usize| f16_bits_to_f32(u16::from_le_bytes([block[i], block[i + 1]]));
                let q = |j: usize| match ty {
                    GgmlType::Q8_0 => block[2 + j] as i8 as i32,
                    _ => (block[bb - 16 + j % 16] >> (4 * (j / 16)) & 15) as i32,
                };
                (std::array::from_fn(q), f16(0), if ty == GgmlType::Q4_1 { f16(2) } else { 0.0 })
            })
            .unwrap();
            assert_eq!(by_value.packed_parts(), gguf.packed_parts(), "{ty:?}");
        }
        let refused = QuantMatrix::from_block_quants(GgmlType::Q4_0, 1, 32, |_, _| ([0; BLOCK], f32::NAN, 0.0));
        assert_eq!(model_error(refused.map(|_| ())), "Q4_0 block 0 of row 0 has a non-finite scale or min (d = [NaN, NaN], m = 0)");
        let refused = QuantMatrix::from_block_quants(GgmlType::Q6_K, 1, 256, |_, _| ([0; BLOCK], 1.0, 0.0));
        assert!(model_error(refused.map(|_| ())).contains("must be Q8_0, Q4_0 or Q4_1, not Q6_K"));
    }

    #[test]
    fn row_order_permutes_rows() {
        for format in formats() {
            let (rows, cols) = (6, width(format, 64));
            let blocks = random_blocks(format, rows, cols, false, &mut Lcg(11));
            let plain = QuantMatrix::from_gguf_blocks(format, rows, cols, &blocks, None).unwrap();
            let perm = [3, 0, 5, 1, 4, 2];
            let permuted =
                QuantMatrix::from_gguf_blocks(format, rows, cols, &blocks, Some(&perm)).unwrap();
            let (mut a, mut b) = (vec![0.0; cols], vec![0.0; cols]);
            for (i, &p) in perm.iter().enumerate() {
                permuted.dequantize_row(i, &mut a).unwrap();
                plain.dequantize_row(p, &mut b).unwrap();
                assert_eq!(a, b);
            }
            let x = random_activations(cols, false, &mut Lcg(12));
            let (y_plain, y_perm) = (
                run(&plain, Kernel::Simd, &x, 1),
                run(&permuted, Kernel::Simd, &x, 1),
            );
            assert_eq!(perm.iter().map(|&p| y_plain[p]).collect::<Vec<_>>(), y_perm);
            assert_ne!(y_plain, y_perm);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let q = GgmlType::Q4_1;
        let blocks = vec![0u8; 3 * 2 * 20];
        let new = |rows, cols, bytes: &[u8], perm: Option<&[usize]>| {
            QuantMatrix::from_gguf_blocks(q, rows, cols, bytes, perm).map(|_| ())
        };
        assert!(model_error(new(3, 48, &blocks[..60], None)).contains("multiple of 32"));
        let k = QuantMatrix::from_gguf_blocks(GgmlType::Q4_K, 1, 576, &[0; 324], None);
        assert!(model_error(k.map(|_| ())).contains("Q4_K matrix of 1 x 576: rows must be positive and cols a positive multiple of 256"));
        let f = QuantMatrix::from_gguf_blocks(GgmlType::F32, 1, 32, &[0; 128], None);
        assert_eq!(model_error(f.map(|_| ())), "F32 is not a block-quantised type");
        assert!(model_error(new(0, 64, &[], None)).contains("rows must be positive"));
        assert!(model_error(new(3, 64, &blocks[..119], None))
            .contains("takes 120 bytes of blocks, got 119"));
        assert!(model_error(new(usize::MAX, 64, &blocks, None)).contains("more than usize::MAX"));
        assert!(model_error(new(3, 64, &blocks, Some(&[0, 1]))).contains("2 entries"));
        assert!(model_error(new(3, 64, &blocks, Some(&[0, 1, 1]))).contains("entry 2 is 1"));
        assert!(model_error(new(3, 64, &blocks, Some(&[0, 3, 1]))).contains("entry 1 is 3"));
        let mut inf = blocks.clone();
        inf[2 * 20 + 2..2 * 20 + 4].copy_from_slice(&0x7c00u16.to_le_bytes()); // row 1 block 0's min
        assert!(model_error(new(3, 64, &inf, None)).contains("block 0 of row 1 has a non-finite"));

        let w = QuantMatrix::from_gguf_blocks(q, 3, 64, &blocks, None).unwrap();
        let mut out = vec![0.0; 64];
        assert!(model_error(w.dequantize_row(3, &mut out)).contains("row 3 of a 3 x 64"));
        assert!(model_error(w.dequantize_row(0, &mut out[..63])).contains("into 63 values"));
        assert!(model_error(w.add_scaled_row(3, 1.0, &mut out)).contains("row 3"));
        for kernel in [Kernel::Reference, Kernel::F32Activations, Kernel::Simd] {
            assert!(
                model_error(w.matmul_with(kernel, &[0.0; 128], 2, &mut [0.0; 5]))
                    .contains("got 128 and 5")
            );
            assert!(
                model_error(w.matmul_with(kernel, &[0.0; 127], 2, &mut [0.0; 6]))
                    .contains("got 127 and 6")
            );
            assert!(w.matmul_with(kernel, &[], usize::MAX, &mut []).is_err());
            assert!(w.matmul_with(kernel, &[], 0, &mut []).is_ok());
        }
    }

    #[test]
    fn storage_is_the_padded_repacked_blocks() {
        // 5 rows pad to 8; 2 blocks per row; Q4_1: 16 quant bytes + 2 f32 per block.
        let w = random_matrix(GgmlType::Q4_1, 5, 64, false, 1);
        assert_eq!(w.storage_bytes(), 8 * 2 * 24);
        let w = random_matrix(GgmlType::Q8_0, 4, 32, false, 1);
        assert_eq!(w.storage_bytes(), 4 * 36);
        assert_eq!(
            format!("{w:?}"),
            "QuantMatrix { format: Q8_0, rows: 4, cols: 32, storage_bytes: 144 }"
        );
        // Per 32 weights: Q4_K as Q4_1 (24 bytes), Q5_0 as Q8_0 32 + 4, Q5_K as Q5_1 16 + 4 + 8,
        // Q6_K 32 + 2 f32.
        for (ty, bytes) in [(GgmlType::Q4_K, 24), (GgmlType::Q5_0, 36), (GgmlType::Q5_K, 28), (GgmlType::Q6_K, 40)] {
            assert_eq!(random_matrix(ty, 4, 256, false, 1).storage_bytes(), 4 * 8 * bytes, "{ty}");
        }
    }
}
