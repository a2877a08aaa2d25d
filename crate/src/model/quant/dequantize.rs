//! A [`QuantMatrix`]'s weights read back in f32, exactly as ggml and gguf-py dequantise them.

use super::schemes::{with_scheme, Format};
use super::{scale_index, QuantMatrix, BLOCK};
use crate::error::{Error, Result};

/// Weight `j` of a block exactly as ggml and gguf-py dequantise it. `d·(q − offset)` is exact in
/// f32 (at most 19 significant bits; Q6_K's d·sc·q at most 23), so a min's `+ m` is the only
/// rounding.
#[inline(always)]
fn dequantize<F: Format>(qs: &[u8], j: usize, d: &[f32], m: f32) -> f32 {
    let v = d[j * F::SCALES / BLOCK] * (F::quant(qs, j) - F::OFFSET) as f32;
    if F::HAS_MIN {
        v + m
    } else {
        v
    }
}

impl QuantMatrix {
    /// `out[j] = W[row][j]`, dequantised exactly as ggml and gguf-py do in f32.
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) -> Result<()> {
        self.check_row(row, out.len())?;
        self.for_each_weight(row, |j, w| out[j] = w);
        Ok(())
    }

    /// `out[j] += weight * W[row][j]` with the values of [`dequantize_row`](Self::dequantize_row).
    pub fn add_scaled_row(&self, row: usize, weight: f32, out: &mut [f32]) -> Result<()> {
        self.check_row(row, out.len())?;
        self.for_each_weight(row, |j, w| out[j] += weight * w);
        Ok(())
    }

    fn check_row(&self, row: usize, len: usize) -> Result<()> {
        if row >= self.rows || len != self.cols {
            return Err(Error::Model(format!(
                "row {row} of a {} x {} matrix into {len} values",
                self.rows, self.cols
            )));
        }
        Ok(())
    }

    pub(super) fn for_each_weight(&self, row: usize, f: impl FnMut(usize, f32)) {
        with_scheme!(self.scheme, F => self.weights::<F>(row, f))
    }

    fn weights<F: Format>(&self, row: usize, mut f: impl FnMut(usize, f32)) {
        for b in 0..self.blocks_per_row() {
            let s = self.slot(row, b);
            let qs = &self.qs[s * F::QS_BYTES..][..F::QS_BYTES];
            let d: [f32; 2] = std::array::from_fn(|k| self.d[scale_index::<F>(s, k.min(F::SCALES - 1))]);
            let m = if F::HAS_MIN { self.m[s] } else { 0.0 };
            for j in 0..BLOCK {
                f(b * BLOCK + j, dequantize::<F>(qs, j, &d, m));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::random_matrix;
    use crate::model::formats::GgmlType;

    #[test]
    fn add_scaled_row_adds_the_dequantised_row() {
        let w = random_matrix(GgmlType::Q4_1, 3, 64, false, 13);
        let mut row = vec![0.0; 64];
        w.dequantize_row(2, &mut row).unwrap();
        let mut out: Vec<f32> = (0..64).map(|i| i as f32).collect();
        w.add_scaled_row(2, -0.75, &mut out).unwrap();
        for j in 0..64 {
            assert_eq!(out[j], j as f32 + -0.75 * row[j]);
        }
    }
}
