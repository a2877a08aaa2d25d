//! The activations quantised per 32-block to int16, as the integer kernels read them.

use super::BLOCK;

/// `x` quantised per 32-block to int16: `d = amax / 32767`, plus `s = d·Σq` and `Σq` (token-major,
/// like `x`). llama.cpp quantises activations to int8 because its kernels multiply i8 × i8; the
/// simd128 and AVX2 dot products used here take i16 operands anyway (`i32x4.dot_i16x8_s`,
/// `vpmaddwd`), so 16-bit activations cost the same and are 258× finer. Measured on SmolLM2:
/// int8 activations moved the greedy continuation off the f32 reference's after 12 tokens;
/// int16 ones keep it (docs/benchmarks.md, "Accuracy of the quantised path"). Every block sum stays within i32:
/// 32 · 128 · 32767 < 2³¹.
pub(super) struct Activations {
    pub(super) q: Vec<i16>,
    pub(super) d: Vec<f32>,
    pub(super) s: Vec<f32>,
    pub(super) sum: Vec<i32>,
}

impl Activations {
    /// `x.len()` must be a multiple of [`BLOCK`] (the matrix's cols are).
    pub(super) fn quantize(x: &[f32]) -> Self {
        let blocks = x.len() / BLOCK;
        let mut a = Activations {
            q: vec![0; x.len()],
            d: Vec::with_capacity(blocks),
            s: Vec::with_capacity(blocks),
            sum: Vec::with_capacity(blocks),
        };
        for (xb, qb) in x.chunks_exact(BLOCK).zip(a.q.chunks_exact_mut(BLOCK)) {
            // max ignores NaN and the values are ≥ +0, so this is the same everywhere.
            let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = amax / ACTIVATION_MAX;
            let mut sum = 0;
            if d != 0.0 {
                for (q, &v) in qb.iter_mut().zip(xb) {
                    let r = round_half_away((v / d).clamp(-ACTIVATION_MAX, ACTIVATION_MAX));
                    *q = r as i16;
                    sum += r;
                }
            }
            a.d.push(d);
            a.s.push(d * sum as f32);
            a.sum.push(sum);
        }
        a
    }
}

/// The largest activation quant.
pub(super) const ACTIVATION_MAX: f32 = 32767.0;

/// `f32::round` (half away from zero) for |v| ≤ 2²³, from operations that are exact on every
/// platform, so no libm or instruction choice can change a quant. NaN gives 0.
fn round_half_away(v: f32) -> i32 {
    let t = v as i32;
    let frac = v - t as f32;
    if frac >= 0.5 {
        t + 1
    } else if frac <= -0.5 {
        t - 1
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_round_half_away_from_zero() {
        let mut x = vec![0.0f32; 64];
        x[..6].copy_from_slice(&[32767.0, 2.5, -2.5, 0.49999997, -32766.5, 1.5]);
        let a = Activations::quantize(&x);
        assert_eq!(a.d, [1.0, 0.0]);
        assert_eq!(&a.q[..6], &[32767, 3, -3, 0, -32767, 2]);
        assert!(a.q[32..].iter().all(|&q| q == 0));
        assert_eq!(a.sum, [2, 0]); // 32767 + 3 - 3 + 0 - 32767 + 2
        assert_eq!(a.s, [2.0, 0.0]);
        assert_eq!(
            (
                round_half_away(f32::NAN),
                round_half_away(-0.5),
                round_half_away(0.4)
            ),
            (0, -1, 0)
        );
    }
}
