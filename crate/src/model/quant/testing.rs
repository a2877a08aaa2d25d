//! Pseudo-random test data: GGUF blocks and activations of every block type, ordinary and
//! extreme. Compiled into the library, not only under `cfg(test)`:
//! [`self_check`](super::self_check) runs on it (in the wasm tests), and the integration tests
//! and the benchmark, which link the plain library, build their matrices with it. The helpers
//! after them are the unit tests' own.

use super::BLOCK;
use crate::model::formats::GgmlType;
#[cfg(test)]
use super::{Kernel, QuantMatrix};

/// A 64-bit LCG (Knuth's MMIX constants), high bits out: enough to make test matrices.
#[doc(hidden)] // for the tests and the benchmark
pub struct Lcg(pub u64);
impl Lcg {
    #[allow(clippy::should_implement_trait)] // an infinite stream; Iterator would add nothing
    pub fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 32) as u32
    }
    /// Uniform in [-1, 1).
    pub fn signed_unit(&mut self) -> f32 {
        (self.next() >> 8) as f32 / (1 << 23) as f32 - 1.0
    }
}

/// GGUF bytes of a random matrix of block type `ty`: random quants (and K-quant sub-block
/// scales); f16 scales and mins mostly ordinary, some zero, negative or subnormal, and with
/// `extreme` also the f16 maximum.
#[doc(hidden)] // for the tests and the benchmark
pub fn random_blocks(ty: GgmlType, rows: usize, cols: usize, extreme: bool, rng: &mut Lcg) -> Vec<u8> {
    // Where each type keeps its f16 d (and m or dmin): ggml-common.h.
    let f16_at: &[usize] = match ty {
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q6_K => &[208],
        GgmlType::Q3_K => &[108],
        _ => &[0],
    };
    let bb = ty.block_bytes();
    let mut bytes = Vec::with_capacity(rows * cols / ty.block_size() * bb);
    for _ in 0..rows * cols / ty.block_size() {
        let start = bytes.len();
        while bytes.len() < start + bb {
            if !f16_at.contains(&(bytes.len() - start)) {
                bytes.push(rng.next() as u8);
                continue;
            }
            let r = rng.next();
            let sign = ((r & 1) as u16) << 15;
            let bits = match (r >> 1) % 8 {
                0 => 0,
                1 => ((r >> 4) & 0x3ff) as u16, // subnormal
                2 if extreme => 0x7bff,         // 65504
                // 2^-12 .. 2^-4 with a random mantissa: the range real weights use.
                _ => (((r >> 4) % 9 + 3) << 10 | (r >> 13) & 0x3ff) as u16,
            };
            bytes.extend_from_slice(&(sign | bits).to_le_bytes());
        }
    }
    bytes
}

/// The block-quantised types.
#[doc(hidden)]
pub fn block_types() -> impl Iterator<Item = GgmlType> {
    GgmlType::supported().filter(|t| t.scheme().is_some())
}

/// Random activations: mostly ordinary, some all-zero blocks, and with `extreme` blocks near the
/// f32 maximum and subnormal ones.
pub(crate) fn random_activations(n: usize, extreme: bool, rng: &mut Lcg) -> Vec<f32> {
    let mut x = Vec::with_capacity(n);
    while x.len() < n {
        let scale = match rng.next() % 8 {
            0 => 0.0,
            1 if extreme => 1e36,
            2 if extreme => 1e-39,
            k => k as f32,
        };
        for _ in 0..BLOCK {
            x.push(scale * rng.signed_unit());
        }
    }
    x
}

/// The hand-built blocks' dot test: `w` (one row of 32) against x = j − 16 with x[31] = 32767,
/// so that d_x = 1 and q_x = x exactly; every kernel must give `want`.
#[cfg(test)]
pub(super) fn assert_hand_built_dot(w: &QuantMatrix, want: f32) {
    let mut x: Vec<f32> = (0..32).map(|j| j as f32 - 16.0).collect();
    x[31] = 32767.0;
    for kernel in [Kernel::Reference, Kernel::Simd, Kernel::F32Activations] {
        let mut out = [0.0];
        w.matmul_with(kernel, &x, 1, &mut out).unwrap();
        assert_eq!(out, [want], "{kernel:?}");
    }
}

#[cfg(test)]
pub(super) fn formats() -> Vec<GgmlType> {
    block_types().collect()
}

/// `cols` rounded up to a whole number of `ty`'s blocks.
#[cfg(test)]
pub(super) fn width(ty: GgmlType, cols: usize) -> usize {
    cols.next_multiple_of(ty.block_size())
}

#[cfg(test)]
pub(super) fn random_matrix(ty: GgmlType, rows: usize, cols: usize, extreme: bool, seed: u64) -> QuantMatrix {
    let blocks = random_blocks(ty, rows, cols, extreme, &mut Lcg(seed));
    QuantMatrix::from_gguf_blocks(ty, rows, cols, &blocks, None).unwrap()
}

#[cfg(test)]
pub(super) fn run(w: &QuantMatrix, kernel: Kernel, x: &[f32], m: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; m * w.rows()];
    w.matmul_with(kernel, x, m, &mut out).unwrap();
    out
}
