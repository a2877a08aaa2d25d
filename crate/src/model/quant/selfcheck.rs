//! The run-time check that this platform's SIMD kernel equals the reference bit for bit, and
//! the reference the native one.

use super::testing::{block_types, random_activations, random_blocks, Lcg};
use super::{simd_kernel_name, Kernel, QuantMatrix};
use crate::error::{Error, Result};

/// Runs [`Kernel::Simd`] against [`Kernel::Reference`] on small pseudo-random matrices of every
/// format (odd row counts, extreme scales and activations included) and requires equal bits, and
/// checks the reference's outputs against a checksum computed natively, so that a platform whose
/// arithmetic differs is caught. Meant for wasm tests; takes a few milliseconds.
pub fn self_check() -> Result<()> {
    let mut hash = Fnv::new();
    for ty in block_types() {
        for (i, &(rows, cols, m, extreme)) in [
            (5, 64, 1, false),
            (13, 96, 3, false),
            (8, 576, 2, false),
            (9, 64, 6, false), // a tile of tokens and two over
            (7, 128, 5, true),
            (9, 96, 10, false), // the prefill kernel: two tiles of tokens and two over
            (6, 160, 9, true),
        ]
        .iter()
        .enumerate()
        {
            let mut rng = Lcg(0x5eed + i as u64);
            let cols = (cols as usize).next_multiple_of(ty.block_size());
            let w = QuantMatrix::from_gguf_blocks(ty, rows, cols, &random_blocks(ty, rows, cols, extreme, &mut rng), None)?;
            let x = random_activations(m * cols, extreme, &mut rng);
            let mut reference = vec![0.0; m * rows];
            let mut simd = vec![0.0; m * rows];
            w.matmul_with(Kernel::Reference, &x, m, &mut reference)?;
            w.matmul_with(Kernel::Simd, &x, m, &mut simd)?;
            if let Some(k) = (0..reference.len()).find(|&k| !same_bits(reference[k], simd[k])) {
                return Err(Error::Model(format!(
                    "quant self-check: {ty} {rows} x {cols}, m = {m}: the {} kernel gives {} at output {k}, the reference {}",
                    simd_kernel_name(),
                    simd[k],
                    reference[k]
                )));
            }
            // NaN bit patterns may differ between platforms (wasm leaves them open): not hashed.
            if !extreme {
                reference.iter().for_each(|v| hash.add(v.to_bits()));
            }
        }
    }
    if hash.0 != SELF_CHECK_HASH {
        return Err(Error::Model(format!(
            "quant self-check: the reference kernel's outputs hash to {:#018x}, natively {SELF_CHECK_HASH:#018x}",
            hash.0
        )));
    }
    Ok(())
}

/// FNV-1a over the bits of the non-extreme reference outputs of [`self_check`], computed natively.
const SELF_CHECK_HASH: u64 = 0xcc46_d44d_a081_3180;

struct Fnv(u64);
impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn add(&mut self, v: u32) {
        for byte in v.to_le_bytes() {
            self.0 = (self.0 ^ byte as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// Equal bits, or both NaN.
pub(super) fn same_bits(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_check_passes() {
        self_check().unwrap();
    }
}
