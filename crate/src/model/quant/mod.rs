//! Weight matrices kept in blocks the way GGUF stores them, and kernels that compute `out = x · Wᵀ`
//! straight from the blocks, the way llama.cpp does: activations are quantised per 32-block to
//! int16, each block's dot product is an exact integer sum, and an f32 part scales it.
//!
//! Every block-quantised GGUF type (see `model::formats`) is repacked exactly into 32-weight
//! blocks of one of a few kernel schemes ([`Scheme`], `schemes.rs`, which also gives each one's
//! memory cost); `unpack.rs` reads GGUF's layouts.
//!
//! Determinism is the design constraint: the same seed must give the same tokens natively and in
//! wasm. Integer sums are exact, so their order is free, but every kernel performs the same f32
//! operations in the same order ([`block_term`](kernel::block_term)), lane = weight row, with no
//! FMA. So [`Kernel::Simd`] equals [`Kernel::Reference`] bit for bit on every platform;
//! [`self_check`] verifies it at run time.
//!
//! Memory layout: rows are interleaved in groups of [`GROUP`] (the last group padded with zero
//! rows). Per (group, block) the four rows' quant bytes lie back to back, then per (group, block,
//! scale) the four rows' f32 scales, and likewise the mins.
//!
//! The files, one job each: the [`QuantMatrix`] and its layout here; `repack.rs` builds one from
//! GGUF's blocks or from quants given by value; `dequantize.rs` reads its rows back in f32;
//! `kernel.rs` multiplies (the [`Kernel`]s, with `activations.rs` quantising the activations and
//! `simd128.rs` and `x86.rs` the platforms' SIMD kernels); `selfcheck.rs` checks at run time that
//! they agree; `testing.rs` makes the pseudo-random matrices the tests and benchmarks use.

#[cfg(test)]
mod q4_0;
#[cfg(test)]
mod q4_1;
#[cfg(test)]
mod q8_0;
mod activations;
mod dequantize;
mod kernel;
mod repack;
mod schemes;
mod selfcheck;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
#[doc(hidden)] // for the tests, the benchmark and the self-check
pub mod testing;
pub(crate) mod unpack;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::model::formats::GgmlType;
use schemes::{Bits, Format};
pub use kernel::{simd_kernel_name, Kernel};
pub use schemes::Scheme;
pub use selfcheck::self_check;

/// Weights per block, in every scheme.
pub const BLOCK: usize = 32;
/// Rows computed together: one per f32 lane of a 128-bit vector.
const GROUP: usize = 4;

/// `rows × cols` weights of one GGUF block type, repacked for the kernels (see the module docs
/// for the layout).
#[derive(Clone)]
pub struct QuantMatrix {
    ty: GgmlType,
    scheme: Scheme,
    rows: usize,
    cols: usize,
    /// Per (group, block), the group's 4 rows' quant bytes back to back.
    qs: Vec<u8>,
    /// Per (group, block, scale), the 4 rows' scales.
    d: Vec<f32>,
    /// Per (group, block), the 4 rows' mins (schemes with mins only; empty otherwise).
    m: Vec<f32>,
}

impl std::fmt::Debug for QuantMatrix {
    // The blocks themselves would be megabytes of output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantMatrix")
            .field("format", &self.ty)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("storage_bytes", &self.storage_bytes())
            .finish()
    }
}

impl QuantMatrix {
    /// The GGUF type the blocks came from.
    pub fn format(&self) -> GgmlType {
        self.ty
    }

    /// The kernel scheme the blocks are held in.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes of weights held (quants, f32 scales and mins, padding rows included).
    pub fn storage_bytes(&self) -> usize {
        self.qs.len() + 4 * (self.d.len() + self.m.len())
    }

    /// The repacked blocks as they lie in memory (see the module docs): the quant bytes, the f32
    /// scales and the f32 mins (empty without mins). The WebGPU backend uploads them as they
    /// are, so both backends read one copy of the layout.
    pub fn packed_parts(&self) -> (&[u8], &[f32], &[f32]) {
        (&self.qs, &self.d, &self.m)
    }

    fn blocks_per_row(&self) -> usize {
        self.cols / BLOCK
    }

    /// Index of row `r`'s block `b` in `m` (and, × QS_BYTES, in `qs`; see [`scale_index`]).
    fn slot(&self, r: usize, b: usize) -> usize {
        ((r / GROUP) * self.blocks_per_row() + b) * GROUP + r % GROUP
    }
}

/// Index in `d` of scale `k` of slot `s`: per (group, block), the 4 rows' first scales, then
/// their second ones.
#[inline(always)]
fn scale_index<F: Format>(s: usize, k: usize) -> usize {
    (s / GROUP * F::SCALES + k) * GROUP + s % GROUP
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quant_matrix_is_send_and_sync() {
        fn assert<T: Send + Sync + std::fmt::Debug>() {}
        assert::<QuantMatrix>();
    }
}
