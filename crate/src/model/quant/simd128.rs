//! The wasm simd128 kernel. Per weight row and block: split the nibbles (`and 0x0F`, `shr 4`,
//! with the fifth bits ORed in for the 5-bit schemes) or take the i8 quants, widen to i16,
//! `i32x4.dot_i16x8_s` against the activations pre-widened to i16 (exact); shuffle the 4 rows of
//! a group into one i32 lane each (per scale: Q6_K sums its two 16-weight halves apart); then
//! [`block_term`](super::kernel::block_term) in f32x4 lanes, one row per lane (simd128 has no
//! FMA), so the result is the reference's bits.

use super::activations::Activations;
use super::kernel::{for_each_group_by_token, GroupWeights, TokenActivations};
use super::{Bits, Format, QuantMatrix, BLOCK, GROUP};
use core::arch::wasm32::*;

pub(super) fn matmul<F: Format>(w: &QuantMatrix, a: &Activations, m: usize, out: &mut [f32]) {
    // One token at a time, even in a prefill: a tile of tokens sharing each block's unpacked
    // rows (as x86.rs does) measured no faster here, V8 spilling the 16 unpacked vectors.
    for_each_group_by_token(w, m, out, |g, t| group_dot::<F>(w, a, g, t));
}

/// The 4 outputs of row group `g` for token `t`.
#[inline]
fn group_dot<F: Format>(w: &QuantMatrix, a: &Activations, g: usize, t: usize) -> [f32; GROUP] {
    let nb = w.cols / BLOCK;
    let GroupWeights { qs, d, mins } = GroupWeights::new::<F>(w, g);
    let TokenActivations { x, xd, xs, xsum } = TokenActivations::new(w, a, t);
    let mut acc = f32x4_splat(0.0);
    for b in 0..nb {
        // SAFETY: every offset is inside the slices above; v128 loads need no alignment.
        unsafe {
            let xp = x.as_ptr().add(b * BLOCK) as *const v128;
            let xv = [
                v128_load(xp),
                v128_load(xp.add(1)),
                v128_load(xp.add(2)),
                v128_load(xp.add(3)),
            ];
            let q = qs.as_ptr().add(b * GROUP * F::QS_BYTES);
            let r0 = row_dot::<F>(q, &xv);
            let r1 = row_dot::<F>(q.add(F::QS_BYTES), &xv);
            let r2 = row_dot::<F>(q.add(2 * F::QS_BYTES), &xv);
            let r3 = row_dot::<F>(q.add(3 * F::QS_BYTES), &xv);
            let dx = f32x4_splat(xd[b]);
            let dw0dx = f32x4_mul(v128_load(d.as_ptr().add(b * F::SCALES * GROUP) as *const v128), dx);
            let mut term = if F::SCALES == 2 {
                let isum0 = rows_to_lanes(r0[0], r1[0], r2[0], r3[0]);
                let isum1 = rows_to_lanes(r0[1], r1[1], r2[1], r3[1]);
                let dw1dx = f32x4_mul(v128_load(d.as_ptr().add((b * F::SCALES + 1) * GROUP) as *const v128), dx);
                f32x4_add(f32x4_mul(dw0dx, f32x4_convert_i32x4(isum0)), f32x4_mul(dw1dx, f32x4_convert_i32x4(isum1)))
            } else {
                let mut isum = rows_to_lanes(
                    i32x4_add(r0[0], r0[1]),
                    i32x4_add(r1[0], r1[1]),
                    i32x4_add(r2[0], r2[1]),
                    i32x4_add(r3[0], r3[1]),
                );
                if F::OFFSET != 0 {
                    isum = i32x4_sub(isum, i32x4_splat(F::OFFSET * xsum[b]));
                }
                f32x4_mul(dw0dx, f32x4_convert_i32x4(isum))
            };
            if F::HAS_MIN {
                let mw = v128_load(mins.as_ptr().add(b * GROUP) as *const v128);
                term = f32x4_add(term, f32x4_mul(mw, f32x4_splat(xs[b])));
            }
            acc = f32x4_add(acc, term);
        }
    }
    [
        f32x4_extract_lane::<0>(acc),
        f32x4_extract_lane::<1>(acc),
        f32x4_extract_lane::<2>(acc),
        f32x4_extract_lane::<3>(acc),
    ]
}

/// One row's block against the 4 × i16x8 activations: 4 partial i32 sums for each 16-weight
/// half.
///
/// SAFETY: `q` must point to the row's `F::QS_BYTES` quant bytes.
#[inline(always)]
unsafe fn row_dot<F: Format>(q: *const u8, x: &[v128; 4]) -> [v128; 2] {
    let w = match F::BITS {
        Bits::I8 => {
            let (v0, v1) = (v128_load(q as *const v128), v128_load((q as *const v128).add(1)));
            [
                i16x8_extend_low_i8x16(v0),
                i16x8_extend_high_i8x16(v0),
                i16x8_extend_low_i8x16(v1),
                i16x8_extend_high_i8x16(v1),
            ]
        }
        Bits::Nibbles | Bits::Nibbles5 => {
            let v = v128_load(q as *const v128);
            let (mut low, mut high) = (v128_and(v, u8x16_splat(0x0f)), u8x16_shr(v, 4));
            if F::BITS == Bits::Nibbles5 {
                let qh = u32x4_splat((q.add(BLOCK / 2) as *const u32).read_unaligned());
                low = v128_or(low, fifth_bits(qh, u8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)));
                high = v128_or(high, fifth_bits(qh, u8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)));
            }
            [
                u16x8_extend_low_u8x16(low),
                u16x8_extend_high_u8x16(low),
                u16x8_extend_low_u8x16(high),
                u16x8_extend_high_u8x16(high),
            ]
        }
    };
    [
        i32x4_add(i32x4_dot_i16x8(w[0], x[0]), i32x4_dot_i16x8(w[1], x[1])),
        i32x4_add(i32x4_dot_i16x8(w[2], x[2]), i32x4_dot_i16x8(w[3], x[3])),
    ]
}

/// 0x10 in byte j where bit j of the 16 bits of `qh` picked by `bytes` (byte j: which byte of
/// `qh` holds its bit) is set, else 0.
#[inline(always)]
fn fifth_bits(qh: v128, bytes: v128) -> v128 {
    let bit = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    let set = i8x16_eq(v128_and(i8x16_swizzle(qh, bytes), bit), bit);
    v128_and(set, u8x16_splat(0x10))
}

/// Four rows' partial sums → one i32x4 whose lane r is row r's total.
#[inline(always)]
fn rows_to_lanes(a: v128, b: v128, c: v128, d: v128) -> v128 {
    // [a0+a2, b0+b2, a1+a3, b1+b3], likewise for c and d, then add the halves.
    let ab = i32x4_add(
        i32x4_shuffle::<0, 4, 1, 5>(a, b),
        i32x4_shuffle::<2, 6, 3, 7>(a, b),
    );
    let cd = i32x4_add(
        i32x4_shuffle::<0, 4, 1, 5>(c, d),
        i32x4_shuffle::<2, 6, 3, 7>(c, d),
    );
    i32x4_add(
        i32x4_shuffle::<0, 1, 4, 5>(ab, cd),
        i32x4_shuffle::<2, 3, 6, 7>(ab, cd),
    )
}
