//! The x86-64 AVX2 kernel, chosen at run time. Per weight row and block: widen the quants to
//! i16, once for a tile of tokens, and per token `_mm256_madd_epi16` them against the
//! activations, pre-widened to i16 (exact); `hadd` a group's 4 rows into one i32 lane each (per
//! scale: Q6_K sums its two 16-weight halves apart); then
//! [`block_term`](super::kernel::block_term) in SSE f32 lanes, one row per lane, with separate
//! multiplies and adds (no FMA), so the result is the reference's bits.

use super::activations::Activations;
use super::kernel::{for_each_group, GroupWeights, TokenActivations, TOKENS};
use super::{Bits, Format, QuantMatrix, BLOCK, GROUP};
use core::arch::x86_64::*;

pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx2")
}

/// Computes `out` if the CPU has AVX2; otherwise returns false and writes nothing.
pub(super) fn matmul<F: Format>(
    w: &QuantMatrix,
    a: &Activations,
    m: usize,
    out: &mut [f32],
) -> bool {
    if !available() {
        return false;
    }
    // SAFETY: AVX2 is present.
    unsafe { matmul_avx2::<F>(w, a, m, out) };
    true
}

#[target_feature(enable = "avx2")]
unsafe fn matmul_avx2<F: Format>(w: &QuantMatrix, a: &Activations, m: usize, out: &mut [f32]) {
    // SAFETY (here and below): the caller checked AVX2.
    let tile = |g, t0| unsafe { group_dot::<F, TOKENS>(w, a, g, t0) };
    let single = |g, t| unsafe { group_dot::<F, 1>(w, a, g, t)[0] };
    for_each_group(w, m, out, tile, single);
}

/// The 4 outputs of row group `g` for each of the `T` tokens from `t0`. Each block's 4 rows are
/// unpacked once, then taken against every token.
#[target_feature(enable = "avx2")]
unsafe fn group_dot<F: Format, const T: usize>(
    w: &QuantMatrix,
    a: &Activations,
    g: usize,
    t0: usize,
) -> [[f32; GROUP]; T] {
    let nb = w.cols / BLOCK;
    let GroupWeights { qs, d, mins } = GroupWeights::new::<F>(w, g);
    let tokens: [TokenActivations; T] = core::array::from_fn(|i| TokenActivations::new(w, a, t0 + i));
    let mut acc = [_mm_setzero_ps(); T];
    for b in 0..nb {
        let q = qs.as_ptr().add(b * GROUP * F::QS_BYTES);
        let mut rows = [[_mm256_setzero_si256(); 2]; GROUP];
        for (r, row) in rows.iter_mut().enumerate() {
            *row = unpack::<F>(q.add(r * F::QS_BYTES));
        }
        let dw0 = _mm_loadu_ps(d.as_ptr().add(b * F::SCALES * GROUP));
        let dw1 = if F::SCALES == 2 { _mm_loadu_ps(d.as_ptr().add((b * F::SCALES + 1) * GROUP)) } else { dw0 };
        let mw = if F::HAS_MIN { _mm_loadu_ps(mins.as_ptr().add(b * GROUP)) } else { dw0 };
        for i in 0..T {
            let tok = &tokens[i];
            let xp = tok.x.as_ptr().add(b * BLOCK) as *const __m256i;
            let (x0, x1) = (_mm256_loadu_si256(xp), _mm256_loadu_si256(xp.add(1)));
            let r0 = dot(rows[0], x0, x1);
            let r1 = dot(rows[1], x0, x1);
            let r2 = dot(rows[2], x0, x1);
            let r3 = dot(rows[3], x0, x1);
            let dx = _mm_set1_ps(tok.xd[b]);
            let dw0dx = _mm_mul_ps(dw0, dx);
            let mut term = if F::SCALES == 2 {
                let isum0 = rows_to_lanes(r0[0], r1[0], r2[0], r3[0]);
                let isum1 = rows_to_lanes(r0[1], r1[1], r2[1], r3[1]);
                let dw1dx = _mm_mul_ps(dw1, dx);
                _mm_add_ps(_mm_mul_ps(dw0dx, _mm_cvtepi32_ps(isum0)), _mm_mul_ps(dw1dx, _mm_cvtepi32_ps(isum1)))
            } else {
                let mut isum = rows_to_lanes(
                    _mm256_add_epi32(r0[0], r0[1]),
                    _mm256_add_epi32(r1[0], r1[1]),
                    _mm256_add_epi32(r2[0], r2[1]),
                    _mm256_add_epi32(r3[0], r3[1]),
                );
                if F::OFFSET != 0 {
                    isum = _mm_sub_epi32(isum, _mm_set1_epi32(F::OFFSET * tok.xsum[b]));
                }
                _mm_mul_ps(dw0dx, _mm_cvtepi32_ps(isum))
            };
            if F::HAS_MIN {
                term = _mm_add_ps(term, _mm_mul_ps(mw, _mm_set1_ps(tok.xs[b])));
            }
            acc[i] = _mm_add_ps(acc[i], term);
        }
    }
    let mut out = [[0.0; GROUP]; T];
    for i in 0..T {
        _mm_storeu_ps(out[i].as_mut_ptr(), acc[i]);
    }
    out
}

/// Four rows' 8 partial sums each → one i32 lane per row.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn rows_to_lanes(r0: __m256i, r1: __m256i, r2: __m256i, r3: __m256i) -> __m128i {
    let s = _mm256_hadd_epi32(_mm256_hadd_epi32(r0, r1), _mm256_hadd_epi32(r2, r3));
    _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s))
}

/// One row's block of quants as 2 × i16x16 (weights 0..16 and 16..32).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn unpack<F: Format>(q: *const u8) -> [__m256i; 2] {
    match F::BITS {
        Bits::I8 => {
            let p = q as *const __m128i;
            [_mm256_cvtepi8_epi16(_mm_loadu_si128(p)), _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(1)))]
        }
        Bits::Nibbles | Bits::Nibbles5 => {
            let v = _mm_loadu_si128(q as *const __m128i);
            let low = _mm_set1_epi8(0x0f);
            let (mut lo, mut hi) = (_mm_and_si128(v, low), _mm_and_si128(_mm_srli_epi16::<4>(v), low));
            if F::BITS == Bits::Nibbles5 {
                let qh = _mm_set1_epi32((q.add(BLOCK / 2) as *const i32).read_unaligned());
                lo = _mm_or_si128(lo, fifth_bits(qh, _mm_set_epi64x(0x0101_0101_0101_0101, 0)));
                hi = _mm_or_si128(hi, fifth_bits(qh, _mm_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202)));
            }
            [_mm256_cvtepu8_epi16(lo), _mm256_cvtepu8_epi16(hi)]
        }
    }
}

/// An unpacked row against the activations `x0` (weights 0..16) and `x1` (16..32): 8 partial i32
/// sums for each half.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn dot(w: [__m256i; 2], x0: __m256i, x1: __m256i) -> [__m256i; 2] {
    [_mm256_madd_epi16(w[0], x0), _mm256_madd_epi16(w[1], x1)]
}

/// 0x10 in byte j where bit j of the 16 bits of `qh` picked by `bytes` (byte j: which byte of
/// `qh` holds its bit) is set, else 0.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn fifth_bits(qh: __m128i, bytes: __m128i) -> __m128i {
    let bit = _mm_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let set = _mm_cmpeq_epi8(_mm_and_si128(_mm_shuffle_epi8(qh, bytes), bit), bit);
    _mm_and_si128(set, _mm_set1_epi8(0x10))
}
