//! The wasm simd128 kernels.
//!
//! One token at a time ([`group_dot`], decode): per weight row and block, split the nibbles
//! (`and 0x0F`, `shr 4`, with the fifth bits ORed in for the 5-bit schemes) or take the i8
//! quants, widen to i16, `i32x4.dot_i16x8_s` against the activations pre-widened to i16 (exact);
//! shuffle the 4 rows of a group into one i32 lane each (per scale: Q6_K sums its two
//! 16-weight halves apart).
//!
//! A tile of tokens ([`tile_dot`], prefill): a tile of row groups is unpacked to i16 once, each
//! pair of weights of the 4 rows in one vector, and each token's pair of activations is
//! splatted against it, so the rows' sums build up in their own lanes. A tile of tokens sharing
//! unpacked registers (as x86.rs does) had measured no faster here: V8 spilled the 16 unpacked
//! vectors.
//!
//! Both end in [`block_terms`]: [`block_term`](super::kernel::block_term) in f32x4 lanes, one
//! row per lane (simd128 has no FMA), so the result is the reference's bits.

use super::activations::Activations;
use super::kernel::{for_each_group_by_token, for_each_group_with, GroupWeights, Sweep, TokenActivations, TOKENS};
use super::{Bits, Format, QuantMatrix, BLOCK, GROUP};
use core::arch::wasm32::*;
use std::cell::RefCell;
use std::ops::Range;

/// Tokens from which a product takes the prefill kernel ([`tile_dot`]): it unpacks a tile of
/// weights once, which pays back over a few tokens.
const PREFILL_TOKENS: usize = 2 * TOKENS;

/// The unpacked weights of a tile of row groups: 16 KiB of i16 leaves L1 room for the tokens'
/// activations.
const UNPACKED_TILE_BYTES: usize = 16 * 1024;

pub(super) fn matmul<F: Format>(w: &QuantMatrix, a: &Activations, m: usize, out: &mut [f32]) {
    if m < PREFILL_TOKENS {
        return for_each_group_by_token(w, m, out, |g, t| group_dot::<F>(w, a, g, t));
    }
    let group_tile = (UNPACKED_TILE_BYTES / (w.cols * GROUP * 2)).max(1);
    let sweep = Sweep {
        group_tile,
        prepare: |groups: Range<usize>| UNPACKED.with_borrow_mut(|u| u.unpack::<F>(w, groups)),
        tile: |g, t0| UNPACKED.with_borrow(|u| tile_dot::<F>(w, a, u.group(w, g), g, t0)),
        single: |g, t| group_dot::<F>(w, a, g, t),
    };
    for_each_group_with(w, m, out, &sweep);
}

thread_local! {
    /// This thread's unpacked tile (each thread of a split sweeps its own groups).
    static UNPACKED: RefCell<UnpackedTile> = const { RefCell::new(UnpackedTile { first_group: 0, quants: Vec::new() }) };
}

/// A tile of row groups' quants as i16 (before any offset), laid out for [`tile_dot`]: per
/// group, block and pair of weights (2p, 2p + 1), one i16x8 holding the pair of each of the 4
/// rows, so that `i32x4.dot_i16x8_s` against the pair of activations splatted gives each row's
/// partial sum in its own lane: no widening per token and no shuffles between lanes.
struct UnpackedTile {
    first_group: usize,
    quants: Vec<i16>,
}

impl UnpackedTile {
    fn unpack<F: Format>(&mut self, w: &QuantMatrix, groups: Range<usize>) {
        let nb = w.cols / BLOCK;
        self.first_group = groups.start;
        // Every value is written below: only a longer tile needs new (zeroed) room.
        self.quants.resize(groups.len() * nb * BLOCK * GROUP, 0);
        let mut out = self.quants.as_mut_ptr() as *mut v128;
        for g in groups {
            let GroupWeights { qs, .. } = GroupWeights::new::<F>(w, g);
            for b in 0..nb {
                // SAFETY: the group's block holds 4 rows of QS_BYTES, and `quants` 16 vectors
                // per group and block.
                unsafe {
                    let q = qs.as_ptr().add(b * GROUP * F::QS_BYTES);
                    let rows: [[v128; 4]; GROUP] = std::array::from_fn(|r| unpack_row::<F>(q.add(r * F::QS_BYTES)));
                    // Vector k of a row holds its pairs 4k..4k + 3, one per i32 lane: a 4 × 4
                    // transpose gives each pair's vector of the 4 rows.
                    for k in 0..4 {
                        let [r0, r1, r2, r3] = rows.map(|row| row[k]);
                        let (ab_low, ab_high) = (i32x4_shuffle::<0, 4, 1, 5>(r0, r1), i32x4_shuffle::<2, 6, 3, 7>(r0, r1));
                        let (cd_low, cd_high) = (i32x4_shuffle::<0, 4, 1, 5>(r2, r3), i32x4_shuffle::<2, 6, 3, 7>(r2, r3));
                        v128_store(out, i32x4_shuffle::<0, 1, 4, 5>(ab_low, cd_low));
                        v128_store(out.add(1), i32x4_shuffle::<2, 3, 6, 7>(ab_low, cd_low));
                        v128_store(out.add(2), i32x4_shuffle::<0, 1, 4, 5>(ab_high, cd_high));
                        v128_store(out.add(3), i32x4_shuffle::<2, 3, 6, 7>(ab_high, cd_high));
                        out = out.add(4);
                    }
                }
            }
        }
    }

    fn group(&self, w: &QuantMatrix, g: usize) -> &[i16] {
        &self.quants[(g - self.first_group) * w.cols * GROUP..][..w.cols * GROUP]
    }
}

/// Row group `g`'s 4 outputs for each of the [`TOKENS`] tokens from `t0`, from its unpacked
/// quants `u`: per pair of weights one load shared by the tokens, and per token a splat of its
/// pair of activations, a dot and an add. The integer sums are exact and the f32 terms those of
/// [`group_dot`], so the bits are the reference's.
#[inline]
fn tile_dot<F: Format>(w: &QuantMatrix, a: &Activations, u: &[i16], g: usize, t0: usize) -> [[f32; GROUP]; TOKENS] {
    let nb = w.cols / BLOCK;
    let weights = GroupWeights::new::<F>(w, g);
    let tokens: [TokenActivations; TOKENS] = std::array::from_fn(|i| TokenActivations::new(w, a, t0 + i));
    let mut acc = [f32x4_splat(0.0); TOKENS];
    for b in 0..nb {
        let mut isum = [[i32x4_splat(0); 2]; TOKENS];
        // SAFETY: `u` holds nb blocks of 16 pairs × 4 rows, and each token's x nb blocks of 32.
        unsafe {
            let wp = u.as_ptr().add(b * BLOCK * GROUP) as *const v128;
            for pair in 0..BLOCK / 2 {
                let wv = v128_load(wp.add(pair));
                let scale = pair * 2 * F::SCALES / BLOCK;
                for (sums, token) in isum.iter_mut().zip(&tokens) {
                    let xv = u32x4_splat((token.x.as_ptr().add(b * BLOCK + 2 * pair) as *const u32).read_unaligned());
                    sums[scale] = i32x4_add(sums[scale], i32x4_dot_i16x8(wv, xv));
                }
            }
        }
        for ((acc, token), sums) in acc.iter_mut().zip(&tokens).zip(isum) {
            *acc = f32x4_add(*acc, block_terms::<F>(&weights, token, b, sums));
        }
    }
    acc.map(lanes)
}

/// The 4 outputs of row group `g` for token `t`.
#[inline]
fn group_dot<F: Format>(w: &QuantMatrix, a: &Activations, g: usize, t: usize) -> [f32; GROUP] {
    let nb = w.cols / BLOCK;
    let weights = GroupWeights::new::<F>(w, g);
    let token = TokenActivations::new(w, a, t);
    let mut acc = f32x4_splat(0.0);
    for b in 0..nb {
        // SAFETY: every offset is inside the slices above; v128 loads need no alignment.
        let isum = unsafe {
            let xp = token.x.as_ptr().add(b * BLOCK) as *const v128;
            let xv = [
                v128_load(xp),
                v128_load(xp.add(1)),
                v128_load(xp.add(2)),
                v128_load(xp.add(3)),
            ];
            let q = weights.qs.as_ptr().add(b * GROUP * F::QS_BYTES);
            let r0 = row_dot::<F>(q, &xv);
            let r1 = row_dot::<F>(q.add(F::QS_BYTES), &xv);
            let r2 = row_dot::<F>(q.add(2 * F::QS_BYTES), &xv);
            let r3 = row_dot::<F>(q.add(3 * F::QS_BYTES), &xv);
            if F::SCALES == 2 {
                [rows_to_lanes(r0[0], r1[0], r2[0], r3[0]), rows_to_lanes(r0[1], r1[1], r2[1], r3[1])]
            } else {
                let sum = |r: [v128; 2]| i32x4_add(r[0], r[1]);
                [rows_to_lanes(sum(r0), sum(r1), sum(r2), sum(r3)), i32x4_splat(0)]
            }
        };
        acc = f32x4_add(acc, block_terms::<F>(&weights, &token, b, isum));
    }
    lanes(acc)
}

/// Block `b`'s [`block_term`](super::kernel::block_term) for the group's 4 rows (one per lane),
/// from its integer sums per scale (lane = row; the second unused with one scale).
#[inline(always)]
fn block_terms<F: Format>(weights: &GroupWeights, token: &TokenActivations, b: usize, isum: [v128; 2]) -> v128 {
    let dx = f32x4_splat(token.xd[b]);
    // SAFETY: d holds SCALES × 4 scales per block, mins 4 per block (with mins).
    unsafe {
        let d = weights.d.as_ptr().add(b * F::SCALES * GROUP) as *const v128;
        let dw0dx = f32x4_mul(v128_load(d), dx);
        let mut term = if F::SCALES == 2 {
            let dw1dx = f32x4_mul(v128_load(d.add(1)), dx);
            f32x4_add(f32x4_mul(dw0dx, f32x4_convert_i32x4(isum[0])), f32x4_mul(dw1dx, f32x4_convert_i32x4(isum[1])))
        } else {
            let mut isum = isum[0];
            if F::OFFSET != 0 {
                isum = i32x4_sub(isum, i32x4_splat(F::OFFSET * token.xsum[b]));
            }
            f32x4_mul(dw0dx, f32x4_convert_i32x4(isum))
        };
        if F::HAS_MIN {
            let mw = v128_load(weights.mins.as_ptr().add(b * GROUP) as *const v128);
            term = f32x4_add(term, f32x4_mul(mw, f32x4_splat(token.xs[b])));
        }
        term
    }
}

fn lanes(v: v128) -> [f32; GROUP] {
    [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v), f32x4_extract_lane::<3>(v)]
}

/// One row's block against the 4 × i16x8 activations: 4 partial i32 sums for each 16-weight
/// half.
///
/// SAFETY: `q` must point to the row's `F::QS_BYTES` quant bytes.
#[inline(always)]
unsafe fn row_dot<F: Format>(q: *const u8, x: &[v128; 4]) -> [v128; 2] {
    let w = unpack_row::<F>(q);
    [
        i32x4_add(i32x4_dot_i16x8(w[0], x[0]), i32x4_dot_i16x8(w[1], x[1])),
        i32x4_add(i32x4_dot_i16x8(w[2], x[2]), i32x4_dot_i16x8(w[3], x[3])),
    ]
}

/// One row's block as 4 × i16x8: weights 0–7, 8–15, 16–23 and 24–31, before any offset.
///
/// SAFETY: `q` must point to the row's `F::QS_BYTES` quant bytes.
#[inline(always)]
unsafe fn unpack_row<F: Format>(q: *const u8) -> [v128; 4] {
    match F::BITS {
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
    }
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
