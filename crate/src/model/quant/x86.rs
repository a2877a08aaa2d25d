//! The x86-64 AVX2 kernel, chosen at run time. Per weight row and block: widen the quants to
//! i16 and `_mm256_madd_epi16` them against the activations, pre-widened to i16 (exact); `hadd`
//! a group's 4 rows into one i32 lane each (per scale: Q6_K sums its two 16-weight halves
//! apart); then [`block_term`](super::kernel::block_term) in SSE f32 lanes, one row per lane, with
//! separate multiplies and adds (no FMA), so the result is the reference's bits.

use super::activations::Activations;
use super::kernel::{for_each_group, GroupSlices};
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
    for_each_group(w, m, out, |g, t| unsafe { group_dot::<F>(w, a, g, t) });
}

/// The 4 outputs of row group `g` for token `t`.
#[target_feature(enable = "avx2")]
unsafe fn group_dot<F: Format>(
    w: &QuantMatrix,
    a: &Activations,
    g: usize,
    t: usize,
) -> [f32; GROUP] {
    let nb = w.cols / BLOCK;
    let GroupSlices { qs, d, mins, x, xd, xs, xsum } = GroupSlices::new::<F>(w, a, g, t);
    let mut acc = _mm_setzero_ps();
    for b in 0..nb {
        let xp = x.as_ptr().add(b * BLOCK) as *const __m256i;
        let (x0, x1) = (_mm256_loadu_si256(xp), _mm256_loadu_si256(xp.add(1)));
        let q = qs.as_ptr().add(b * GROUP * F::QS_BYTES);
        let r0 = row_dot::<F>(q, x0, x1);
        let r1 = row_dot::<F>(q.add(F::QS_BYTES), x0, x1);
        let r2 = row_dot::<F>(q.add(2 * F::QS_BYTES), x0, x1);
        let r3 = row_dot::<F>(q.add(3 * F::QS_BYTES), x0, x1);
        let dx = _mm_set1_ps(xd[b]);
        let dw0dx = _mm_mul_ps(_mm_loadu_ps(d.as_ptr().add(b * F::SCALES * GROUP)), dx);
        let mut term = if F::SCALES == 2 {
            let isum0 = rows_to_lanes(r0[0], r1[0], r2[0], r3[0]);
            let isum1 = rows_to_lanes(r0[1], r1[1], r2[1], r3[1]);
            let dw1dx = _mm_mul_ps(_mm_loadu_ps(d.as_ptr().add((b * F::SCALES + 1) * GROUP)), dx);
            _mm_add_ps(_mm_mul_ps(dw0dx, _mm_cvtepi32_ps(isum0)), _mm_mul_ps(dw1dx, _mm_cvtepi32_ps(isum1)))
        } else {
            let mut isum = rows_to_lanes(
                _mm256_add_epi32(r0[0], r0[1]),
                _mm256_add_epi32(r1[0], r1[1]),
                _mm256_add_epi32(r2[0], r2[1]),
                _mm256_add_epi32(r3[0], r3[1]),
            );
            if F::OFFSET != 0 {
                isum = _mm_sub_epi32(isum, _mm_set1_epi32(F::OFFSET * xsum[b]));
            }
            _mm_mul_ps(dw0dx, _mm_cvtepi32_ps(isum))
        };
        if F::HAS_MIN {
            term = _mm_add_ps(
                term,
                _mm_mul_ps(
                    _mm_loadu_ps(mins.as_ptr().add(b * GROUP)),
                    _mm_set1_ps(xs[b]),
                ),
            );
        }
        acc = _mm_add_ps(acc, term);
    }
    let mut out = [0.0; GROUP];
    _mm_storeu_ps(out.as_mut_ptr(), acc);
    out
}

/// Four rows' 8 partial sums each → one i32 lane per row.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn rows_to_lanes(r0: __m256i, r1: __m256i, r2: __m256i, r3: __m256i) -> __m128i {
    let s = _mm256_hadd_epi32(_mm256_hadd_epi32(r0, r1), _mm256_hadd_epi32(r2, r3));
    _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s))
}

/// One row's block against the activations `x0` (weights 0..16) and `x1` (16..32): 8 partial i32
/// sums for each half.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn row_dot<F: Format>(q: *const u8, x0: __m256i, x1: __m256i) -> [__m256i; 2] {
    let (w0, w1) = match F::BITS {
        Bits::I8 => {
            let p = q as *const __m128i;
            (_mm256_cvtepi8_epi16(_mm_loadu_si128(p)), _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(1))))
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
            (_mm256_cvtepu8_epi16(lo), _mm256_cvtepu8_epi16(hi))
        }
    };
    [_mm256_madd_epi16(w0, x0), _mm256_madd_epi16(w1, x1)]
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
