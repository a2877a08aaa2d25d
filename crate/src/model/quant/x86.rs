//! The x86-64 AVX2 kernel, chosen at run time. Per weight row and block: widen the quants to
//! i16 and `_mm256_madd_epi16` them against the activations, pre-widened to i16 (exact); `hadd`
//! a group's 4 rows into one i32 lane each; then [`block_term`](super::block_term) in SSE f32
//! lanes, one row per lane, with separate multiplies and adds (no FMA), so the result is the
//! reference's bits.

use super::{for_each_group, Activations, Format, GroupSlices, QuantMatrix, BLOCK, GROUP};
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
        let s01 = _mm256_hadd_epi32(
            row_dot::<F>(q, x0, x1),
            row_dot::<F>(q.add(F::QS_BYTES), x0, x1),
        );
        let s23 = _mm256_hadd_epi32(
            row_dot::<F>(q.add(2 * F::QS_BYTES), x0, x1),
            row_dot::<F>(q.add(3 * F::QS_BYTES), x0, x1),
        );
        let s = _mm256_hadd_epi32(s01, s23);
        let mut isum = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
        if F::OFFSET != 0 {
            isum = _mm_sub_epi32(isum, _mm_set1_epi32(F::OFFSET * xsum[b]));
        }
        let dwdx = _mm_mul_ps(_mm_loadu_ps(d.as_ptr().add(b * GROUP)), _mm_set1_ps(xd[b]));
        let mut term = _mm_mul_ps(dwdx, _mm_cvtepi32_ps(isum));
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

/// One row's block against the activations `x0` (weights 0..16) and `x1` (16..32): 8 partial i32
/// sums.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn row_dot<F: Format>(q: *const u8, x0: __m256i, x1: __m256i) -> __m256i {
    let (w0, w1) = if F::QS_BYTES == BLOCK / 2 {
        let v = _mm_loadu_si128(q as *const __m128i);
        let low = _mm_set1_epi8(0x0f);
        let hi = _mm_and_si128(_mm_srli_epi16::<4>(v), low);
        (
            _mm256_cvtepu8_epi16(_mm_and_si128(v, low)),
            _mm256_cvtepu8_epi16(hi),
        )
    } else {
        let p = q as *const __m128i;
        (
            _mm256_cvtepi8_epi16(_mm_loadu_si128(p)),
            _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(1))),
        )
    };
    _mm256_add_epi32(_mm256_madd_epi16(w0, x0), _mm256_madd_epi16(w1, x1))
}
